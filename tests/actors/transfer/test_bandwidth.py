"""Bandwidth caps: token buckets in bytes per second on the fake clock, held within
5 % over any 10 s window, shared by every download, changeable while running."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.transfer import Bandwidth, TokenBucket
from providers import FakeClock

WINDOW = 10.0


def _worst_windows(grants: list[tuple[float, int]], window: float) -> tuple[float, float]:
    """The most and the least bytes granted in any window of ``window`` seconds that
    starts at a grant and lies within the run (grants are (time, bytes), in order)."""
    most, least = 0.0, float("inf")
    end_of_run = grants[-1][0]
    j, total = 0, 0  # the grants from this one to grants[j] lie in [start, start + window]
    for start, n in grants:
        if start + window > end_of_run:
            break
        while j < len(grants) and grants[j][0] <= start + window:
            total += grants[j][1]
            j += 1
        most = max(most, total)
        least = min(least, total - n)  # granted after ``start``, by ``start + window``
        total -= n
    return most, least


def _run_bucket(rate: float, chunks: list[int], clock: FakeClock) -> list[tuple[float, int]]:
    """One worker that always wants more: it takes a chunk, waits until it may use
    it, and goes on (the fake clock jumps to each ready time)."""
    bucket = TokenBucket(rate, clock)
    grants = []
    for n in chunks:
        ready = bucket.ready_at(bucket.take(n))
        clock.advance(max(0.0, ready - clock.monotonic()))
        grants.append((clock.monotonic(), n))
    return grants


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(10_000, 10_000_000),
    fractions=st.lists(st.floats(1 / 16, 1.0), min_size=1, max_size=8),
)
def test_a_cap_holds_within_five_percent_over_any_ten_seconds(
    rate: float, fractions: list[float]
) -> None:
    clock = FakeClock()
    # A worker under a cap reads at most a tenth of a second's worth at a time (less
    # when the socket has less: any fraction of it).
    chunk_cap = min(256 * 1024, max(4096, int(rate / 10)))
    chunks = [max(1, int(chunk_cap * f)) for f in fractions]
    stream: list[int] = []
    while sum(stream) < rate * 35:  # demand for three windows and more
        stream.extend(chunks)
    grants = _run_bucket(rate, stream, clock)
    most, least = _worst_windows(grants, WINDOW)
    assert most <= rate * WINDOW * 1.05, (most / (rate * WINDOW))
    assert least >= rate * WINDOW * 0.95, (least / (rate * WINDOW))


def test_a_bucket_starts_empty_and_saves_little_while_idle() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1000.0, clock)
    assert bucket.ready_at(bucket.take(500)) == pytest.approx(0.5)  # no initial burst
    clock.advance(3600.0)  # an hour idle saves a fifth of a second, not an hour
    assert bucket.ready_at(bucket.take(200)) == pytest.approx(clock.monotonic())
    assert bucket.ready_at(bucket.take(1000)) == pytest.approx(clock.monotonic() + 1.0)


def test_a_new_rate_applies_to_a_ticket_already_waiting() -> None:
    clock = FakeClock()
    bucket = TokenBucket(100.0, clock)
    ticket = bucket.take(1000)
    assert bucket.ready_at(ticket) == pytest.approx(10.0)
    bucket.set_rate(1000.0)
    assert bucket.ready_at(ticket) == pytest.approx(1.0)
    bucket.set_rate(None)
    assert bucket.ready_at(ticket) == pytest.approx(0.0)


def _drive(clock: FakeClock, done: Callable[[], bool], step: float = 0.05) -> None:
    """Advance the fake clock until ``done`` (real time bounded by the event waits)."""
    finished = threading.Event()
    for _ in range(200_000):
        if done():
            return
        clock.advance(step)
        finished.wait(0.0005)
    raise AssertionError("the workers never finished")


def _worker(bandwidth: Bandwidth, job: str, total: int, chunk: int, clock: FakeClock,
            grants: list[tuple[float, int]], cancelled: threading.Event) -> threading.Thread:
    def run() -> None:
        sent = 0
        while sent < total and bandwidth.take(job, chunk, cancelled):
            grants.append((clock.monotonic(), chunk))
            sent += chunk

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_global_cap_is_shared_and_a_job_cap_holds_within_it() -> None:
    clock = FakeClock()
    bandwidth = Bandwidth(clock, global_bps=100_000)
    bandwidth.set_job("slow", 20_000)
    never = threading.Event()
    fast: list[tuple[float, int]] = []
    slow: list[tuple[float, int]] = []
    workers = [
        _worker(bandwidth, "fast", 2_400_000, 4096, clock, fast, never),
        _worker(bandwidth, "slow", 600_000, 2048, clock, slow, never),
    ]
    _drive(clock, lambda: not any(w.is_alive() for w in workers) or clock.monotonic() > 30)
    never.set()
    bandwidth.wake()
    for w in workers:
        w.join(5)
    horizon = 25.0
    both = sum(n for t, n in fast + slow if t <= horizon)
    assert both <= 100_000 * horizon * 1.05
    assert both >= 100_000 * horizon * 0.9
    mine = sum(n for t, n in slow if t <= horizon)
    assert mine <= 20_000 * horizon * 1.05 and mine >= 20_000 * horizon * 0.9


def test_a_cancel_wakes_a_waiting_worker_at_once() -> None:
    clock = FakeClock()
    bandwidth = Bandwidth(clock, global_bps=1_000)
    cancelled = threading.Event()
    result: list[bool] = []
    thread = threading.Thread(
        target=lambda: result.append(bandwidth.take("j", 1_000_000, cancelled)), daemon=True
    )
    thread.start()  # a thousand seconds of debt on the fake clock: it waits
    thread.join(0.2)
    assert thread.is_alive()
    cancelled.set()
    bandwidth.wake()
    thread.join(5)
    assert result == [False]


def test_lifting_a_cap_frees_a_waiting_worker() -> None:
    clock = FakeClock()
    bandwidth = Bandwidth(clock, global_bps=1_000)
    result: list[bool] = []
    thread = threading.Thread(
        target=lambda: result.append(bandwidth.take("j", 1_000_000, threading.Event())),
        daemon=True,
    )
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()
    bandwidth.set_global(None)
    thread.join(5)
    assert result == [True]
    assert bandwidth.limits() == {"global_bps": None, "jobs": {}}


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "10"])
def test_a_cap_that_is_not_a_rate_is_refused_by_name(bad: object) -> None:
    bandwidth = Bandwidth(FakeClock())
    with pytest.raises(ValueError, match="global_bps"):
        bandwidth.set_global(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bps"):
        bandwidth.set_job("j", bad)  # type: ignore[arg-type]


def test_chunks_shrink_under_a_cap() -> None:
    bandwidth = Bandwidth(FakeClock(), global_bps=100_000)
    assert bandwidth.chunk_for("j", 256 * 1024) == 10_000
    bandwidth.set_global(None)
    assert bandwidth.chunk_for("j", 256 * 1024) == 256 * 1024
    bandwidth.set_job("j", 1000)
    assert bandwidth.chunk_for("j", 256 * 1024) == 4096
    assert bandwidth.capped_below("j", 1024) and not bandwidth.capped_below("other", 1024)
