"""One fake TorBox account: its items, queue, cache, slots, stale lists and download links.

Everything here is plain state guarded by one lock; ``FakeTorBox`` turns HTTP
requests into calls on it. Times come from the server's injectable clock.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from typing import Any

import attrs

from engine.testing.torbox._model import (
    SCENARIOS,
    FakeFile,
    FakeItem,
    ItemKind,
    ListView,
    QueuedEntry,
    default_files,
    make_files,
)
from providers import Clock

__all__ = ["PLAN_SLOTS", "CachedEntry", "DownloadLink", "TorBoxAccount", "TorBoxSettings"]

#: Active slots per plan as clients assume them (DECY planSlots; rdt-client#987);
#: the free plan's number is this fake's choice (the facts are silent).
PLAN_SLOTS = {0: 1, 1: 3, 2: 10, 3: 5}


@attrs.define
class TorBoxSettings:
    """The fake's knobs; change them on ``FakeTorBox.settings`` at any time."""

    step_seconds: float = 2.0
    plan: int = 2  # 0 Free, 1 Essential, 2 Pro, 3 Standard (PYSDK get_user_data)
    active_limit: int | None = None  # None: the plan's slots
    additional_slots: int = 0
    #: The torrent list is refreshed only every 600 s unless bypassed (PYSDK get_torrent_list).
    stale_seconds: float = 600.0
    #: Web download lists self-update every ~5 s (SPEC; PYSDK).
    webdl_stale_seconds: float = 5.0
    #: CDN links must be started within 3 h (PYSDK current text).
    link_ttl: float = 3 * 3600.0
    #: Past the slots: queue the add (True) or answer ACTIVE_LIMIT (False).
    queue_when_full: bool = False
    #: A hash already on the account: give the item back (False, facts section 7) or
    #: refuse with DUPLICATE_ITEM (True; the code is in the facts' error list).
    refuse_duplicates: bool = False
    #: Cached adds show ``download_finished`` false while present at progress 1
    #: (how decypharr#401 describes live data; the facts say ready means both).
    cached_unfinished: bool = False
    #: "code": error "ACTIVE_LIMIT" (RDT, TBNET); "null_error": error null (POSTMAN example).
    active_limit_style: str = "code"
    #: HTTP status of ACTIVE_LIMIT: non-2xx per TBNET, exact code unconfirmed.
    active_limit_status: int = 400
    #: checkcached with no hit: ``None`` (POSTMAN example) or ``{}`` (decypharr fake).
    empty_cached_data: Any = None
    auth_status: int = 403  # GOSDK: 403 for auth errors; TBNET also checks 401
    date_style: str = "offset"  # "offset" (POSTMAN examples) or "z" (GOSDK "Dates")
    unknown_state: str = "reprocessing"
    #: PYSDK types webdownload_id as a string; others report numbers. Accept both.
    webdl_id_as_string: bool = True


@attrs.define
class CachedEntry:
    """A hash (or web link) TorBox has cached, with the files it would produce."""

    name: str
    files: list[tuple[str, int]] | None = None
    slow: bool = False


@attrs.define
class DownloadLink:
    """A presigned CDN link handed out by requestdl."""

    kind: ItemKind
    item_id: int
    file_id: int | None  # None: the whole item as a zip
    expires: float


def link_hash(link: str) -> str:
    """A web download's hash: the md5 of its link (PYSDK)."""
    return hashlib.md5(link.encode(), usedforsecurity=False).hexdigest()


