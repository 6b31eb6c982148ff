"""The read-side routes of ``FakeTorBox``: lists, the queue, links, the CDN, cache checks, user."""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from engine.testing._fakehttp import FakeRequest, FakeResponse
from engine.testing.torbox._account import link_hash
from engine.testing.torbox._model import ItemKind, iso_date
from engine.testing.torbox._wire import Params, fail, ok

if TYPE_CHECKING:
    from engine.testing.torbox._server import FakeTorBox

__all__ = ["TorBoxReads"]

#: webdl/requestdl takes `web_id` where controlwebdownload takes `webdl_id` (SPEC).
_REQUEST_ID = {"torrent": "torrent_id", "webdl": "web_id"}


class TorBoxReads:
    """Handlers that read the account (and hand out download links)."""

    def __init__(self, fake: FakeTorBox) -> None:
        self.fake = fake
        self.acc = fake.account

    def _count(self, name: str) -> None:
        with self.fake._lock:
            self.fake.counts[name] += 1

    # -- lists ---------------------------------------------------------------
    def mylist(self, request: FakeRequest, kind: ItemKind) -> FakeResponse:
        """GET torrents|webdl/mylist: `id` gives one object; stale unless bypass_cache."""
        p = Params(request.query, "query")
        item_id = p.integer("id")
        bypass = p.boolean("bypass_cache")
        offset = p.integer("offset", 0) or 0
        limit = p.integer("limit", 1000)
        if (invalid := p.response()) is not None:
            return invalid
        if bypass:
            self._count(f"{request.route}:bypass")
        with self.acc.lock:
            rows = self.acc.list_json(kind, bypass)
        if item_id is not None:
            row = next((r for r in rows if r["id"] == item_id), None)
            if row is None:
                return fail(404, "ITEM_NOT_FOUND", "The item could not be found.")
            return ok(row)
        offset = max(0, offset)
        limit = 1000 if limit is None else max(0, limit)
        return ok(rows[offset : offset + limit])

    def getqueued(self, request: FakeRequest) -> FakeResponse:
        """GET queued/getqueued: the queue of one type (SPEC; PYSDK QueuedService)."""
        p = Params(request.query, "query")
        item_id = p.integer("id")
        kind = p.choice("type", ("torrent", "usenet", "webdl"), "torrent")
        p.boolean("bypass_cache")
        offset = max(0, p.integer("offset", 0) or 0)
        limit = p.integer("limit", 1000)
        if (invalid := p.response()) is not None:
            return invalid
        with self.acc.lock:
            rows = (
                []
                if kind == "usenet"
                else self.acc.queued_json("torrent" if kind == "torrent" else "webdl")
            )
        if item_id is not None:
            row = next((r for r in rows if r["id"] == item_id), None)
            return (
                ok(row)
                if row is not None
                else fail(404, "ITEM_NOT_FOUND", "The item could not be found.")
            )
        return ok(rows[offset : offset + (1000 if limit is None else max(0, limit))])

    # -- links ---------------------------------------------------------------
    def requestdl(self, request: FakeRequest, kind: ItemKind) -> FakeResponse:
        """GET torrents|webdl/requestdl: a CDN URL in `data`, or a 307 with redirect=true."""
        p = Params(request.query, "query")
        p.text("token", required=True)
        item_id = p.integer(_REQUEST_ID[kind], required=True)
        file_id = p.integer("file_id", 0)
        zip_link = p.boolean("zip_link")
        p.text("user_ip")
        redirect = p.boolean("redirect")
        p.boolean("append_name")
        if (invalid := p.response()) is not None:
            return invalid
        scripted = self.fake.take_requestdl_fault()
        if scripted is not None:
            return scripted
        with self.acc.lock:
            item = self.acc.items[kind].get(item_id or 0)
            if item is None:
                return fail(404, "ITEM_NOT_FOUND", "The item could not be found.")
            phase, _ = item.phase(self.fake.clock.monotonic(), self.fake.settings.step_seconds)
            if not (phase.finished and phase.present):
                # Unspecified live; the fake's choice (docs/torbox.md).
                return fail(400, "INVALID_OPTION", "This download is not ready yet.")
            if not zip_link and all(f.id != file_id for f in item.files):
                return fail(404, "ITEM_NOT_FOUND", "The file could not be found.")
            token = self.acc.new_link(kind, item.id, None if zip_link else file_id)
        url = f"{self.fake.url}/dld/{uuid.uuid4()}?token={token}"
        if redirect:
            # 307, not 302 (torbox-media-center#62).
            return FakeResponse(307, b"", {"Location": url}, raw=True)
        return ok(url, "Download link generated.")

    def cdn(self, request: FakeRequest) -> FakeResponse:
        """The CDN behind requestdl links; expired tokens fail as in decypharr#183."""
        with self.acc.lock:
            found = self.acc.resolve_link(request.arg("token") or "")
        if found is None:
            return FakeResponse(
                403, b"Invalid Presigned Token", {"Content-Type": "text/plain"}, raw=True
            )
        item, file = found
        if file is None:
            return self.fake.serve_bytes(request, f"{item.hash}:zip", item.size)
        # A header cannot carry control characters or bare quotes (a hostile name may).
        short = re.sub(r'[\x00-\x1f\x7f"\\]', "_", file.name.rsplit("/", 1)[-1])
        return self.fake.serve_bytes(
            request,
            file.seed,
            file.size,
            **{"Content-Disposition": f'attachment; filename="{short}"'},
        )

    # -- cache ---------------------------------------------------------------
    def checkcached(self, request: FakeRequest, kind: ItemKind) -> FakeResponse:
        """GET with `hash` (comma-separated and/or repeated) or POST {"hashes": [...]} (SPEC)."""
        p = Params(request.query, "query")
        fmt = p.choice("format", ("object", "list"), "object")
        list_files = p.boolean("list_files")
        hashes: list[str] = []
        if request.method == "POST":
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("hashes"), list):
                p.errors.append(
                    {
                        "type": "missing",
                        "loc": ["body", "hashes"],
                        "msg": "Field required",
                        "input": body,
                    }
                )
            else:
                hashes = [str(h) for h in body["hashes"]]
        else:
            hashes = [h for value in request.query.get("hash", []) for h in value.split(",") if h]
            if not hashes:
                p.errors.append(
                    {
                        "type": "missing",
                        "loc": ["query", "hash"],
                        "msg": "Field required",
                        "input": None,
                    }
                )
        if (invalid := p.response()) is not None:
            return invalid
        found: dict[str, dict[str, Any]] = {}
        with self.acc.lock:
            for wanted in dict.fromkeys(h.strip().lower() for h in hashes):
                entry = self._cached_entry(kind, wanted)
                if entry is not None:
                    found[wanted] = self._cache_json(kind, wanted, entry, list_files)
        if not found:
            return ok(self.fake.settings.empty_cached_data, "No cached items found.")
        data: Any = found if fmt == "object" else list(found.values())
        return ok(data, f"Found {len(found)} cached items.")

    def _cached_entry(self, kind: ItemKind, wanted: str) -> tuple[str, Any] | None:
        for key, entry in self.acc.cached.items():
            is_link = "://" in key
            if kind == "webdl" and is_link and link_hash(key) == wanted:
                return key, entry
            if kind == "torrent" and not is_link and key == wanted:
                return key, entry
        return None

    def _cache_json(
        self, kind: ItemKind, wanted: str, found: tuple[str, Any], with_files: bool
    ) -> dict[str, Any]:
        key, entry = found
        files = self.acc.files_for(kind, key, entry.name)
        data: dict[str, Any] = {
            "name": entry.name,
            "size": sum(f.size for f in files),
            "hash": wanted,
        }
        if with_files:
            data["files"] = [{"name": f.name, "size": f.size} for f in files]
        return data

    # -- account -------------------------------------------------------------
    def user_me(self, request: FakeRequest) -> FakeResponse:
        """GET user/me (PYSDK fields plus TBSDKNET's)."""
        p = Params(request.query, "query")
        with_settings = p.boolean("settings")
        if (invalid := p.response()) is not None:
            return invalid
        s, wall = self.fake.settings, self.fake.clock.time()
        style = s.date_style
        data: dict[str, Any] = {
            "id": 4242,
            "auth_id": self.acc.auth_id,
            "created_at": iso_date(wall - 86400 * 90, style),
            "updated_at": iso_date(wall, style),
            "plan": s.plan,
            "total_downloaded": 0,
            "customer": "cus_fake",
            "is_subscribed": s.plan != 0,
            "premium_expires_at": iso_date(wall + 86400 * 30, style),
            "cooldown_until": None,
            "email": "fake@example.invalid",
            "user_referral": str(uuid.UUID(int=7)),
            "base_email": "fake@example.invalid",
            "total_bytes_downloaded": 0,
            "total_bytes_uploaded": 0,
            "torrents_downloaded": len(self.acc.items["torrent"]),
            "web_downloads_downloaded": len(self.acc.items["webdl"]),
            "usenet_downloads_downloaded": 0,
            "additional_concurrent_slots": s.additional_slots,
            "long_term_seeding": False,
            "long_term_storage": False,
            "is_vendor": False,
            "vendor_id": None,
            "purchases_referred": 0,
        }
        if with_settings:
            data["settings"] = {"webhook_notifications": False, "webhook_url": None}
        return ok(data)
