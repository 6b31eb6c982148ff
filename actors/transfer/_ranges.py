"""The byte ranges of a file that are on disk, and how the rest is split up."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

__all__ = ["ByteRanges", "plan_segments"]


def _normalised(spans: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


@attrs.frozen
class ByteRanges:
    """Sorted, disjoint, non-adjacent half-open ranges ``[start, end)``; immutable."""

    spans: tuple[tuple[int, int], ...] = attrs.field(default=(), converter=_normalised)

    def add(self, start: int, end: int) -> ByteRanges:
        """These ranges and ``[start, end)`` (nothing when ``start >= end``)."""
        if start < 0 or end < 0:
            raise ValueError(f"a byte range cannot start or end below 0 (got {start}, {end})")
        if start >= end:
            return self
        # A file has a handful of ranges (one per segment and gap): sorting is cheap.
        return ByteRanges((*self.spans, (start, end)))

    @property
    def done(self) -> int:
        """How many bytes the ranges hold."""
        return sum(end - start for start, end in self.spans)

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The gaps in ``[0, size)``."""
        gaps: list[tuple[int, int]] = []
        position = 0
        for start, end in self.spans:
            if start >= size:
                break
            if start > position:
                gaps.append((position, start))
            position = max(position, end)
        if position < size:
            gaps.append((position, size))
        return gaps

    def covers(self, size: int) -> bool:
        """True when every byte of ``[0, size)`` is held."""
        return not self.missing(size)

    def contiguous_prefix(self) -> int:
        """The end of the range that starts at byte 0 (0 when there is none)."""
        if self.spans and self.spans[0][0] == 0:
            return self.spans[0][1]
        return 0

    def to_json(self) -> list[list[int]]:
        """``[[start, end], ...]``."""
        return [[start, end] for start, end in self.spans]

    @classmethod
    def from_json(cls, value: object) -> ByteRanges | None:
        """Ranges from ``to_json``'s form; None (never an exception) for anything else."""
        if not isinstance(value, list | tuple):
            return None
        spans: list[tuple[int, int]] = []
        for item in value:
            if not isinstance(item, list | tuple) or len(item) != 2:
                return None
            start, end = item
            if type(start) is not int or type(end) is not int:
                return None
            if start < 0 or end < start:
                return None
            spans.append((start, end))
        return cls(tuple(spans))


def plan_segments(
    missing: Sequence[tuple[int, int]], connections: int, min_split: int
) -> list[tuple[int, int]]:
    """Split the missing bytes into at most ``max(connections, len(missing))`` pieces.

    The largest piece is halved while there are fewer pieces than connections and
    both halves stay at least ``min_split`` bytes long.
    """
    pieces = [(start, end) for start, end in missing if end > start]
    floor = max(1, min_split)
    while len(pieces) < connections:
        index = max(range(len(pieces)), key=lambda i: pieces[i][1] - pieces[i][0], default=None)
        if index is None:
            break
        start, end = pieces[index]
        half = (end - start) // 2
        if half < floor or (end - start) - half < floor:
            break
        pieces[index : index + 1] = [(start, start + half), (start + half, end)]
    return sorted(pieces)
