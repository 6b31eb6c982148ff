"""A faithful fake of TorBox's API (``/v1/api/...``) for tests, on a real socket.

Start it from a test (``FakeTorBox(clock=clock).start()``) or a CLI
(``FakeTorBox(port=N).start()``); point a provider at ``fake.url`` with
``fake.api_key``. Behaviour follows the facts sheet (docs/torbox.md lists what
the fake decides where the facts are silent):

- the ``{success, error, detail, data}`` envelope, FastAPI 422 bodies for bad
  parameters, 403 ``NO_AUTH`` / ``BAD_TOKEN``, 404 ``ENDPOINT_NOT_FOUND``;
- torrents (multipart or urlencoded create, magnet or file), web downloads
  (``webdl_id`` to control, ``web_id`` to request links), the queue (only
  visible through ``/queued/getqueued``), cache checks, ``user/me``;
- lifecycles on the injected clock (``settings.step_seconds``; cached items are
  done at once) with scenarios per hash or link: see ``SCENARIOS``;
- a torrent list that is stale unless ``bypass_cache=true``;
- requestdl links that expire and are served from this same server with Range;
- 429s past 300 requests a minute and past 60 creations an hour (10 a minute),
  counted on the injected clock, with ``Retry-After``;
- every base ``FakeServer`` fault, counter and control route.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Any

from engine.testing._fakehttp import FakeRequest, FakeResponse, FakeServer, RateWindow
from engine.testing.torbox._account import (
    CachedEntry,
    TorBoxAccount,
    TorBoxSettings,
    link_hash,
)
from engine.testing.torbox._model import SCENARIOS, FakeItem, ItemKind, QueuedEntry, make_files
from engine.testing.torbox._routes import TorBoxRoutes
from engine.testing.torbox._wire import fail
from providers import Clock, ProviderContext, RateLimiter
from providers.torbox import TorBoxProvider

__all__ = ["SCENARIOS", "FakeTorBox", "TorBoxSettings"]

API = "/v1/api"

#: Routes that create items and so count against the creation limits (SUPPORT).
_CREATE_ROUTES = frozenset({"createtorrent", "createwebdownload"})
#: Routes outside the API's auth and rate limits.
_OPEN_ROUTES = frozenset({"status", "cdn", "cdn_head"})


class FakeTorBox(FakeServer):
    """The fake TorBox server (see the module docstring)."""

    kind = "torbox"

    def __init__(
        self,
        *,
        port: int = 0,
        clock: Clock | None = None,
        seed: int = 0,
        api_key: str = "tb-test-key-0000",
        settings: TorBoxSettings | None = None,
        **knobs: Any,
    ) -> None:
        super().__init__(port=port, clock=clock, seed=seed)
        self.api_key = api_key
        self.settings = settings or TorBoxSettings(**knobs)
        self.account = TorBoxAccount(self.clock, self.settings)
        #: The general limit: 300 requests a minute per key (SUPPORT; POSTMAN newer text).
        self.general_window = RateWindow(300, 60.0, self.clock)
        #: Creation limits: 60 an hour per key with a 10 a minute edge (SUPPORT).
        self.create_windows = _Windows(
            self.clock, ((60, 3600.0, "60 per 1 hour"), (10, 60.0, "10 per 1 minute"))
        )
        self._requestdl_faults: list[tuple[int, str, str]] = []
        self._requestdl_status = 500
        #: Creation answers scripted per info-hash or link: key -> (status, error, detail).
        self.refusals: dict[str, tuple[int, str, str]] = {}
        TorBoxRoutes(self).install()

    def start(self) -> FakeTorBox:
        """Bind and serve in a background thread."""
        super().start()
        httpd = self._httpd
        if httpd is not None:
            # The base writes headers and body separately; with Nagle on, a keep-alive
            # client waits ~40 ms (delayed ACK) per request. Set before any client
            # connects: this server's own handler class only.
            handler: Any = httpd.RequestHandlerClass
            handler.disable_nagle_algorithm = True
        return self

    # -- knobs for tests -----------------------------------------------------
    def add_cached(
        self,
        key: str,
        *,
        name: str | None = None,
        files: list[tuple[str, int]] | None = None,
        slow: bool = False,
    ) -> None:
        """Mark an info-hash (or a web link) as cached; ``slow``: files present only later."""
        with self.account.lock:
            self.account.cached[_key(key)] = CachedEntry(name or f"Cached {key[-8:]}", files, slow)

    def expire_links(self) -> None:
        """Every CDN link handed out so far answers 403 "Invalid Presigned Token" from
        now on (as TorBox's do some hours in, decypharr#183)."""
        with self.account.lock:
            for link in self.account.links.values():
                link.expires = float("-inf")

    def set_scenario(self, key: str, scenario: str) -> None:
        """Give the item made for an info-hash or link a scenario from ``SCENARIOS``."""
        if scenario not in SCENARIOS:
            raise ValueError(f"scenario: unknown {scenario!r} (known: {', '.join(SCENARIOS)})")
        with self.account.lock:
            self.account.scenarios[_key(key)] = scenario

    def refuse(self, key: str, error: str, *, status: int | None = None, detail: str = "") -> None:
        """Make creating ``key`` (info-hash or link) answer ``error``: DOWNLOAD_TOO_LARGE,
        LINK_OFFLINE, PLAN_RESTRICTED_FEATURE... (GOSDK errors table). Codes ending in
        ERROR are server faults (500), the others caller errors (400) (GOSDK)."""
        code = status if status is not None else (500 if error.endswith("ERROR") else 400)
        with self.account.lock:
            self.refusals[_key(key)] = (code, error, detail or error.replace("_", " ").capitalize())

    def fail_requestdl(
        self, count: int = 1, error: str = "DATABASE_ERROR", status: int = 500
    ) -> None:
        """The next ``count`` requestdl calls answer ``error`` (DATABASE_ERROR: rdt-client#1025;
        a 403 for every file while other routes work: decypharr#401)."""
        detail = {
            "DATABASE_ERROR": "There was an error processing your request. Please try again later.",
        }.get(error, "Access to this download was denied.")
        with self.account.lock:
            self._requestdl_faults.append((count, error, detail))
            self._requestdl_status = status

    def take_requestdl_fault(self) -> FakeResponse | None:
        """Consume one scripted requestdl failure (used by the route)."""
        with self.account.lock:
            if not self._requestdl_faults:
                return None
            count, error, detail = self._requestdl_faults[0]
            if count <= 1:
                self._requestdl_faults.pop(0)
            else:
                self._requestdl_faults[0] = (count - 1, error, detail)
            return fail(self._requestdl_status, error, detail)

    def add_item(
        self,
        kind: ItemKind,
        key: str,
        *,
        name: str | None = None,
        scenario: str | None = None,
        files: list[tuple[str, int]] | None = None,
    ) -> FakeItem:
        """Put an item on the account directly (no request, no limits): for bulk set-ups."""
        item_hash = link_hash(key) if kind == "webdl" else key.lower()
        with self.account.lock:
            return self.account.add(
                kind,
                _key(key),
                item_hash,
                name or f"Item {key[-8:]}",
                scenario=scenario,
                files=make_files(_key(key), files) if files else None,
                link=key if kind == "webdl" else None,
            )

    def provider_options(self, **options: Any) -> dict[str, Any]:
        """Options that point a ``TorBoxProvider`` at this fake (``providers={"torbox": ...}``)."""
        return {"api_key": self.api_key, "base_url": self.url, **options}

    def make_provider(self, *, limiters: bool = False, **options: Any) -> TorBoxProvider:
        """A ``TorBoxProvider`` bound to this fake and its clock.

        With ``limiters`` it gets the token buckets it asks for, on the fake's clock
        (as the engine would give them); without, it sends as fast as it is called.
        """
        provider = TorBoxProvider(**self.provider_options(**options))
        buckets = {}
        if limiters:
            buckets = {
                name: RateLimiter(limit.rate, limit.burst, self.clock, name=name)
                for name, limit in provider.rate_limits().items()
            }
        provider.bind(ProviderContext(clock=self.clock, limiters=buckets))
        return provider

    # -- inspection ----------------------------------------------------------
    def items(self, kind: ItemKind | None = None) -> list[FakeItem]:
        """Every running item (of ``kind``), oldest first."""
        with self.account.lock:
            kinds: tuple[ItemKind, ...] = (kind,) if kind else ("torrent", "webdl")
            found = [i for k in kinds for i in self.account.items[k].values()]
        return sorted(found, key=lambda i: (i.kind, i.id))

    def queued(self, kind: ItemKind | None = None) -> list[QueuedEntry]:
        """Every queued entry (of ``kind``), oldest first."""
        with self.account.lock:
            return sorted(
                (q for q in self.account.queue.values() if kind is None or q.kind == kind),
                key=lambda q: q.id,
            )

    def hash_counts(self) -> dict[str, int]:
        """How many items and queued entries exist per hash (more than 1: a duplicate)."""
        counts: dict[str, int] = {}
        hashes = [i.hash for i in self.items()] + [q.hash for q in self.queued()]
        for item_hash in hashes:
            counts[item_hash] = counts.get(item_hash, 0) + 1
        return counts

    def state_of(self, kind: ItemKind, item_id: int) -> str | None:
        """The download_state an item shows now (None: no such item)."""
        with self.account.lock:
            item = self.account.items[kind].get(item_id)
            if item is None:
                return None
            view = self.account.view()
            state = item.to_json(self.clock.monotonic(), self.settings.step_seconds, view)
        return str(state["download_state"])

    def stats(self) -> dict[str, Any]:
        """Request counters plus the account's contents."""
        base = super().stats()
        with self.account.lock:
            base["items"] = {k: len(v) for k, v in self.account.items.items()}
            base["queued"] = len(self.account.queue)
            base["active"] = self.account.active_count()
            base["slots"] = self.account.slot_limit()
        return base

    # -- dispatch hooks ------------------------------------------------------
    def before(self, request: FakeRequest) -> FakeResponse | None:
        """Auth, then the rate limits, then starting queued items whose slot has freed."""
        if request.route in _OPEN_ROUTES or request.route.startswith("deprecated"):
            return None
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        limited = self._rate_limit(request)
        if limited is not None:
            return limited
        self.account.tick()
        return None

    def _authenticate(self, request: FakeRequest) -> FakeResponse | None:
        status = self.settings.auth_status
        if request.route.endswith("requestdl"):
            # requestdl takes the key as the `token` query parameter (SPEC; PYSDK);
            # a missing one is a 422 from the route's own validation.
            token = request.arg("token")
            if token is None or token == self.api_key:
                return None
            return fail(status, "BAD_TOKEN", "Invalid API token.")
        header = request.header("authorization") or ""
        scheme, _, credential = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not credential.strip():
            return fail(status, "NO_AUTH", "No authentication was provided.")
        if credential.strip() != self.api_key:
            return fail(status, "BAD_TOKEN", "Invalid API token.")
        return None

    def _rate_limit(self, request: FakeRequest) -> FakeResponse | None:
        # decypharr's fake answers 429 RATE_LIMIT_EXCEEDED with a Retry-After; the real
        # body and headers are unconfirmed (facts §5).
        wait = self.general_window.hit(count_refused=False)
        if wait is not None:
            return self._too_many(wait, "300 per 1 minute")
        if request.route in _CREATE_ROUTES:
            refused = self.create_windows.hit()
            if refused is not None:
                return self._too_many(*refused)
        return None

    def _too_many(self, wait: float, label: str) -> FakeResponse:
        with self._lock:
            self.counts["rate_limited"] += 1
        retry_after = str(max(1, math.ceil(wait)))
        return fail(429, "RATE_LIMIT_EXCEEDED", label, **{"Retry-After": retry_after})

    def not_found(self, request: FakeRequest, *, method_not_allowed: bool) -> FakeResponse:
        """TorBox's envelope for unknown routes (SPEC); FastAPI's body for a wrong method."""
        if method_not_allowed:
            return FakeResponse.json({"detail": "Method Not Allowed"}, 405)
        return fail(
            404, "ENDPOINT_NOT_FOUND", "Endpoint not found. Please check the URL and try again."
        )


class _Windows:
    """Sliding windows that admit a request only when every one has room.

    A request refused by one window is counted by none, so the hourly count is
    exactly the creations that went through.
    """

    def __init__(self, clock: Clock, limits: tuple[tuple[int, float, str], ...]) -> None:
        self._clock = clock
        self._limits = limits
        self._hits: tuple[deque[float], ...] = tuple(deque() for _ in limits)
        self._lock = threading.Lock()

    def hit(self) -> tuple[float, str] | None:
        """None when admitted (and counted), else (seconds to wait, the label of the limit)."""
        with self._lock:
            now = self._clock.monotonic()
            refused: tuple[float, str] | None = None
            for (limit, window, label), hits in zip(self._limits, self._hits, strict=True):
                while hits and hits[0] <= now - window:
                    hits.popleft()
                if len(hits) >= limit:
                    wait = max(hits[0] + window - now, 0.001)
                    refused = max(refused or (wait, label), (wait, label))
            if refused is None:
                for hits in self._hits:
                    hits.append(now)
            return refused


def _key(key: str) -> str:
    """Info-hashes are case-insensitive; web links are kept as given."""
    return key if "://" in key else key.lower()
