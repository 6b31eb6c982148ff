"""``TorBoxProvider``: the Provider protocol over TorBox's API.

Decisions where the facts are silent are in docs/torbox.md; the quirks this
class handles are cited where they are handled.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs
import httpx

from providers._errors import ProviderError, ValidationError
from providers._job import JobFile
from providers._log import get_logger
from providers._payload import StartJobPayload
from providers._protocol import BaseProvider, Call
from providers._responses import (
    CancelJobResponse,
    FileLinksResponse,
    JobStatusResponse,
    RateLimit,
    TestConnectionResponse,
)
from providers._secrets import SecretView
from providers._selection import select_files
from providers._status import JobStatus
from providers.torbox._api import TorBoxApi
from providers.torbox._ids import ItemKind, RemoteRef, parse_remote_id
from providers.torbox._items import as_int, is_ready, item_files, queued_status
from providers.torbox._links import DirectLinks, link_target
from providers.torbox._scan import kind_of
from providers.torbox._tracker import ItemTracker, with_source

__all__ = ["DEFAULT_BASE_URL", "MAX_PAGE_SIZE", "PLAN_SLOTS", "RATE_LIMITS", "TorBoxProvider"]

DEFAULT_BASE_URL = "https://api.torbox.app"
#: The largest list page asked for: mylist's and getqueued's default ``limit`` (SPEC;
#: PYSDK), the most TorBox is known to serve. A larger page that came back cut to
#: this would look short, the end of the list, and hide every item after it.
MAX_PAGE_SIZE = 1000

#: Buckets (SUPPORT; POSTMAN newer text). A bucket grants at most burst + rate * t in
#: any t seconds. General, 300/min per key: 20 + 4.5 * 60 = 290. Creation, 60/hour with
#: a 10/min edge: 8 + 50/3600 * 3600 = 58 an hour, 8 + 50/60 = 8.8 a minute. The
#: margins cover a request granted just before a window and arriving inside it.
RATE_LIMITS: Mapping[str, RateLimit] = {
    "default": RateLimit(4.5, 20),
    "create": RateLimit(50 / 3600, 8),
}

#: Slots per plan as clients assume them (DECY planSlots; rdt-client#987): 1 Essential,
#: 2 Pro, 3 Standard (PYSDK plan numbers). Free is unknown: learnt from ACTIVE_LIMIT.
PLAN_SLOTS = {1: 3, 2: 10, 3: 5}
PLAN_NAMES = {0: "Free", 1: "Essential", 2: "Pro", 3: "Standard"}

#: Requests per call as this module sends them, by bucket (every request takes
#: ``default``; createtorrent / createwebdownload take ``create`` too, see _api).
#: SUBMIT is worked out in ``budgets``.
_BUDGETS: Mapping[Call, Mapping[str, int]] = {
    Call.FIND: {"default": 2},  # a fresh mylist page, then getqueued when not there
    Call.LINKS: {"default": 1},  # mylist?id= (none when a poll just saw it ready)
    Call.STATUS: {"default": 1},  # mylist?id=
    Call.POLL: {"default": 1},  # one mylist pass per kind (getqueued with queued items)
    Call.CANCEL: {"default": 1},  # controltorrent / controlwebdownload / controlqueued
    Call.TEST: {"default": 1},  # user/me
}


log = get_logger("debrid.providers.torbox")

#: Where the key is looked for without the ``api_key`` option (whatever the provider's name).
_STORED_KEY = "torbox.api_key"


class _Secret:
    """A value that never shows itself in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


@attrs.frozen
class _Options:
    base_url: str
    timeout: float
    page_size: int
    seed: int | None
    allow_zip: bool
    as_queued: bool
    link_ttl: float
    stale_seconds: float


