"""Byte ranges on disk, and how the missing bytes are split over connections."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.transfer import ByteRanges, plan_segments

SIZE = 200
_SPANS = st.lists(st.tuples(st.integers(0, SIZE), st.integers(0, SIZE)), max_size=20)


def _model(spans: list[tuple[int, int]]) -> set[int]:
    return {i for a, b in spans for i in range(a, b)}


@settings(max_examples=300)
@given(spans=_SPANS)
def test_adding_ranges_in_any_order_holds_their_union(spans: list[tuple[int, int]]) -> None:
    ranges = ByteRanges()
    for a, b in spans:
        ranges = ranges.add(a, b)
    held = _model(spans)
    assert _model(list(ranges.spans)) == held
    assert ranges.done == len(held)
    # Disjoint, sorted, never touching: one span per run of bytes.
    for (_, end), (start, _) in zip(ranges.spans, ranges.spans[1:], strict=False):
        assert end < start
    missing = ranges.missing(SIZE)
    assert _model(missing) == set(range(SIZE)) - held
    assert ranges.covers(SIZE) == (len(held) == SIZE)
    assert ByteRanges.from_json(ranges.to_json()) == ranges
    prefix = ranges.contiguous_prefix()
    assert set(range(prefix)) <= held and (prefix == 0 or prefix not in held)


def test_junk_from_the_store_is_refused_not_raised() -> None:
    for junk in (None, "x", 3, [[1]], [[1, 2, 3]], [["a", 2]], [[True, 2]], [[-1, 2]],
                 [[5, 2]], {"a": 1}, [[1.5, 2]]):
        assert ByteRanges.from_json(junk) is None, junk
    assert ByteRanges.from_json([]) == ByteRanges()
    assert ByteRanges.from_json([[5, 9], [0, 6]]) == ByteRanges(((0, 9),))


def test_a_negative_range_is_an_error() -> None:
    try:
        ByteRanges().add(-1, 3)
    except ValueError as error:
        assert "below 0" in str(error)
    else:
        raise AssertionError("a negative start was accepted")


@settings(max_examples=300)
@given(spans=_SPANS, connections=st.integers(1, 16), min_split=st.integers(1, 80))
def test_segments_cover_the_missing_bytes_exactly(
    spans: list[tuple[int, int]], connections: int, min_split: int
) -> None:
    ranges = ByteRanges()
    for a, b in spans:
        ranges = ranges.add(a, b)
    missing = ranges.missing(SIZE)
    pieces = plan_segments(missing, connections, min_split)
    assert len(pieces) <= max(connections, len(missing))
    covered: list[int] = []
    for a, b in pieces:
        assert a < b
        covered.extend(range(a, b))
    assert sorted(covered) == sorted(_model(missing))  # no overlap, nothing left out
    assert len(covered) == len(set(covered))
    originals = set(missing)
    for piece in pieces:
        if piece not in originals:  # a split piece is never below the minimum
            assert piece[1] - piece[0] >= min_split


def test_a_large_file_is_split_evenly_and_a_small_one_not_at_all() -> None:
    assert plan_segments([(0, 100)], 4, 10) == [(0, 25), (25, 50), (50, 75), (75, 100)]
    assert plan_segments([(0, 15)], 4, 10) == [(0, 15)]
    assert plan_segments([], 4, 10) == []
