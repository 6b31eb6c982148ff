"""The route handlers of ``FakeTorBox``: HTTP in, account changes, TorBox's answers out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.testing._fakehttp import FakeRequest, FakeResponse
from engine.testing._torrentfile import read_torrent
from engine.testing.torbox._account import link_hash
from engine.testing.torbox._model import FakeItem, ItemKind, make_files
from engine.testing.torbox._reads import TorBoxReads
from engine.testing.torbox._wire import fail, form_params, json_params, ok
from providers._torrent import BencodeError, magnet_display_name, magnet_info_hash

if TYPE_CHECKING:
    from engine.testing.torbox._server import FakeTorBox

__all__ = ["TorBoxRoutes"]

API = "/v1/api"

#: Field names differ per kind: controlwebdownload takes `webdl_id`, webdl/requestdl
#: `web_id` (SPEC), createwebdownload answers `webdownload_id` (PYSDK).
_CONTROL_ID = {"torrent": "torrent_id", "webdl": "webdl_id", "queued": "queued_id"}
_OPERATIONS = {
    # PYSDK lists reannounce/delete/resume; pause from TBNET and TBSDKNET.
    "torrent": ("delete", "pause", "resume", "reannounce"),
    "webdl": ("delete",),  # the only documented webdl operation (SPEC; PYSDK)
    "queued": ("delete", "start"),  # SPEC; PYSDK
}


class TorBoxRoutes:
    """Installs and serves every route of the fake."""

    def __init__(self, fake: FakeTorBox) -> None:
        self.fake = fake
        self.acc = fake.account

    def install(self) -> None:
        """Register the routes on the fake."""
        route = self.fake.route
        reads = TorBoxReads(self.fake)
        route("GET", "/", "status", lambda r: ok(None, "TorBox API is up and running."))
        route("POST", f"{API}/torrents/createtorrent", "createtorrent", self.create_torrent)
        route("POST", f"{API}/webdl/createwebdownload", "createwebdownload", self.create_webdl)
        for kind, prefix in (("torrent", "torrents"), ("webdl", "webdl")):
            name = "" if kind == "torrent" else "webdl_"
            route("GET", f"{API}/{prefix}/mylist", f"{name}mylist", self._bind(reads.mylist, kind))
            route(
                "GET",
                f"{API}/{prefix}/requestdl",
                f"{name}requestdl",
                self._bind(reads.requestdl, kind),
            )
            route(
                "GET",
                f"{API}/{prefix}/checkcached",
                f"{name}checkcached",
                self._bind(reads.checkcached, kind),
            )
            route(
                "POST",
                f"{API}/{prefix}/checkcached",
                f"{name}checkcached",
                self._bind(reads.checkcached, kind),
            )
        route(
            "POST",
            f"{API}/torrents/controltorrent",
            "controltorrent",
            self._bind(self.control, "torrent"),
        )
        route(
            "POST",
            f"{API}/webdl/controlwebdownload",
            "controlwebdownload",
            self._bind(self.control, "webdl"),
        )
        route(
            "POST",
            f"{API}/queued/controlqueued",
            "controlqueued",
            self._bind(self.control, "queued"),
        )
        route("GET", f"{API}/queued/getqueued", "getqueued", reads.getqueued)
        route("GET", f"{API}/user/me", "user_me", reads.user_me)
        # Legacy queue routes answer 410 DEPRECATED (torbox-cli README).
        route("GET", f"{API}/torrents/getqueued", "deprecated_getqueued", self.deprecated)
        route("POST", f"{API}/torrents/controlqueued", "deprecated_controlqueued", self.deprecated)
        route("GET", "/dld/{uid}", "cdn", reads.cdn)
        route("HEAD", "/dld/{uid}", "cdn_head", reads.cdn)

    @staticmethod
    def _bind(handler: Any, kind: str) -> Any:
        return lambda request: handler(request, kind)

    def _count(self, name: str) -> None:
        with self.fake._lock:
            self.fake.counts[name] += 1

    # -- create --------------------------------------------------------------
    def create_torrent(self, request: FakeRequest) -> FakeResponse:
        """POST torrents/createtorrent: multipart (SPEC) or urlencoded (DECY, TBNET)."""
        p, upload = form_params(request)
        magnet = p.text("magnet")
        seed = p.integer("seed")
        allow_zip = p.boolean("allow_zip", True)
        name = p.text("name")
        as_queued = p.boolean("as_queued")
        only_cached = p.boolean("add_only_if_cached")
        if (invalid := p.response()) is not None:
            return invalid
        if magnet and upload:
            # Both at once: unconfirmed; the fake refuses, as TOO_MANY_OPTIONS describes.
            return fail(400, "TOO_MANY_OPTIONS", "You can only provide a file or a magnet link.")
        if not magnet and not upload:
            # The exact answer seen live (nzbhydra2#1049).
            return fail(
                400, "MISSING_REQUIRED_OPTION", "You must provide either a file or magnet link."
            )
        files: list[tuple[str, int]] | None = None
        try:
            if magnet:
                item_hash, guess = magnet_info_hash(magnet), magnet_display_name(magnet)
            else:
                assert upload is not None
                # The upload is the torrent: its hash, name and files, not ones made up.
                torrent = read_torrent(upload)
                item_hash, guess, files = torrent.info_hash, torrent.name, list(torrent.files)
        except (ValueError, BencodeError):
            return fail(400, "BOZO_TORRENT", "The torrent or magnet link is invalid.")
        if seed is not None and seed not in (1, 2, 3):
            return fail(400, "INVALID_OPTION", "seed must be 1 (auto), 2 (seed) or 3 (don't seed).")
        extra = {"magnet": magnet, "torrent_file": upload is not None, "seed": seed}
        return self._create(
            "torrent",
            item_hash,
            item_hash,
            names=(name, guess),
            as_queued=as_queued,
            only_cached=only_cached,
            extra=extra,
            files=files,
            allow_zip=allow_zip,
        )

    def create_webdl(self, request: FakeRequest) -> FakeResponse:
        """POST webdl/createwebdownload: urlencoded, `link` required (SPEC)."""
        p, _ = form_params(request)
        link = p.text("link", required=True)
        p.text("password")
        name = p.text("name")
        as_queued = p.boolean("as_queued")
        only_cached = p.boolean("add_only_if_cached")
        if (invalid := p.response()) is not None:
            return invalid
        assert link is not None
        guess = link.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "download"
        return self._create(
            "webdl",
            link,
            link_hash(link),
            names=(name, guess),
            as_queued=as_queued,
            only_cached=only_cached,
            extra={"link": link, "seed": None},
        )

    def _create(
        self,
        kind: ItemKind,
        key: str,
        item_hash: str,
        *,
        names: tuple[str | None, str | None],
        as_queued: bool,
        only_cached: bool,
        extra: dict[str, Any],
        files: list[tuple[str, int]] | None = None,
        **fields: Any,
    ) -> FakeResponse:
        acc, settings = self.acc, self.fake.settings
        noun = "torrent" if kind == "torrent" else "web download"
        with acc.lock:
            refusal = self.fake.refusals.get(key)
            if refusal is not None:
                status, error, detail = refusal
                return fail(status, error, detail)
            existing = acc.find(kind, item_hash)
            if existing is not None and settings.refuse_duplicates:
                return fail(400, "DUPLICATE_ITEM", f"This {noun} is already on your account.")
            if existing is not None:
                # A hash already on the account gives back the same item (facts §7).
                return ok(self._created(kind, existing), f"Found existing {noun}. Using it.")
            waiting = acc.find_queued(kind, item_hash)
            if waiting is not None:
                return ok(
                    self._queued_data(waiting.id, item_hash), f"This {noun} is already queued."
                )
            cached = key in acc.cached
            given, guess = names
            fallback = acc.cached[key].name if cached else None
            # An uploaded torrent names itself; a magnet's dn is only a guess.
            known = guess if files is not None else None
            name = given or known or fallback or guess or f"{noun.capitalize()} {item_hash[:8]}"
            if only_cached and not cached:
                # The facts do not show this answer; the fake's choice (docs/torbox.md).
                return fail(
                    400,
                    "DOWNLOAD_NOT_CACHED",
                    f"This {noun} is not cached and add_only_if_cached was set.",
                )
            queue = as_queued and settings.plan != 0  # as_queued is ignored on free (SPEC)
            full = not cached and acc.active_count() >= acc.slot_limit()
            if full and not queue and not settings.queue_when_full:
                return self._active_limit()
            if queue or full:
                entry = acc.enqueue(kind, key, item_hash, name, files=files, **extra)
                return ok(
                    self._queued_data(entry.id, item_hash),
                    f"Your {noun} has been queued and will start when a slot is free.",
                )
            if files is not None:
                fields["files"] = make_files(key, files)
            item = acc.add(kind, key, item_hash, name, **extra, **fields)
        if cached:
            # Clients key off this wording (facts §3.1).
            detail = (
                "Found Cached Torrent. Using Cached Torrent."
                if kind == "torrent"
                else ("Found Cached Web Download. Using Cached Download.")
            )
        else:
            detail = f"Successfully added {noun}."
        return ok(self._created(kind, item), detail)

    def _created(self, kind: ItemKind, item: FakeItem) -> dict[str, Any]:
        if kind == "torrent":
            return {"torrent_id": item.id, "hash": item.hash, "auth_id": self.acc.auth_id}
        ident: int | str = str(item.id) if self.fake.settings.webdl_id_as_string else item.id
        return {"webdownload_id": ident, "hash": item.hash, "auth_id": self.acc.auth_id}

    def _queued_data(self, queued_id: int, item_hash: str) -> dict[str, Any]:
        return {"queued_id": queued_id, "hash": item_hash, "auth_id": self.acc.auth_id}

    def _active_limit(self) -> FakeResponse:
        settings = self.fake.settings
        data = {
            "active_limit": self.acc.slot_limit(),
            "current_active_downloads": self.acc.active_count(),
        }
        detail = (
            "You have reached your active download limit. Please wait for a download to "
            "finish or upgrade your plan."
        )
        # The official example has error null (POSTMAN); clients test "ACTIVE_LIMIT" (RDT, TBNET).
        error = "ACTIVE_LIMIT" if settings.active_limit_style == "code" else None
        return fail(settings.active_limit_status, error, detail, data)

    # -- control -------------------------------------------------------------
    def control(self, request: FakeRequest, kind: str) -> FakeResponse:
        """controltorrent / controlwebdownload / controlqueued: a JSON body (SPEC)."""
        p, invalid = json_params(request)
        if p is None:
            assert invalid is not None
            return invalid
        item_id = p.integer(_CONTROL_ID[kind])
        operation = p.text("operation", required=True)
        everything = p.boolean("all")
        if (invalid := p.response()) is not None:
            return invalid
        assert operation is not None
        operation = operation.strip('"').lower()
        if operation not in _OPERATIONS[kind]:
            return fail(400, "INVALID_OPTION", f"Invalid operation {operation!r}.")
        with self.acc.lock:
            if kind == "queued":
                ids = list(self.acc.queue) if everything else [item_id]
                if everything and operation == "start":
                    return fail(400, "INVALID_OPTION", "You cannot start all queued items at once.")
            else:
                table = self.acc.items["torrent" if kind == "torrent" else "webdl"]
                ids = list(table) if everything else [item_id]
            if ids == [None]:
                return fail(
                    400, "MISSING_REQUIRED_OPTION", f"You must provide {_CONTROL_ID[kind]} or all."
                )
            for ident in ids:
                assert ident is not None
                answer = self._apply(kind, ident, operation)
                if answer is not None:
                    return answer
        return ok(None, f"{operation.capitalize()} operation done.")

    def _apply(self, kind: str, ident: int, operation: str) -> FakeResponse | None:
        acc, now = self.acc, self.fake.clock.monotonic()
        if kind == "queued":
            entry = acc.queue.get(ident)
            if entry is None:
                return fail(404, "ITEM_NOT_FOUND", "The queued item could not be found.")
            if operation == "delete":
                del acc.queue[ident]
            elif acc.active_count() >= acc.slot_limit():
                return self._active_limit()
            else:
                acc.promote(entry)
            return None
        item = acc.items["torrent" if kind == "torrent" else "webdl"].get(ident)
        if item is None:
            return fail(404, "ITEM_NOT_FOUND", "The item could not be found.")
        if operation == "delete":
            acc.delete(item.kind, ident)
        elif operation == "pause" and item.paused_at is None:
            item.paused_at = now
        elif operation == "resume" and item.paused_at is not None:
            item.paused_total += now - item.paused_at
            item.paused_at = None
        return None

    def deprecated(self, request: FakeRequest) -> FakeResponse:
        """Legacy queue routes (torbox-cli README)."""
        return fail(
            410, "DEPRECATED", "This endpoint is deprecated. Use /v1/api/queued/getqueued instead."
        )
