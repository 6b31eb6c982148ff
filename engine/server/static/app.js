// The /provider-test page: talks only to the Control API (docs/faces.md).
// Every piece of data reaches the DOM through textContent or an attribute,
// never through innerHTML, so a job name cannot inject markup.
"use strict";

(() => {
  const ACTIVE = ["queued", "resolving", "downloading"];
  const TERMINAL = ["completed", "failed", "cancelled"];
  const RETRYABLE = ["failed", "cancelled"];

  const state = {
    csrf: null,
    providers: [],
    jobs: new Map(), // id -> job, the rows on screen
    rows: new Map(), // id -> row element
    order: [], // ids in display order
    total: 0,
    selected: new Set(),
    query: {status: "", provider: "", q: "", sort: "created_at", order: "desc", limit: 50, offset: 0},
    loading: null, // the running list load (a promise), if any
    buffered: null, // events seen while a load runs
    reloadTimer: null,
    providersTimer: null,
    events: null,
    lastEventId: null,
    retryDelay: 1000,
  };

  const $ = (id) => document.getElementById(id);

  // -- small DOM helpers ------------------------------------------------------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function setText(node, text) {
    const value = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  // -- formatting -------------------------------------------------------------
  function bytes(n) {
    let value = Number(n) || 0;
    for (const unit of ["B", "KB", "MB", "GB", "TB"]) {
      if (value < 1000 || unit === "TB") {
        return unit === "B" ? `${Math.round(value)} B` : `${value.toFixed(1)} ${unit}`;
      }
      value /= 1000;
    }
    return `${value} B`;
  }

  function duration(seconds) {
    let s = Math.max(0, Math.round(Number(seconds) || 0));
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
    return `${s}s`;
  }

  function until(epochSeconds) {
    return duration(epochSeconds - Date.now() / 1000);
  }

  function dateText(ms) {
    if (!ms) return "";
    return new Date(ms).toLocaleString(undefined, {
      year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit",
    });
  }

  function magnetParams(magnet) {
    const query = magnet.indexOf("?");
    return new URLSearchParams(query >= 0 ? magnet.slice(query + 1) : "");
  }

  // The name in a .torrent's info dictionary (bencoded "4:name<len>:<bytes>").
  function torrentName(base64) {
    try {
      const raw = atob(base64);
      const info = raw.indexOf("4:info");
      const at = raw.indexOf("4:name", info >= 0 ? info : 0);
      if (at < 0) return null;
      let i = at + 6;
      let digits = "";
      while (i < raw.length && raw[i] >= "0" && raw[i] <= "9") digits += raw[i++];
      if (raw[i] !== ":" || !digits) return null;
      const length = Number(digits);
      const slice = raw.slice(i + 1, i + 1 + length);
      const data = Uint8Array.from(slice, (c) => c.charCodeAt(0));
      return new TextDecoder().decode(data) || null;
    } catch (_) {
      return null;
    }
  }

  function jobName(job) {
    const payload = job.payload || {};
    const firstFile = (job.files || []).find((f) => f.selected) || (job.files || [])[0];
    if (payload.magnet) {
      const params = magnetParams(payload.magnet);
      const dn = params.get("dn");
      if (dn) return dn;
      if (firstFile) return firstFile.name.split("/")[0];
      const xt = params.get("xt") || "";
      return `magnet ${xt.split(":").pop().slice(0, 12)}`;
    }
    if (payload.url) {
      try {
        const url = new URL(payload.url);
        const last = url.pathname.split("/").filter(Boolean).pop();
        return last ? decodeURIComponent(last) : url.host;
      } catch (_) {
        return payload.url;
      }
    }
    if (payload.torrent) {
      const name = torrentName(payload.torrent);
      if (name) return name;
    }
    return firstFile ? firstFile.name.split("/")[0] : job.id;
  }

  function jobSource(job) {
    const payload = job.payload || {};
    if (payload.magnet) return payload.magnet;
    if (payload.url) return payload.url;
    return payload.torrent ? ".torrent upload" : "";
  }

  // -- the API ----------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || `HTTP ${status}`);
      this.status = status;
      this.code = (error && error.code) || "http_error";
      this.field = (error && error.field) || null;
    }
  }

  async function loadSession() {
    const answer = await fetch("/api/session", {credentials: "same-origin",
      headers: {Accept: "application/json"}});
    if (!answer.ok) throw await asError(answer);
    const body = await answer.json();
    state.csrf = body.csrf_token;
  }

  async function asError(answer) {
    let error = null;
    try {
      const body = await answer.json();
      error = body && body.error;
    } catch (_) {
      // not JSON: a proxy's page, say
    }
    return new ApiError(answer.status, error);
  }

  async function api(method, path, body, retried = false) {
    const headers = {Accept: "application/json"};
    const init = {method, headers, credentials: "same-origin"};
    if (method !== "GET" && method !== "HEAD") {
      if (!state.csrf) await loadSession();
      headers["X-CSRF-Token"] = state.csrf;
    }
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const answer = await fetch(path, init);
    if (answer.status === 403 && !retried) {
      const error = await asError(answer);
      if (error.code === "csrf") {
        await loadSession(); // a restarted daemon has a new token
        return api(method, path, body, true);
      }
      throw error;
    }
    if (!answer.ok) {
      const error = await asError(answer);
      if (error.status === 401) signedOut();
      throw error;
    }
    if (answer.status === 204) return {};
    return answer.json();
  }

  // -- notices and banners ----------------------------------------------------
  let noticeTimer = null;

  function notify(text, kind = "info") {
    const notice = $("notice");
    setText(notice, text);
    notice.dataset.kind = kind;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.hidden = true; }, kind === "error" ? 12000 : 6000);
  }

  function signedOut() {
    const banners = $("banners");
    if (banners.querySelector("[data-testid=signed-out]")) return;
    banners.prepend(el("div", {class: "banner error", "data-testid": "signed-out",
      text: "Not signed in (or the session ended): open the one-time login link that " +
        "`debrid serve` printed."}));
  }

  // -- providers --------------------------------------------------------------
  async function loadProviders() {
    try {
      const body = await api("GET", "/api/providers");
      let list = body.providers || [];
      if (!Array.isArray(list)) {
        list = Object.entries(list).map(([name, p]) => ({name, ...p}));
      }
      state.providers = list;
      renderProviders();
    } catch (error) {
      setText($("providers-empty"), `Providers unavailable: ${error.message}`);
    }
  }

  // What the *arr apps sent that the qBittorrent face refused ("Fails."), and why.
  async function loadRefusals() {
    let body;
    try {
      body = await api("GET", "/api/client/refusals");
    } catch (error) {
      return;  // the providers panel already says when the daemon is unreachable
    }
    const list = $("client-refusals");
    const items = (body.refusals || []).map((r) =>
      el("li", {"data-testid": "client-refusal"},
         el("span", {class: "muted"}, dateText(r.at), " "),
         el("strong", {}, r.reason), " ",
         el("span", {class: "muted"}, r.source)));
    list.replaceChildren(...items);
    $("client-panel").hidden = items.length === 0;
  }

  function scheduleProviders(delay = 800) {
    if (state.providersTimer) return;
    state.providersTimer = setTimeout(() => {
      state.providersTimer = null;
      loadProviders();
    }, delay);
  }

  function futureEntries(mapping) {
    const now = Date.now() / 1000;
    return Object.entries(mapping || {}).filter(([, at]) => typeof at === "number" && at > now);
  }

  function renderProviders() {
    const box = $("providers");
    const template = $("provider-template");
    const seen = new Set();
    for (const provider of state.providers) {
      seen.add(provider.name);
      let card = box.querySelector(`[data-provider="${CSS.escape(provider.name)}"]`);
      if (!card) {
        card = template.content.firstElementChild.cloneNode(true);
        card.dataset.provider = provider.name;
        card.id = `provider-${provider.name}`;
        const button = card.querySelector(".provider-test-button");
        button.id = `test-${provider.name}`;
        button.addEventListener("click", () => testConnection(provider.name, card));
        card.querySelector(".provider-test-result").id = `test-result-${provider.name}`;
        box.append(card);
      }
      fillProvider(card, provider);
    }
    for (const card of [...box.querySelectorAll("[data-provider]")]) {
      if (!seen.has(card.dataset.provider)) card.remove();
    }
    $("providers-empty").hidden = state.providers.length > 0;
    if (!state.providers.length) setText($("providers-empty"), "No providers configured.");
    fillProviderSelects();
    renderBanners();
  }

  function fillProvider(card, provider) {
    setText(card.querySelector(".provider-name"), provider.name);
    const badge = card.querySelector(".provider-state");
    const stateText = provider.alive === false && provider.state === "ok"
      ? "restarting" : (provider.state || "unknown");
    setText(badge, stateText);
    badge.dataset.state = stateText;
    card.dataset.state = stateText;
    const limit = provider.slot_limit === null || provider.slot_limit === undefined
      ? "no limit" : provider.slot_limit;
    setText(card.querySelector(".provider-slots"), `${provider.slots_used || 0} / ${limit}`);
    const queued = Object.entries(provider.queued || {}).filter(([, n]) => n > 0);
    const queuedTotal = queued.reduce((sum, [, n]) => sum + n, 0);
    setText(card.querySelector(".provider-queued"), queued.length
      ? `${queuedTotal} (${queued.map(([k, n]) => `${k} ${n}`).join(", ")})`
      : "0");
    const waiting = futureEntries(provider.waiting_for);
    card.querySelector(".provider-waiting-row").hidden = waiting.length === 0;
    setText(card.querySelector(".provider-waiting"),
      waiting.map(([bucket, at]) => `${bucket} budget, next token in ${until(at)}`).join("; "));
    const pauses = pauseTexts(provider);
    card.querySelector(".provider-paused-row").hidden = pauses.length === 0;
    setText(card.querySelector(".provider-paused"), pauses.join("; "));
    const errorBox = card.querySelector(".provider-error");
    const problems = [];
    if (provider.account_error) {
      let text = `Account: ${provider.account_error}`;
      if (provider.account_fail_at) {
        text += ` (waiting jobs fail in ${until(provider.account_fail_at)})`;
      }
      problems.push(text);
    }
    if (provider.last_error && provider.last_error !== provider.account_error) {
      problems.push(`Last error: ${provider.last_error}`);
    }
    errorBox.hidden = problems.length === 0;
    setText(errorBox, problems.join(" · "));
  }

  function pauseTexts(provider) {
    const reasons = provider.pause_reasons || {};
    const texts = futureEntries(provider.paused_until).map(([bucket, at]) =>
      `${bucket}${reasons[bucket] ? ` (${reasons[bucket]})` : ""}: resumes in ${until(at)}`);
    const admission = provider.admission_paused_until;
    if (typeof admission === "number" && admission > Date.now() / 1000) {
      const held = provider.submissions_held;
      const why = Array.isArray(held) && held[0] ? ` (${held[0]})` : "";
      texts.push(`new submissions${why}: resume in ${until(admission)}`);
    }
    return texts;
  }

  function renderBanners() {
    const banners = $("banners");
    for (const old of [...banners.querySelectorAll("[data-banner]")]) old.remove();
    for (const provider of state.providers) {
      const pauses = pauseTexts(provider);
      if (pauses.length) {
        banners.append(el("div", {class: "banner warn", "data-banner": "pause",
          "data-testid": "pause-banner", "data-provider": provider.name,
          text: `${provider.name} is rate-limited: ${pauses.join("; ")}`}));
      }
      if (provider.state && provider.state !== "ok") {
        const what = {auth_failed: "authentication failed",
          account_refused: "the service refuses the account", down: "down"}[provider.state] ||
          provider.state;
        banners.append(el("div", {class: "banner error", "data-banner": "account",
          "data-testid": "account-banner", "data-provider": provider.name,
          text: `${provider.name}: ${what}${provider.account_error
            ? ` — ${provider.account_error}` : ""}`}));
      }
    }
  }

  function fillProviderSelects() {
    const names = state.providers.map((p) => p.name);
    const form = $("job-provider");
    const previous = form.value;
    const formOptions = state.providers.map((p) => el("option", {value: p.name,
      text: p.state && p.state !== "ok" ? `${p.name} (${p.state})` : p.name}));
    if ([...form.options].map((o) => o.textContent).join("|") !==
        formOptions.map((o) => o.textContent).join("|")) {
      form.replaceChildren(...formOptions);
      form.value = names.includes(previous) ? previous : (names[0] || "");
    }
    const filter = $("filter-provider");
    const current = filter.value;
    const wanted = ["", ...names];
    if ([...filter.options].map((o) => o.value).join("|") !== wanted.join("|")) {
      filter.replaceChildren(el("option", {value: "", text: "All"}),
        ...names.map((name) => el("option", {value: name, text: name})));
      filter.value = names.includes(current) ? current : "";
    }
  }

  async function testConnection(name, card) {
    const button = card.querySelector(".provider-test-button");
    const output = card.querySelector(".provider-test-result");
    button.disabled = true;
    output.dataset.ok = "pending";
    setText(output, "Testing…");
    try {
      const body = await api("POST", `/api/providers/${encodeURIComponent(name)}/test`);
      const result = body.result || {};
      output.dataset.ok = result.ok ? "true" : "false";
      const parts = [result.ok ? "OK" : "Failed"];
      if (result.message) parts.push(result.message);
      if (result.account) parts.push(`account ${result.account}`);
      setText(output, parts.join(" — "));
    } catch (error) {
      output.dataset.ok = "false";
      setText(output, `Failed — ${error.code}: ${error.message}`);
    } finally {
      button.disabled = false;
      scheduleProviders(300);
    }
  }

  // -- the job list -----------------------------------------------------------
  function listPath() {
    const q = state.query;
    const params = new URLSearchParams();
    if (q.status) params.set("status", q.status);
    if (q.provider) params.set("provider", q.provider);
    if (q.q) params.set("q", q.q);
    params.set("sort", q.sort);
    params.set("order", q.order);
    params.set("limit", String(q.limit));
    params.set("offset", String(q.offset));
    return `/api/jobs?${params}`;
  }

  async function loadJobs() {
    if (state.loading) {
      state.reloadAgain = true;
      return state.loading;
    }
    state.buffered = [];
    state.loading = (async () => {
      try {
        const body = await api("GET", listPath());
        const jobs = body.jobs || [];
        state.total = typeof body.total === "number" ? body.total : jobs.length;
        if (jobs.length === 0 && state.query.offset > 0 && state.total > 0) {
          // the page emptied (deletes): step back to the last page that has rows
          state.query.offset = Math.max(0, Math.floor((state.total - 1) / state.query.limit) *
            state.query.limit);
          state.reloadAgain = true;
        } else {
          renderJobs(jobs);
        }
        for (const event of state.buffered) applyEvent(event, false);
        $("jobs-panel").dataset.loaded = "true";
      } catch (error) {
        if (error.field) {
          notify(`Cannot list jobs: ${error.field}: ${error.message}`, "error");
        } else {
          notify(`Cannot list jobs: ${error.message}`, "error");
        }
      } finally {
        state.buffered = null;
        state.loading = null;
      }
      if (state.reloadAgain) {
        state.reloadAgain = false;
        await loadJobs();
      }
    })();
    return state.loading;
  }

  function scheduleReload(delay = 250) {
    if (state.reloadTimer) return;
    state.reloadTimer = setTimeout(() => {
      state.reloadTimer = null;
      loadJobs();
    }, delay);
  }

  function renderJobs(jobs) {
    const body = $("jobs-body");
    const ids = jobs.map((j) => j.id);
    const keep = new Set(ids);
    for (const [id, row] of state.rows) {
      if (!keep.has(id)) {
        row.remove();
        state.rows.delete(id);
        state.jobs.delete(id);
      }
    }
    for (const id of [...state.selected]) if (!keep.has(id)) state.selected.delete(id);
    let previous = null;
    for (const job of jobs) {
      let row = state.rows.get(job.id);
      if (!row) {
        row = makeRow(job.id);
        state.rows.set(job.id, row);
      }
      state.jobs.set(job.id, job);
      fillRow(row, job);
      const next = previous ? previous.nextSibling : body.firstChild;
      if (next !== row) body.insertBefore(row, next);
      previous = row;
    }
    state.order = ids;
    $("jobs-empty").hidden = jobs.length > 0;
    renderPager();
    renderSelection();
    renderSortMarks();
  }

  function cell(label, ...children) {
    return el("td", {"data-label": label}, ...children);
  }

  function makeRow(id) {
    const check = el("input", {type: "checkbox", class: "row-select", "data-testid": "job-select",
      "aria-label": "Select job"});
    check.addEventListener("change", () => {
      if (check.checked) state.selected.add(id);
      else state.selected.delete(id);
      renderSelection();
    });
    const fill = el("div", {class: "fill"});
    const bar = el("div", {class: "bar", role: "progressbar", "aria-valuemin": "0",
      "aria-valuemax": "100"}, fill);
    const cancel = el("button", {type: "button", class: "small", "data-testid": "job-cancel",
      text: "Cancel"});
    cancel.addEventListener("click", () => rowAction(id, "cancel"));
    const retry = el("button", {type: "button", class: "small", "data-testid": "job-retry",
      text: "Retry"});
    retry.addEventListener("click", () => rowAction(id, "retry"));
    const row = el("tr", {"data-testid": "job-row", "data-job-id": id, id: `job-${id}`},
      el("td", {class: "col-select", "data-label": ""}, check),
      cell("Name", el("div", {class: "job-name", "data-testid": "job-name"}),
        el("div", {class: "job-sub muted", "data-testid": "job-sub"})),
      cell("Provider", el("span", {"data-testid": "job-provider"})),
      cell("State", el("span", {class: "badge", "data-testid": "job-state"})),
      cell("Progress", el("div", {class: "progress"}, bar,
        el("span", {class: "pct", "data-testid": "job-progress"}))),
      cell("Speed · ETA", el("span", {"data-testid": "job-speed"}),
        el("span", {class: "muted eta", "data-testid": "job-eta"})),
      cell("Error", el("span", {class: "job-error", "data-testid": "job-error"})),
      cell("Added", el("time", {"data-testid": "job-added"})),
      el("td", {class: "col-actions", "data-label": ""}, el("div", {class: "row-actions"},
        cancel, retry)),
    );
    row.parts = {check, fill, bar, cancel, retry,
      name: row.querySelector("[data-testid=job-name]"),
      sub: row.querySelector("[data-testid=job-sub]"),
      provider: row.querySelector("[data-testid=job-provider]"),
      badge: row.querySelector("[data-testid=job-state]"),
      pct: row.querySelector("[data-testid=job-progress]"),
      speed: row.querySelector("[data-testid=job-speed]"),
      eta: row.querySelector("[data-testid=job-eta]"),
      error: row.querySelector("[data-testid=job-error]"),
      added: row.querySelector("[data-testid=job-added]")};
    return row;
  }

  function fillRow(row, job) {
    const p = row.parts;
    row.dataset.status = job.status;
    row.dataset.provider = job.provider;
    const name = jobName(job);
    setText(p.name, name);
    p.name.title = jobSource(job);
    const sub = [`#${job.id.slice(0, 8)}`];
    if (job.attempt > 1) sub.push(`attempt ${job.attempt}`);
    const local = job.metadata && job.metadata.download;
    if (local && typeof local === "object" && local.files_total) {
      sub.push(`files ${local.files_done || 0}/${local.files_total}`);
    }
    setText(p.sub, sub.join(" · "));
    setText(p.provider, job.provider);
    setText(p.badge, job.status);
    p.badge.dataset.state = job.status;
    const progress = Math.max(0, Math.min(100, Number(job.progress) || 0));
    p.fill.style.width = `${progress}%`;
    p.bar.setAttribute("aria-valuenow", progress.toFixed(1));
    setText(p.pct, `${progress.toFixed(progress === 100 || progress === 0 ? 0 : 1)}%`);
    let speed = "—";
    let eta = "";
    if (local && typeof local === "object") {
      const done = local.bytes_done || 0;
      const total = local.bytes_total || 0;
      if (!TERMINAL.includes(job.status)) {
        speed = `${bytes(local.speed_bps || 0)}/s`;
        eta = local.eta_seconds === null || local.eta_seconds === undefined
          ? (total ? `${bytes(done)} / ${bytes(total)}` : "")
          : `ETA ${duration(local.eta_seconds)} · ${bytes(done)} / ${bytes(total)}`;
      } else if (total) {
        speed = bytes(total);
      }
    }
    setText(p.speed, speed);
    setText(p.eta, eta);
    p.speed.parentElement.dataset.empty = speed === "—" && !eta ? "true" : "false";
    const error = job.error;
    setText(p.error, error ? `${error.code}: ${error.message}` : "");
    p.error.title = error ? error.message : "";
    setText(p.added, dateText(job.created_at));
    if (job.created_at) p.added.setAttribute("datetime", new Date(job.created_at).toISOString());
    p.cancel.disabled = TERMINAL.includes(job.status);
    p.retry.disabled = !RETRYABLE.includes(job.status);
    p.check.checked = state.selected.has(job.id);
  }

  function renderPager() {
    const q = state.query;
    const first = state.total ? q.offset + 1 : 0;
    const last = Math.min(q.offset + state.order.length, state.total);
    setText($("page-info"), state.total ? `${first}–${last} of ${state.total}` : "0 jobs");
    setText($("jobs-total"), `(${state.total})`);
    $("page-prev").disabled = q.offset <= 0;
    $("page-next").disabled = q.offset + q.limit >= state.total;
  }

  function renderSortMarks() {
    for (const button of document.querySelectorAll(".sorter")) {
      const th = button.closest("th");
      if (button.dataset.sort === state.query.sort) {
        th.setAttribute("aria-sort", state.query.order === "asc" ? "ascending" : "descending");
        button.dataset.order = state.query.order;
      } else {
        th.removeAttribute("aria-sort");
        delete button.dataset.order;
      }
    }
    $("sort").value = state.query.sort;
    $("order").value = state.query.order;
  }

  function renderSelection() {
    const count = state.selected.size;
    setText($("selected-count"), `${count} selected`);
    for (const id of ["bulk-cancel", "bulk-retry", "bulk-delete"]) $(id).disabled = count === 0;
    const all = $("select-all");
    const shown = state.order.length;
    const picked = state.order.filter((id) => state.selected.has(id)).length;
    all.checked = shown > 0 && picked === shown;
    all.indeterminate = picked > 0 && picked < shown;
  }

  // -- live updates -------------------------------------------------------------
  function matchesQuery(job) {
    const q = state.query;
    if (q.status && !q.status.split(",").includes(job.status)) return false;
    if (q.provider && job.provider !== q.provider) return false;
    if (q.q) {
      const needle = q.q.toLowerCase();
      const hay = [job.id, jobName(job), jobSource(job)].join(" ").toLowerCase();
      if (!hay.includes(needle)) return false;
    }
    return true;
  }

  function applyEvent(event, live = true) {
    const job = event && event.job;
    if (!job || !job.id) return;
    if (live && state.buffered) {
      state.buffered.push(event);
      return;
    }
    const current = state.jobs.get(job.id);
    if (event.kind === "deleted") {
      // Gone from the store (bulk delete or clear, perhaps from another tab).
      if (current) scheduleReload();
      return;
    }
    if (current) {
      const newer = (job.attempt || 0) > (current.attempt || 0) ||
        ((job.attempt || 0) === (current.attempt || 0) &&
          (job.updated_at || 0) >= (current.updated_at || 0));
      if (!newer) return;
      state.jobs.set(job.id, job);
      fillRow(state.rows.get(job.id), job);
      renderSelection();
      const moved = state.query.sort !== "created_at" && event.kind !== "updated";
      if (!matchesQuery(job) || moved) scheduleReload();
    } else if (event.kind !== "updated" && matchesQuery(job)) {
      scheduleReload();
    }
    if (event.kind !== "updated") scheduleProviders();
  }

  function setConnection(stateName, text) {
    const box = $("conn-status");
    box.dataset.state = stateName;
    setText($("conn-text"), text);
  }

  function connectEvents() {
    if (state.events) state.events.close();
    const path = state.lastEventId
      ? `/api/events?last_event_id=${encodeURIComponent(state.lastEventId)}` : "/api/events";
    const source = new EventSource(path, {withCredentials: true});
    state.events = source;
    source.addEventListener("open", () => {
      state.retryDelay = 1000;
      setConnection("live", "live");
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up (a 401, a restarted daemon): try again ourselves
        setConnection("offline", `offline, retrying in ${Math.round(state.retryDelay / 1000)}s`);
        const delay = state.retryDelay;
        state.retryDelay = Math.min(state.retryDelay * 2, 30000);
        setTimeout(() => {
          if (state.events === source) {
            connectEvents();
            scheduleReload(0);
          }
        }, delay);
      } else {
        setConnection("reconnecting", "reconnecting…");
      }
    });
    source.addEventListener("job", (message) => {
      if (message.lastEventId) state.lastEventId = message.lastEventId;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      applyEvent(event);
    });
    source.addEventListener("reset", (message) => {
      if (message.lastEventId) state.lastEventId = message.lastEventId;
      loadJobs();
      scheduleProviders(0);
    });
  }

  // -- actions ------------------------------------------------------------------
  async function rowAction(id, action) {
    const row = state.rows.get(id);
    const button = row && row.parts[action];
    if (button) button.disabled = true;
    try {
      const body = await api("POST", `/api/jobs/${encodeURIComponent(id)}/${action}`);
      if (body.job) applyEvent({kind: "transition", job: body.job}, false);
      notify(`${action === "cancel" ? "Cancelled" : "Retrying"} ${jobName(body.job || {id})}`);
    } catch (error) {
      notify(`Cannot ${action}: ${error.message}`, "error");
      if (button) button.disabled = false;
    }
  }

  async function bulk(action) {
    const ids = state.order.filter((id) => state.selected.has(id));
    if (!ids.length) return;
    if (action === "delete" && !window.confirm(`Delete ${ids.length} job(s)?`)) return;
    for (const id of ["bulk-cancel", "bulk-retry", "bulk-delete"]) $(id).disabled = true;
    try {
      const body = await api("POST", "/api/jobs/bulk", {action, ids});
      const results = body.results || {};
      const failed = [];
      let ok = 0;
      for (const [id, result] of Object.entries(results)) {
        if (result && result.ok) {
          ok += 1;
          if (result.job) applyEvent({kind: "transition", job: result.job}, false);
        } else {
          const job = state.jobs.get(id);
          const why = result && result.error ? result.error.message : "failed";
          failed.push(`${job ? jobName(job) : id.slice(0, 8)}: ${why}`);
        }
      }
      state.selected.clear();
      const verb = {cancel: "Cancelled", retry: "Retried", delete: "Deleted"}[action];
      notify(`${verb} ${ok} job(s)${failed.length ? `; ${failed.length} refused — ` +
        failed.join("; ") : ""}`, failed.length ? "error" : "info");
    } catch (error) {
      notify(`Bulk ${action} failed: ${error.message}`, "error");
    } finally {
      renderSelection();
      await loadJobs();
    }
  }

  async function clearCompleted() {
    if (!window.confirm("Remove every completed job from the list?")) return;
    const button = $("clear-completed");
    button.disabled = true;
    try {
      const body = await api("DELETE", "/api/jobs?status=completed");
      notify(`Cleared ${body.deleted || 0} completed job(s)`);
    } catch (error) {
      notify(`Cannot clear completed jobs: ${error.message}`, "error");
    } finally {
      button.disabled = false;
      await loadJobs();
    }
  }

  // -- the form -----------------------------------------------------------------
  function currentKind() {
    const checked = document.querySelector("input[name=kind]:checked");
    return checked ? checked.value : "magnet";
  }

  function showKind() {
    const kind = currentKind();
    for (const box of document.querySelectorAll(".source")) box.hidden = box.dataset.kind !== kind;
  }

  function clearErrors() {
    for (const small of document.querySelectorAll(".field-error")) setText(small, "");
    for (const input of document.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
    }
    const formError = $("form-error");
    formError.hidden = true;
    setText(formError, "");
  }

  function fieldError(field, message) {
    let name = (field || "").replace(/^payload\./, "").replace(/\[\d+\]$/, "");
    if (["source", "payload"].includes(name)) name = currentKind() === "torrent" ? "torrent" : currentKind();
    let slot = document.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    while (!slot && name.includes(".")) {
      name = name.slice(0, name.lastIndexOf("."));
      slot = document.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    }
    if (!slot && name === "select") slot = document.querySelector('[data-error-for="select.globs"]');
    if (slot) {
      setText(slot, message);
      const input = document.querySelector(`[data-field="${CSS.escape(name)}"]`);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        if (input.closest("details")) input.closest("details").open = true;
        input.focus();
      }
      return;
    }
    const formError = $("form-error");
    setText(formError, field ? `${field}: ${message}` : message);
    formError.hidden = false;
  }

  function buildPayload(kind) {
    const payload = {};
    if (kind === "magnet") payload.magnet = $("source-magnet").value.trim();
    if (kind === "url") payload.url = $("source-url").value.trim();
    const select = {};
    const globs = $("select-globs").value.split(",").map((g) => g.trim()).filter(Boolean);
    if (globs.length) select.globs = globs;
    if ($("select-largest").checked) select.largest_only = true;
    const minSize = $("select-min-size").value.trim();
    if (minSize !== "") {
      const mb = Number(minSize);
      select.min_size = Number.isFinite(mb) ? Math.round(mb * 1e6) : minSize;
    }
    if (Object.keys(select).length) payload.select = select;
    const dir = $("download-dir").value.trim();
    if (dir) payload.download_dir = dir;
    const connections = $("connections").value.trim();
    if (connections !== "" && connections !== "1") {
      const n = Number(connections);
      payload.connections = Number.isInteger(n) ? n : connections;
    }
    return payload;
  }

  async function submitJob(event) {
    event.preventDefault();
    clearErrors();
    const provider = $("job-provider").value;
    if (!provider) {
      fieldError("provider", "choose a provider");
      return;
    }
    const kind = currentKind();
    const payload = buildPayload(kind);
    let body;
    if (kind === "torrent") {
      const file = $("source-torrent").files[0];
      if (!file) {
        fieldError("torrent", "choose a .torrent file");
        return;
      }
      body = new FormData();
      body.append("provider", provider);
      body.append("payload", JSON.stringify(payload));
      body.append("torrent", file, file.name);
    } else {
      if (!payload[kind]) {
        fieldError(kind, kind === "magnet" ? "paste a magnet link" : "enter a URL");
        return;
      }
      body = {provider, payload};
    }
    const button = $("add-job");
    button.disabled = true;
    try {
      const answer = await api("POST", "/api/jobs", body);
      const job = answer.job;
      notify(`Added ${job ? jobName(job) : "job"}`);
      for (const id of ["source-magnet", "source-url", "source-torrent"]) $(id).value = "";
      if (job) $("job-form").dataset.lastJob = job.id;
      scheduleReload(0);
    } catch (error) {
      if (error.status === 404 && error.code === "unknown_provider") {
        fieldError("provider", error.message);
      } else if (error.status === 413) {
        fieldError(kind === "torrent" ? "torrent" : null, error.message);
      } else {
        fieldError(error.field, error.message);
      }
    } finally {
      button.disabled = false;
    }
  }

  // -- wiring -------------------------------------------------------------------
  function onQueryChange(changes) {
    Object.assign(state.query, changes);
    loadJobs();
  }

  function wire() {
    $("job-form").addEventListener("submit", submitJob);
    for (const radio of document.querySelectorAll("input[name=kind]")) {
      radio.addEventListener("change", () => {
        clearErrors();
        showKind();
      });
    }
    $("filter-status").addEventListener("change", (e) =>
      onQueryChange({status: e.target.value, offset: 0}));
    $("filter-provider").addEventListener("change", (e) =>
      onQueryChange({provider: e.target.value, offset: 0}));
    let searchTimer = null;
    $("filter-q").addEventListener("input", (e) => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => onQueryChange({q: e.target.value.trim(), offset: 0}), 300);
    });
    $("sort").addEventListener("change", (e) => onQueryChange({sort: e.target.value, offset: 0}));
    $("order").addEventListener("change", (e) => onQueryChange({order: e.target.value, offset: 0}));
    for (const button of document.querySelectorAll(".sorter")) {
      button.addEventListener("click", () => {
        const sort = button.dataset.sort;
        const order = state.query.sort === sort && state.query.order === "desc" ? "asc" : "desc";
        onQueryChange({sort, order, offset: 0});
      });
    }
    $("page-size").addEventListener("change", (e) =>
      onQueryChange({limit: Number(e.target.value), offset: 0}));
    $("page-prev").addEventListener("click", () =>
      onQueryChange({offset: Math.max(0, state.query.offset - state.query.limit)}));
    $("page-next").addEventListener("click", () =>
      onQueryChange({offset: state.query.offset + state.query.limit}));
    $("select-all").addEventListener("change", (e) => {
      for (const id of state.order) {
        if (e.target.checked) state.selected.add(id);
        else state.selected.delete(id);
        const row = state.rows.get(id);
        if (row) row.parts.check.checked = e.target.checked;
      }
      renderSelection();
    });
    $("bulk-cancel").addEventListener("click", () => bulk("cancel"));
    $("bulk-retry").addEventListener("click", () => bulk("retry"));
    $("bulk-delete").addEventListener("click", () => bulk("delete"));
    $("clear-completed").addEventListener("click", clearCompleted);
    $("providers-refresh").addEventListener("click", () => loadProviders());
    $("notice").addEventListener("click", () => { $("notice").hidden = true; });
    // countdowns (pauses, budgets) move every second; the figures every few
    setInterval(() => {
      if (state.providers.length) {
        for (const provider of state.providers) {
          const card = $("providers").querySelector(
            `[data-provider="${CSS.escape(provider.name)}"]`);
          if (card) fillProvider(card, provider);
        }
        renderBanners();
      }
    }, 1000);
    setInterval(() => {
      if (!document.hidden) {
        loadProviders();
        loadRefusals();
      }
    }, 5000);
  }

  async function start() {
    wire();
    showKind();
    renderSortMarks();
    try {
      await loadSession();
    } catch (error) {
      if (error.status === 401) signedOut();
      else notify(`Cannot reach the daemon: ${error.message}`, "error");
      setConnection("offline", "not signed in");
      return;
    }
    connectEvents();
    await Promise.all([loadProviders(), loadJobs(), loadRefusals()]);
    document.body.dataset.ready = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
