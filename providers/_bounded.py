"""Memory that stays bounded however long a daemon runs: a size-capped map, and one whose
entries expire.

A provider remembers things between calls (payloads by remote id, ready items,
links it made, words it has warned about) for every job it ever saw; without a
cap, an engine run for months keeps them all. ``BoundedDict`` keeps the
``limit`` most recently written entries and drops the oldest in O(1);
``TtlCache`` keeps values for ``ttl`` seconds (a direct link while it works),
within a cap as well.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, MutableMapping
from typing import Generic, TypeVar, overload

__all__ = ["BoundedDict", "TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class BoundedDict(MutableMapping[K, V]):
    """A dict of at most ``limit`` entries: a write makes its key the newest, and a
    write past the limit drops the oldest (O(1), from a linked order, where
    ``next(iter(a_dict))`` walks every slot freed before it).

    Reads do not reorder: "oldest" is the least recently written. Like a dict,
    it is for one thread at a time (each provider's calls come from one actor).
    """

    __slots__ = ("_data", "limit")

    def __init__(self, limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit: must be an int >= 1 (got {limit!r})")
        #: The most entries kept.
        self.limit = limit
        self._data: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __setitem__(self, key: K, value: V) -> None:
        data = self._data
        data[key] = value
        data.move_to_end(key)
        if len(data) > self.limit:
            data.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    @overload
    def get(self, key: K, /) -> V | None: ...

    @overload
    def get(self, key: K, /, default: V | T) -> V | T: ...

    def get(self, key: K, /, default: V | T | None = None) -> V | T | None:
        """The value of ``key``, or ``default`` (without reordering)."""
        return self._data.get(key, default)

    def oldest(self) -> tuple[K, V] | None:
        """The least recently written entry, or None when empty (O(1))."""
        for item in self._data.items():
            return item
        return None

    def __repr__(self) -> str:
        return f"BoundedDict(limit={self.limit}, entries={len(self._data)})"


class TtlCache(Generic[K, V]):
    """Values kept ``ttl`` seconds (on ``now``'s clock) after they were put, at most ``limit``.

    Every entry lives equally long, so the order of writing is the order of
    expiry: each ``put`` drops the expired entries from the old end (O(1)
    amortised), and the cap bounds memory when values come faster than they
    expire. ``get`` answers only fresh values.
    """

    __slots__ = ("_entries", "now", "ttl")

    def __init__(self, ttl: float, now: Callable[[], float], *, limit: int) -> None:
        if not ttl >= 0:
            raise ValueError(f"ttl: must be seconds >= 0 (got {ttl!r})")
        #: Seconds a value is answered after it was put.
        self.ttl = float(ttl)
        self.now = now
        self._entries: BoundedDict[K, tuple[V, float]] = BoundedDict(limit)

    def get(self, key: K) -> V | None:
        """The value put under ``key`` less than ``ttl`` seconds ago, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.now() < entry[1]:
            return entry[0]
        del self._entries[key]
        return None

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds from now."""
        now = self.now()
        entries = self._entries
        entries[key] = (value, now + self.ttl)
        while (oldest := entries.oldest()) is not None and oldest[1][1] <= now:
            del entries[oldest[0]]

    def pop(self, key: K) -> V | None:
        """Forget ``key``; its value if it was still fresh."""
        entry = self._entries.pop(key, None)
        return entry[0] if entry is not None and self.now() < entry[1] else None

    @property
    def limit(self) -> int:
        """The most entries kept."""
        return self._entries.limit

    @limit.setter
    def limit(self, limit: int) -> None:
        self._entries.limit = limit

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TtlCache(ttl={self.ttl:g}, limit={self._entries.limit}, entries={len(self)})"