class TorBoxProvider(BaseProvider):
    """TorBox (torbox.app): torrents (magnet or file) and hoster links (web downloads).

    Options: ``api_key`` (else the secret store's ``torbox.api_key``), ``base_url``,
    ``timeout``, ``page_size`` (list page, 1 to 1000, default 1000 as the API), ``seed``
    (1 auto, 2 seed, 3 don't), ``allow_zip`` (default False: always single
    files), ``as_queued`` (let TorBox queue instead of answering ACTIVE_LIMIT),
    ``link_ttl`` (seconds a CDN URL is reused), ``stale_seconds`` (how long a new
    item may be missing from an uncached list).
    """

    name = "torbox"
    #: ProviderHttp takes a token before every request (one call may be several).
    limits_requests = True
    #: TorBox does not report its slots up front: the plan is read before the first
    #: submission, and ACTIVE_LIMIT answers correct it.
    slots_learnt_lazily = True

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        page_size: int = MAX_PAGE_SIZE,
        seed: int | None = None,
        allow_zip: bool = False,
        as_queued: bool = False,
        link_ttl: float = 50 * 60.0,
        stale_seconds: float = 600.0,
        name: str = "torbox",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__()
        _check(
            isinstance(page_size, int)
            and not isinstance(page_size, bool)
            and 1 <= page_size <= MAX_PAGE_SIZE,
            "page_size",
            page_size,
            f"an int from 1 to {MAX_PAGE_SIZE}",
        )
        _check(seed in (None, 1, 2, 3), "seed", seed, "1 (auto), 2 (seed) or 3 (don't seed)")
        _check(link_ttl >= 0 and stale_seconds >= 0, "link_ttl", link_ttl, "seconds >= 0")
        _check(isinstance(base_url, str) and "://" in base_url, "base_url", base_url, "a URL")
        self.name = name
        self._key = _Secret(api_key) if api_key else None
        self._stored = SecretView(lambda: self.context.secrets, [_STORED_KEY])
        # 1 h in older docs, 3 h now (PYSDK): 50 min stays valid under either.
        self.options = _Options(
            base_url.rstrip("/"),
            timeout,
            page_size,
            seed,
            allow_zip,
            as_queued,
            link_ttl,
            stale_seconds,
        )
        self.api = TorBoxApi(
            name,
            self.options.base_url,
            api_key=self._api_key,
            key_generation=self._key_generation,
            context=lambda: self.context,
            timeout=timeout,
            transport=transport,
        )
        self.tracker = ItemTracker(
            name,
            self.api,
            base_url=self.options.base_url,
            page_size=page_size,
            stale_seconds=stale_seconds,
            now=self._now,
        )
        self.links = DirectLinks(self.api, self.options.link_ttl, self._now)
        self._plan_slots: int | None = None
        self._plan_checked = False

    def __repr__(self) -> str:
        return f"TorBoxProvider(name={self.name!r}, base_url={self.options.base_url!r})"

    # -- plumbing ------------------------------------------------------------
    def _api_key(self) -> str:
        # The option, else the stored key as last read (``_key_generation`` reads it
        # again once per request, so a key stored meanwhile is used at once).
        key = self._key.reveal() if self._key is not None else self._stored.get(_STORED_KEY)
        if not key:
            raise ProviderError("no TorBox API key configured", self.name, code="NO_AUTH")
        return key

    def _key_generation(self) -> int:
        if self._key is None:
            self._stored.sync()
        return self._stored.generation

    def _now(self) -> float:
        return self.context.clock.monotonic()

    def _parse(self, remote_id: str) -> RemoteRef:
        ref = parse_remote_id(remote_id)
        if ref is None:
            raise ProviderError(
                f"not a TorBox remote id: {remote_id!r}", self.name, code="NOT_FOUND"
            )
        return ref

    # -- the Provider protocol ----------------------------------------------
    def rate_limits(self) -> Mapping[str, RateLimit]:
        """The general bucket and the creation bucket (see ``RATE_LIMITS``)."""
        return dict(RATE_LIMITS)

    def budgets(self, call: Call, payload: StartJobPayload | None) -> Mapping[str, int]:
        """Tokens per bucket a call takes here (see ``_BUDGETS``).

        A submission is one create request (``create`` and ``default``), plus user/me
        before the first one and checkcached when ``only_if_cached``.
        """
        if call is not Call.SUBMIT:
            return _BUDGETS[call]
        general = 1 + (0 if self._plan_checked else 1)
        if payload is not None and payload.only_if_cached:
            general += 1
        return {"create": 1, "default": general}

    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        """createtorrent (magnet or file, multipart) or createwebdownload (hoster link)."""
        kind = kind_of(payload.kind)
        item_hash = _payload_hash(payload)
        if not self._plan_checked:
            self._learn_plan()  # once: the engine paces submissions by max_active
        if payload.only_if_cached and item_hash not in self.api.cached_hashes(kind, [item_hash]):
            # Asked first: a refusal then costs no creation token (60/hour).
            raise ProviderError("not cached at TorBox", self.name, code="NOT_CACHED")
        fields = {"as_queued": _flag(self.options.as_queued)}
        if payload.only_if_cached:
            fields["add_only_if_cached"] = "true"
        try:
            if kind == "torrent":
                fields["allow_zip"] = _flag(self.options.allow_zip)
                if self.options.seed is not None:
                    fields["seed"] = str(self.options.seed)
                data, detail = self.api.create_torrent(
                    magnet=payload.magnet, torrent=payload.torrent, fields=fields
                )
            else:
                assert payload.url is not None
                data, detail = self.api.create_webdl(payload.url, fields)
        except ProviderError as error:
            if error.code == "ACTIVE_LIMIT":
                self._learn_slots(self.api.last_active_limit or {}, refused=True)
                log.warning("torbox_active_limit", provider=self.name, max_active=self._max_active)
            elif error.code == "DUPLICATE_ITEM":
                # The account has it already: take that item, as Real-Debrid's code
                # 33 is taken (the engine shares it between the jobs that asked).
                existing = self.find_existing(payload)
                if existing is not None:
                    log.info("torbox_duplicate_adopted", provider=self.name,
                             remote_id=existing.remote_id)
                    return existing
            raise
        return self._created(kind, data, detail, item_hash, payload)

    def _created(
        self, kind: ItemKind, data: Any, detail: str, item_hash: str, payload: StartJobPayload
    ) -> JobStatusResponse:
        data = data if isinstance(data, dict) else {}
        self._learn_slots(data)
        returned = data.get("hash")
        item_hash = returned.lower() if isinstance(returned, str) and returned else item_hash
        queued_id = as_int(data.get("queued_id"))
        item_id = as_int(data.get("torrent_id" if kind == "torrent" else "webdownload_id"))
        info_hash = item_hash if kind == "torrent" else None
        self.tracker.touch(kind)
        if item_id is None and queued_id is not None:
            remote_id = str(RemoteRef(kind, queued_id, queued=True, hash=item_hash))
            log.info("torbox_queued", provider=self.name, remote_id=remote_id)
            entry = {"id": queued_id, "hash": item_hash}
            return attrs.evolve(queued_status(entry, kind, remote_id), source=payload.url)
        if item_id is None:
            raise ProviderError(
                "create answered without an id",
                self.name,
                code="PROVIDER_UNAVAILABLE",
                retryable=True,
            )
        remote_id = str(RemoteRef(kind, item_id))
        cached = detail.lower().startswith("found cached")  # clients key off this (facts §3.1)
        log.info("torbox_submitted", provider=self.name, remote_id=remote_id, cached=cached)
        return JobStatusResponse(
            remote_id=remote_id,
            status=JobStatus.RESOLVING,
            native_status="submitted",
            info_hash=info_hash,
            source=payload.url,
            metadata={"kind": kind, "torbox_id": item_id, "hash": item_hash, "cached": cached},
        )

    def _learn_slots(self, data: Mapping[str, Any], *, refused: bool = False) -> None:
        """Update ``max_active`` from slot counts (POSTMAN create model), the plan, or usage."""
        limit = as_int(data.get("active_limit"))
        if limit:
            self._max_active = limit
            return
        if not refused:
            return
        # Refused without a limit: the live count in use is the limit; else the plan's.
        current = as_int(data.get("current_active_downloads"))
        if not current and not self._plan_checked:
            self._learn_plan()
        known = current or self._plan_slots
        if known:
            self._max_active = known

    def _learn_plan(self) -> None:
        # Best effort: the submission (or the ACTIVE_LIMIT report) matters more.
        self._plan_checked = True
        with contextlib.suppress(ProviderError):
            self._plan_from(self.api.user())

    def _plan_from(self, user: Mapping[str, Any]) -> int | None:
        self._plan_checked = True
        plan = as_int(user.get("plan"))
        slots = PLAN_SLOTS.get(plan) if plan is not None else None
        if slots is not None:
            slots += as_int(user.get("additional_concurrent_slots")) or 0
            self._plan_slots = slots
            self._max_active = slots
        return plan

    def get_status(self, remote_id: str) -> JobStatusResponse:
        """One item, fresh (mylist with ``id`` answers an object: SPEC)."""
        ref = self._parse(remote_id)
        if ref.queued:
            found = self.list_statuses([remote_id])
            if remote_id not in found:
                raise ProviderError(f"no TorBox item {remote_id}", self.name, code="NOT_FOUND")
            return found[remote_id]
        item = self.api.get_item(ref.kind, ref.number)
        if item is None:
            raise ProviderError(f"no TorBox item {remote_id}", self.name, code="NOT_FOUND")
        return self.tracker.status(item, ref.kind, remote_id)

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        """One mylist pass per kind (and one getqueued pass per kind with queued items)."""
        return self.tracker.poll(remote_ids)

    def find_existing(
        self, payload: StartJobPayload, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        """The item (or queued entry) for this hash or link, read fresh; failed ones skipped.

        Items in ``exclude`` are skipped, and the list item a queued entry in it
        became (or the other way round) when a poll saw the move.
        """
        found = self.tracker.find(kind_of(payload.kind), _payload_hash(payload), exclude)
        return with_source(found, payload.url)

    def cancel(self, remote_id: str) -> CancelJobResponse:
        """Delete the item (controltorrent / controlwebdownload / controlqueued)."""
        ref = parse_remote_id(remote_id)
        if ref is None:
            return CancelJobResponse(remote_id, cancelled=True, already_gone=True)
        self.tracker.forget(remote_id)
        target: str = "queued" if ref.queued else ref.kind
        try:
            self.api.control(target, ref.number, "delete")
            return CancelJobResponse(remote_id)
        except ProviderError as error:
            if error.code != "NOT_FOUND":
                raise
        if ref.queued and ref.hash:
            # Started meanwhile under a new id (rdt-client#987): delete that one.
            number = self.tracker.started_id(ref.kind, ref.hash)
            if number is not None:
                return self.cancel(str(RemoteRef(ref.kind, number)))
        return CancelJobResponse(remote_id, cancelled=True, already_gone=True)

    def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
        """Every file, ``selected`` per the payload, with permalinks on the selected ones."""
        ref = self._parse(remote_id)
        if ref.queued:
            status = self.get_status(remote_id)
            if status.remote_id == remote_id:
                return FileLinksResponse(remote_id, (), ready=False)
            remote_id, ref = status.remote_id, self._parse(status.remote_id)
        item = self.tracker.take_ready(remote_id) or self.api.get_item(ref.kind, ref.number)
        if item is None:
            raise ProviderError(f"no TorBox item {remote_id}", self.name, code="NOT_FOUND")
        files = item_files(item, ref.kind, self.options.base_url, with_links=True)
        chosen = select_files(payload.select, files)
        # Selection is ours alone: TorBox has none server-side, so unselected files
        # simply get no link.
        files = tuple(f if f.selected else attrs.evolve(f, link=None) for f in chosen)
        if not is_ready(item) or not files:
            return FileLinksResponse(
                remote_id, tuple(attrs.evolve(f, link=None) for f in files), ready=False
            )
        return FileLinksResponse(remote_id, files)

    def resolve_download_url(self, remote_id: str, file: JobFile) -> str:
        """A CDN URL from requestdl (key as ``token``), reused until ``link_ttl``."""
        target = link_target(parse_remote_id(remote_id), file)
        if target is None:
            raise ProviderError(f"{remote_id} has no file {file.id} yet", self.name, code="NO_LINK")
        return self.links.resolve(target)

    def forget_download_url(self, remote_id: str, file: JobFile, url: str) -> None:
        """A CDN URL that answered 403 ("Invalid Presigned Token") is not reused."""
        target = link_target(parse_remote_id(remote_id), file)
        if target is not None:
            self.links.forget(target)

    def test_connection(self) -> TestConnectionResponse:
        """user/me: plan, expiry and slots; ``ok=False`` (never an exception) on failure."""
        try:
            user = self.api.user()
        except ProviderError as error:
            if error.code in ("BAD_TOKEN", "NO_AUTH", "AUTH_ERROR", "OAUTH_VERIFICATION_ERROR"):
                message = f"TorBox rejected the API key ({error.code})"
            else:
                message = f"TorBox did not answer properly: {error.message} ({error.code})"
            return TestConnectionResponse(
                self.name,
                ok=False,
                message=message,
                details={"code": error.code, "retryable": error.retryable},
            )
        plan = self._plan_from(user)
        plan_name = PLAN_NAMES.get(plan, f"plan {plan}") if plan is not None else "unknown"
        expires = user.get("premium_expires_at")
        return TestConnectionResponse(
            self.name,
            ok=True,
            message=f"TorBox {plan_name} plan, premium until {expires or 'unknown'}",
            account=str(user.get("email") or user.get("auth_id") or "") or None,
            details={
                "plan": plan_name,
                "plan_id": plan,
                "premium_expires_at": expires,
                "max_active": self._max_active,
                "cooldown_until": user.get("cooldown_until"),
            },
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.api.close()


def _payload_hash(payload: StartJobPayload) -> str:
    """What TorBox files the request under: the info-hash, or the md5 of the link (PYSDK)."""
    info_hash = payload.info_hash
    if info_hash is not None:
        return info_hash.lower()
    return hashlib.md5((payload.url or "").encode(), usedforsecurity=False).hexdigest()


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _check(ok: bool, option: str, value: object, expected: str) -> None:
    if not ok:
        raise ValidationError(
            f"providers.torbox.{option}", f"invalid option {value!r}", value=value,
            expected=expected,
        )
