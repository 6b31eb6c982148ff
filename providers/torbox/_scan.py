"""Finding items in TorBox's lists with as few requests as the API allows.

One pass over ``mylist`` (or ``getqueued``) serves every wanted item of a kind:
pages of ``page_size`` are read (``offset += len(page)``, as DECY does) until a
short page ends the list or every wanted id and hash has been seen, so N
tracked items cost ceil(N / page_size) requests at most, and usually one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Set
from typing import Any

import attrs

from providers.torbox._ids import ItemKind
from providers.torbox._items import as_int

__all__ = ["Found", "scan"]

PageFetcher = Callable[[int, int], list[Any]]


@attrs.define
class Found:
    """Items seen in one pass, by TorBox id and by (lower-case) hash."""

    by_id: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    by_hash: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def missing(self, ids: Collection[int], hashes: Collection[str]) -> tuple[set[int], set[str]]:
        """What of ``ids`` and ``hashes`` was not seen."""
        return set(ids) - set(self.by_id), set(hashes) - set(self.by_hash)

    def merge(self, other: Found) -> None:
        """Add what another pass found."""
        self.by_id.update(other.by_id)
        self.by_hash.update(other.by_hash)


def _hashes_of(item: dict[str, Any]) -> list[str]:
    found = [item.get("hash")]
    alternatives = item.get("alternative_hashes")  # a torrent known by several hashes (SPEC)
    if isinstance(alternatives, list):
        found.extend(alternatives)
    return [h.lower() for h in found if isinstance(h, str) and h]


def scan(
    fetch: PageFetcher,
    page_size: int,
    ids: Collection[int] = (),
    hashes: Collection[str] = (),
    *,
    everything: bool = False,
    skip: Collection[int] = (),
) -> Found:
    """Read pages until the wanted ``ids`` / ``hashes`` are found or the list ends.

    With ``everything`` the whole list is read (nothing specific is wanted). Items
    whose id is in ``skip`` are passed over as if absent, so a hash shared with a
    skipped item is looked for further on.
    """
    want_ids, want_hashes = set(ids), {h.lower() for h in hashes}
    skipped = skip if isinstance(skip, Set) else frozenset(skip)
    found = Found()
    offset = 0
    while True:
        page = fetch(offset, page_size)
        for item in page:
            if not isinstance(item, dict):
                continue
            item_id = as_int(item.get("id"))
            if item_id is not None and item_id in skipped:
                continue
            if item_id is not None and (everything or item_id in want_ids):
                found.by_id[item_id] = item
            for item_hash in _hashes_of(item):
                if (everything or item_hash in want_hashes) and item_hash not in found.by_hash:
                    found.by_hash[item_hash] = item
        done = (
            not everything
            and want_ids <= found.by_id.keys()
            and want_hashes <= found.by_hash.keys()
        )
        if len(page) < page_size or done or not page:
            return found
        offset += len(page)


def kind_of(payload_kind: str) -> ItemKind:
    """Hoster links are web downloads; magnets and torrent files are torrents."""
    return "webdl" if payload_kind == "url" else "torrent"
