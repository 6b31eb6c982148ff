"""``sync/maindata``: the full state, or what changed since the answer a client names by ``rid``.

Each answer gets the next ``rid`` and is kept (the last ``MAX_SNAPSHOTS``, LRU),
so that a client's next request with that ``rid`` gets only the torrents,
fields, categories and tags that changed since, plus what was removed. A
``rid`` that is unknown (0, forgotten, or from before a restart) gets a full
update, as qBittorrent does.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import attrs

__all__ = ["MAX_SNAPSHOTS", "MainData"]

#: Answers remembered for incremental updates.
MAX_SNAPSHOTS = 8


@attrs.frozen
class _Snapshot:
    torrents: dict[str, dict[str, Any]]
    categories: dict[str, dict[str, Any]]
    tags: tuple[str, ...]
    server_state: dict[str, Any]


class MainData:
    """The ``rid`` counter and the answers it names (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rid = 0
        self._snapshots: collections.OrderedDict[int, _Snapshot] = collections.OrderedDict()

    def answer(
        self,
        rid: int,
        torrents: dict[str, dict[str, Any]],
        categories: dict[str, dict[str, Any]],
        tags: list[str],
        server_state: dict[str, Any],
    ) -> dict[str, Any]:
        """The answer to a request naming ``rid``, given the state now."""
        now = _Snapshot(torrents, categories, tuple(tags), server_state)
        with self._lock:
            before = self._snapshots.get(rid) if rid > 0 else None
            self._rid += 1
            new_rid = self._rid
            self._snapshots[new_rid] = now
            if before is not None:
                self._snapshots.move_to_end(rid)
            while len(self._snapshots) > MAX_SNAPSHOTS:
                self._snapshots.popitem(last=False)
        if before is None:
            return {
                "rid": new_rid,
                "full_update": True,
                "torrents": torrents,
                "categories": categories,
                "tags": list(tags),
                "server_state": server_state,
                "trackers": {},
            }
        return _difference(new_rid, before, now)


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in new.items() if old.get(key) != value}


def _difference(rid: int, before: _Snapshot, now: _Snapshot) -> dict[str, Any]:
    answer: dict[str, Any] = {"rid": rid}
    torrents = {}
    for hash_, entry in now.torrents.items():
        old = before.torrents.get(hash_)
        change = entry if old is None else _changed(old, entry)
        if change:
            torrents[hash_] = change
    if torrents:
        answer["torrents"] = torrents
    removed = [h for h in before.torrents if h not in now.torrents]
    if removed:
        answer["torrents_removed"] = removed
    categories = {
        name: value for name, value in now.categories.items()
        if before.categories.get(name) != value
    }
    if categories:
        answer["categories"] = categories
    gone = [name for name in before.categories if name not in now.categories]
    if gone:
        answer["categories_removed"] = gone
    added_tags = [t for t in now.tags if t not in before.tags]
    if added_tags:
        answer["tags"] = added_tags
    removed_tags = [t for t in before.tags if t not in now.tags]
    if removed_tags:
        answer["tags_removed"] = removed_tags
    state = _changed(before.server_state, now.server_state)
    if state:
        answer["server_state"] = state
    return answer
