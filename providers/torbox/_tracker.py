"""What the provider knows between calls: which lists are fresh, which items are ready.

``ItemTracker`` owns the polling side of ``TorBoxProvider``: one pass over each
list per poll, ``bypass_cache`` only while a list may be missing something new,
queued items followed into the list when TorBox starts them, and the last
ready items kept so ``get_file_links`` needs no second read.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import attrs

from providers._bounded import BoundedDict
from providers._log import WarnOnce, get_logger
from providers._responses import JobStatusResponse
from providers._status import JobStatus
from providers.torbox._api import TorBoxApi
from providers.torbox._ids import ItemKind, RemoteRef, parse_remote_id
from providers.torbox._items import as_int, is_ready, item_status, queued_status
from providers.torbox._scan import Found, scan

__all__ = ["ItemTracker"]

_READY_CACHE = 1024  # ready items kept from polls for get_file_links
_READY_FRESH = 120.0  # seconds a polled ready item stands in for a fresh read
_MOVES_KEPT = 10_000  # queued items followed into the list, remembered for find's exclude

log = get_logger("debrid.providers.torbox")


class ItemTracker:
    """Reads TorBox's lists for the provider and remembers what it learnt."""

    def __init__(
        self,
        name: str,
        api: TorBoxApi,
        *,
        base_url: str,
        page_size: int,
        stale_seconds: float,
        now: Callable[[], float],
    ) -> None:
        self.name = name
        self.api = api
        self.base_url = base_url
        self.page_size = page_size
        self.stale_seconds = stale_seconds
        self.now = now
        self._fresh: dict[ItemKind, float] = {}
        self._ready: BoundedDict[str, tuple[float, dict[str, Any]]] = BoundedDict(_READY_CACHE)
        # Both forms of a queued item seen starting, each mapped to the other.
        self._forms: BoundedDict[str, str] = BoundedDict(2 * _MOVES_KEPT)
        self._unknown_state = WarnOnce(log, "unknown_remote_status", "status", provider=name)

    # -- freshness -----------------------------------------------------------
    def touch(self, kind: ItemKind) -> None:
        """Something new appeared in ``kind``'s list: bypass its cache for a while."""
        self._fresh[kind] = self.now()

    def young(self, kind: ItemKind) -> bool:
        """True while ``kind``'s cached list may lack a new item.

        mylist is refreshed every 600 s unless bypass_cache (PYSDK; rdt-client#971, #1041).
        """
        since = self._fresh.get(kind)
        return since is not None and self.now() - since < self.stale_seconds

    # -- statuses ------------------------------------------------------------
    def status(
        self, item: dict[str, Any], kind: ItemKind, remote_id: str | None = None
    ) -> JobStatusResponse:
        """The item's status; a ready item is kept for ``take_ready``."""
        response = item_status(item, kind, self.base_url, self._unknown_state, remote_id)
        if response.status is JobStatus.COMPLETED:
            self._ready[response.remote_id] = (self.now(), item)
        return response

    def take_ready(self, remote_id: str) -> dict[str, Any] | None:
        """The item a recent poll saw ready (once), or None."""
        kept = self._ready.pop(remote_id, None)
        if kept is None or self.now() - kept[0] > _READY_FRESH:
            return None
        return kept[1]

    def forget(self, remote_id: str) -> None:
        """Drop what is kept about ``remote_id``."""
        self._ready.pop(remote_id, None)
        other = self._forms.pop(remote_id, None)
        if other is not None:
            self._forms.pop(other, None)

    def moved(self, queued_id: str, started_id: str) -> None:
        """Remember that the queued item ``queued_id`` now lives in the list as ``started_id``."""
        self._forms[queued_id] = started_id
        self._forms[started_id] = queued_id

    # -- reading lists -------------------------------------------------------
    def list(
        self,
        kind: ItemKind,
        ids: set[int],
        hashes: set[str],
        bypass: bool,
        skip: Collection[int] = (),
    ) -> Found:
        """One pass over ``kind``'s mylist; a fresh pass for whatever a cached one lacked.

        Items whose id is in ``skip`` count as absent.
        """

        def page(offset: int, limit: int) -> list[Any]:
            return self.api.list_page(kind, bypass=bypass, offset=offset, limit=limit)

        found = scan(page, self.page_size, ids, hashes, skip=skip)
        missing_ids, missing_hashes = found.missing(ids, hashes)
        if (missing_ids or missing_hashes) and not bypass:
            # Not in the cached list: new since the cache was built, or gone. One
            # fresh pass tells which, instead of reporting a live item unknown.
            found.merge(self.list(kind, missing_ids, missing_hashes, True, skip))
        return found

    def queue(
        self, kind: ItemKind, ids: set[int], hashes: set[str], skip: Collection[int] = ()
    ) -> Found:
        """One pass over TorBox's queue of ``kind`` (only visible there: rdt-client#987).

        Entries whose queued id is in ``skip`` count as absent.
        """

        def page(offset: int, limit: int) -> list[Any]:
            return self.api.queue_page(kind, offset=offset, limit=limit)

        return scan(page, self.page_size, ids, hashes, skip=skip)

    def poll(self, remote_ids: Sequence[str]) -> dict[str, JobStatusResponse]:
        """Statuses of ``remote_ids``: one getqueued pass per kind with queued items,
        then one mylist pass per kind. Unknown ids are left out."""
        out: dict[str, JobStatusResponse] = {}
        ids: dict[ItemKind, dict[int, str]] = {"torrent": {}, "webdl": {}}
        hunted: dict[ItemKind, dict[str, str]] = {"torrent": {}, "webdl": {}}
        queued: dict[ItemKind, dict[int, RemoteRef]] = {"torrent": {}, "webdl": {}}
        for remote_id in remote_ids:
            ref = parse_remote_id(remote_id)
            if ref is None:
                continue
            if ref.queued:
                queued[ref.kind][ref.number] = ref
            else:
                ids[ref.kind][ref.number] = remote_id
        for kind, refs in queued.items():
            if not refs:
                continue
            waiting = self.queue(kind, set(refs), set())
            for number, ref in refs.items():
                rid = str(ref)
                if number in waiting.by_id:
                    out[rid] = queued_status(waiting.by_id[number], kind, rid)
                elif ref.hash:
                    hunted[kind][ref.hash] = rid  # started: now in mylist under a new id
        for kind, wanted in ids.items():
            hashes = hunted[kind]
            if not wanted and not hashes:
                continue
            bypass = bool(hashes) or self.young(kind)
            found = self.list(kind, set(wanted), set(hashes), bypass)
            near = False
            for number, rid in wanted.items():
                if number in found.by_id:
                    item = found.by_id[number]
                    out[rid] = self.status(item, kind)
                    near = near or _may_be_done(item, self.stale_seconds)
            if near and not bypass:
                # A cached list may be stale_seconds old, and this item could have
                # finished since: read fresh until then, so its completion is seen
                # within a poll interval rather than up to ten minutes late.
                self.touch(kind)
            for item_hash, rid in hashes.items():
                if item_hash in found.by_hash:
                    out[rid] = self.status(found.by_hash[item_hash], kind)
                    self.moved(rid, out[rid].remote_id)
                    log.info(
                        "torbox_queued_started",
                        provider=self.name,
                        from_=rid,
                        to=out[rid].remote_id,
                    )
                    self.touch(kind)  # the new item is missing from cached lists for a while
        return out

    def find(
        self, kind: ItemKind, item_hash: str, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        """The live item or queued entry filed under ``item_hash``, read fresh.

        A failed item is passed over: a new attempt should submit again. Items
        whose remote id is in ``exclude`` are skipped, and so is the other form of
        each (a queued entry and the list item it became, rdt-client#987) when a
        poll saw it move; a move nobody saw cannot be told apart from another
        item with the same hash.
        """
        skip_items, skip_queued = self._excluded(kind, exclude)
        found = self.list(kind, set(), {item_hash}, bypass=True, skip=skip_items)
        item = found.by_hash.get(item_hash)
        if item is not None:
            response = self.status(item, kind)
            if response.status is JobStatus.FAILED:
                return None
            self.touch(kind)
            return response
        entry = self.queue(kind, set(), {item_hash}, skip=skip_queued).by_hash.get(item_hash)
        if entry is None:
            return None
        number = as_int(entry.get("id")) or 0
        remote_id = str(RemoteRef(kind, number, queued=True, hash=item_hash))
        return queued_status(entry, kind, remote_id)

    def _excluded(self, kind: ItemKind, exclude: Collection[str]) -> tuple[set[int], set[int]]:
        """TorBox numbers of ``kind`` to skip: (list ids, queued ids), both forms of each."""
        items: set[int] = set()
        queued: set[int] = set()
        for remote_id in exclude:
            for form in (remote_id, self._forms.get(remote_id)):
                ref = parse_remote_id(form) if form is not None else None
                if ref is not None and ref.kind == kind:
                    (queued if ref.queued else items).add(ref.number)
        return items, queued

    def started_id(self, kind: ItemKind, item_hash: str) -> int | None:
        """The list id of the item filed under ``item_hash`` (a queued item once started)."""
        item = self.list(kind, set(), {item_hash}, bypass=True).by_hash.get(item_hash)
        return as_int(item.get("id")) if item is not None else None


def with_source(response: JobStatusResponse | None, source: str | None) -> JobStatusResponse | None:
    """``response`` carrying the request's link (TorBox lists do not echo it)."""
    return attrs.evolve(response, source=source) if response is not None else None


#: The ETA TorBox gives for "unknown" (qBittorrent's infinity sentinel, POSTMAN).
_NO_ETA = 8_640_000


def _may_be_done(item: dict[str, Any], window: float) -> bool:
    """An unfinished item that, by what the (maybe stale) list says, may have finished
    within ``window`` seconds: at progress 1 but not flagged, or due within it."""
    if is_ready(item):
        return False
    progress, eta = item.get("progress"), item.get("eta")
    if isinstance(progress, int | float) and not isinstance(progress, bool) and progress >= 1:
        # At 100% but not ready: a fresh read may show it ready, unless its files
        # are gone (evicted), which no read brings back (hydra#2655).
        return item.get("download_present") is not False
    return (
        isinstance(eta, int | float)
        and not isinstance(eta, bool)
        and 0 <= eta < _NO_ETA
        and eta <= window
    )
