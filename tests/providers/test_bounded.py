"""What providers remember between calls, bounded: a capped map, expiring values, warn-once."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers import FakeClock
from providers._bounded import BoundedDict, TtlCache
from providers._log import WarnOnce, get_logger

_OPS = st.lists(
    st.tuples(st.sampled_from(["set", "del", "get"]), st.integers(0, 12), st.integers()),
    max_size=80,
)


@given(limit=st.integers(1, 6), ops=_OPS)
def test_a_bounded_dict_keeps_the_newest_writes_in_order(
    limit: int, ops: list[tuple[str, int, int]]
) -> None:
    bounded: BoundedDict[int, int] = BoundedDict(limit)
    model: dict[int, int] = {}  # a plain dict in write order, cut by hand
    for op, key, value in ops:
        if op == "set":
            model.pop(key, None)
            model[key] = value
            if len(model) > limit:
                del model[next(iter(model))]
            bounded[key] = value
        elif op == "del":
            assert bounded.pop(key, None) == model.pop(key, None)
        else:
            assert bounded.get(key) == model.get(key)
        assert list(bounded.items()) == list(model.items())
        assert len(bounded) <= limit
        assert bounded.oldest() == next(iter(model.items()), None)


def test_a_bounded_dict_refuses_a_limit_that_is_not_a_positive_int() -> None:
    for limit in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="limit: must be an int >= 1"):
            BoundedDict(limit)  # type: ignore[arg-type]


def test_a_ttl_cache_answers_fresh_values_only_and_drops_expired_ones_as_it_goes() -> None:
    clock = FakeClock()
    cache: TtlCache[str, str] = TtlCache(10.0, clock.monotonic, limit=100)
    cache.put("a", "A")
    clock.advance(5)
    cache.put("b", "B")
    assert (cache.get("a"), cache.get("b")) == ("A", "B")
    clock.advance(5)  # a is 10 s old: expired; b is 5 s old
    assert (cache.get("a"), cache.get("b")) == (None, "B")
    clock.advance(20)
    cache.put("c", "C")  # b expired long ago: dropped by this write, not kept until read
    assert len(cache) == 1 and cache.get("c") == "C"
    assert cache.pop("c") == "C" and cache.get("c") is None


def test_a_ttl_cache_stays_within_its_limit_while_nothing_expires() -> None:
    clock = FakeClock()
    cache: TtlCache[int, int] = TtlCache(3600.0, clock.monotonic, limit=3)
    for key in range(10):
        cache.put(key, key)
    assert len(cache) == 3 and [cache.get(k) for k in (6, 7, 8, 9)] == [None, 7, 8, 9]


def test_a_ttl_of_zero_keeps_nothing() -> None:
    cache: TtlCache[str, str] = TtlCache(0.0, FakeClock().monotonic, limit=3)
    cache.put("a", "A")
    assert cache.get("a") is None and len(cache) == 0


def test_warn_once_warns_once_per_word_within_bounded_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warn = WarnOnce(get_logger("debrid.test"), "unknown_remote_status", "status", limit=2,
                    provider="p")
    with caplog.at_level(logging.WARNING, logger="debrid.test"):
        for word in ("a", "a", "b", "a", "b"):
            warn(word)
        assert [r.getMessage() for r in caplog.records] == [
            "unknown_remote_status provider=p status=a",
            "unknown_remote_status provider=p status=b",
        ]
        for word in ("c", "d", "a"):  # a was forgotten to keep c and d
            warn(word)
    assert len(caplog.records) == 5
    assert len(warn._seen) == 2