class TorBoxAccount:
    """Items, queue and cache of the single account the fake serves."""

    def __init__(self, clock: Clock, settings: TorBoxSettings) -> None:
        self.clock = clock
        self.settings = settings
        self.lock = threading.RLock()
        self.auth_id = str(uuid.UUID(int=0x7B0C5))
        self.items: dict[ItemKind, dict[int, FakeItem]] = {"torrent": {}, "webdl": {}}
        self.queue: dict[int, QueuedEntry] = {}
        self.cached: dict[str, CachedEntry] = {}
        self.scenarios: dict[str, str] = {}
        self.links: dict[str, DownloadLink] = {}
        self._next = {"torrent": 1, "webdl": 1, "queued": 1}
        self._snapshots: dict[ItemKind, tuple[float, list[dict[str, Any]]]] = {}
        self._last_tick = clock.monotonic()

    # -- capacity ------------------------------------------------------------
    def slot_limit(self) -> int:
        """How many items may be active at once."""
        s = self.settings
        base = s.active_limit if s.active_limit is not None else PLAN_SLOTS.get(s.plan, 1)
        return base + s.additional_slots

    def active_count(self) -> int:
        """Items (torrents and web downloads) holding a slot now."""
        now, step = self.clock.monotonic(), self.settings.step_seconds
        return sum(
            1
            for table in self.items.values()
            for item in table.values()
            if item.holds_slot(now, step)
        )

    def release_time(self, item: FakeItem) -> float | None:
        """When ``item`` stops holding a slot (finished or failed); None: not foreseeable."""
        if item.paused_at is not None:
            return None
        at = item.started + item.paused_total
        for phase in SCENARIOS[item.scenario]:
            if phase.finished or phase.failed:
                return at
            if phase.steps is None:
                return None
            at += phase.steps * self.settings.step_seconds
        return at

    def tick(self) -> None:
        """Start queued items, oldest first, at the moment their slot freed.

        Runs on every request. Nothing observable happened since the previous
        one, so an entry may start at any time after it: the earliest time a
        slot was free (its item then shows the progress it has made since).
        """
        with self.lock:
            now, floor = self.clock.monotonic(), self._last_tick
            self._last_tick = now
            if not self.queue:
                return
            limit = self.slot_limit()
            spans = [
                (item.started, self.release_time(item))
                for table in self.items.values()
                for item in table.values()
            ]

            def active_at(when: float) -> int:
                return sum(1 for s, r in spans if s <= when and (r is None or r > when))

            for entry in sorted(self.queue.values(), key=lambda e: e.id):
                lower = max(entry.created, floor)
                moments = {lower} | {r for _, r in spans if r is not None and lower < r <= now}
                start = next((t for t in sorted(moments) if active_at(t) < limit), None)
                if start is None:
                    return  # first in, first out: the rest wait too
                item = self.promote(entry, started=start)
                spans.append((start, self.release_time(item)))
                floor = start

    # -- lookups -------------------------------------------------------------
    def find(self, kind: ItemKind, item_hash: str) -> FakeItem | None:
        """The live item of ``kind`` with ``item_hash``."""
        return next((i for i in self.items[kind].values() if i.hash == item_hash), None)

    def find_queued(self, kind: ItemKind, item_hash: str) -> QueuedEntry | None:
        """The queued entry of ``kind`` with ``item_hash``."""
        return next(
            (q for q in self.queue.values() if q.kind == kind and q.hash == item_hash), None
        )

    def scenario_for(self, kind: ItemKind, key: str, cached: bool) -> str:
        """The scenario set for ``key``, else cached / normal for its kind."""
        explicit = self.scenarios.get(key)
        entry = self.cached.get(key)
        if cached and entry is not None and entry.slow:
            return "slow_cache"
        if cached:
            return "cached"
        if explicit is not None:
            return explicit
        return "normal" if kind == "torrent" else "web_normal"

    def files_for(self, kind: ItemKind, key: str, name: str) -> list[FakeFile]:
        """The files an item for ``key`` has (a cache entry's, or the defaults)."""
        entry = self.cached.get(key)
        if entry is not None and entry.files is not None:
            return make_files(key, entry.files)
        return default_files(kind, key, name)

    # -- changes -------------------------------------------------------------
    def _take_id(self, table: str) -> int:
        value = self._next[table]
        self._next[table] = value + 1
        return value

    def add(self, kind: ItemKind, key: str, item_hash: str, name: str, **fields: Any) -> FakeItem:
        """Put a new running item on the account."""
        cached = key in self.cached
        item = FakeItem(
            id=self._take_id(kind),
            kind=kind,
            hash=item_hash,
            name=name,
            files=fields.pop("files", None) or self.files_for(kind, key, name),
            scenario=fields.pop("scenario", None) or self.scenario_for(kind, key, cached),
            started=self.clock.monotonic(),
            created_wall=self.clock.time(),
            cached=cached,
            **fields,
        )
        self.items[kind][item.id] = item
        return item

    def enqueue(
        self,
        kind: ItemKind,
        key: str,
        item_hash: str,
        name: str,
        *,
        files: list[tuple[str, int]] | None = None,
        **fields: Any,
    ) -> QueuedEntry:
        """Put an item in the queue (it gets a queued id, not an item id).

        ``files``: the ``(name, size)`` pairs it will have (an uploaded torrent's),
        else the cache entry's or the defaults.
        """
        entry = QueuedEntry(
            id=self._take_id("queued"),
            created=self.clock.monotonic(),
            kind=kind,
            hash=item_hash,
            name=name,
            created_wall=self.clock.time(),
            scenario=self.scenario_for(kind, key, key in self.cached),
            files=make_files(key, files) if files is not None else self.files_for(kind, key, name),
            **fields,
        )
        self.queue[entry.id] = entry
        return entry

    def promote(self, entry: QueuedEntry, started: float | None = None) -> FakeItem:
        """Move a queued entry to the running items, under a new id."""
        del self.queue[entry.id]
        extra: dict[str, Any] = {"magnet": entry.magnet, "link": entry.link, "seed": entry.seed}
        if entry.kind == "torrent":
            extra["torrent_file"] = entry.torrent_file
        key = entry.link or entry.hash
        item = self.add(
            entry.kind,
            key,
            entry.hash,
            entry.name,
            files=entry.files,
            scenario=entry.scenario,
            **extra,
        )
        if started is not None:
            item.created_wall -= item.started - started
            item.started = started
        return item

    def delete(self, kind: ItemKind, item_id: int) -> bool:
        """Remove an item for good; False when there was none."""
        return self.items[kind].pop(item_id, None) is not None

    # -- lists ---------------------------------------------------------------
    def view(self) -> ListView:
        """What item JSON needs from the account."""
        s = self.settings
        return ListView(
            self.auth_id, self.clock.time(), s.date_style, s.unknown_state, s.cached_unfinished
        )

    def list_json(self, kind: ItemKind, bypass: bool) -> list[dict[str, Any]]:
        """The list as the server shows it: a snapshot up to ``stale`` seconds old unless bypassed.

        A bypassing request also refreshes the snapshot, as a server-side cache would.
        """
        now = self.clock.monotonic()
        stale = (
            self.settings.stale_seconds if kind == "torrent" else self.settings.webdl_stale_seconds
        )
        snapshot = self._snapshots.get(kind)
        if not bypass and snapshot is not None and now - snapshot[0] < stale:
            return snapshot[1]
        view, step = self.view(), self.settings.step_seconds
        # Newest first, like the web UI; pagination must cope with it.
        fresh = [
            item.to_json(now, step, view)
            for item in sorted(self.items[kind].values(), key=lambda i: -i.id)
        ]
        self._snapshots[kind] = (now, fresh)
        return fresh

    def queued_json(self, kind: ItemKind) -> list[dict[str, Any]]:
        """The queue of ``kind``, oldest first."""
        s = self.settings
        return [
            q.to_json(self.auth_id, s.date_style)
            for q in sorted(self.queue.values(), key=lambda e: e.id)
            if q.kind == kind
        ]

    # -- links ---------------------------------------------------------------
    def new_link(self, kind: ItemKind, item_id: int, file_id: int | None) -> str:
        """A fresh presign token for one file (or the zip) of an item."""
        token = secrets.token_hex(16)
        expires = self.clock.monotonic() + self.settings.link_ttl
        self.links[token] = DownloadLink(kind, item_id, file_id, expires)
        return token

    def resolve_link(self, token: str) -> tuple[FakeItem, FakeFile | None] | None:
        """The item and file behind a live token; None when unknown, expired or deleted."""
        link = self.links.get(token)
        if link is None or self.clock.monotonic() >= link.expires:
            return None
        item = self.items[link.kind].get(link.item_id)
        if item is None:
            return None
        if link.file_id is None:
            return item, None
        file = next((f for f in item.files if f.id == link.file_id), None)
        return (item, file) if file is not None else None
