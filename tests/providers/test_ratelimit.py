"""RateLimiter: a token bucket on virtual time, shared safely between threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pacing_helpers import take_if_ready

from providers import FakeClock, LimiterClosed, RateLimiter, WaitTimeout, _clock

TIMEOUT = 5.0  # real seconds: only a bound on a failure, never the path to success
EPSILON = 1e-6


class SignallingClock(FakeClock):
    """A FakeClock that tells the test when some thread has started waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        self.waiting.set()
        super().wait(cond, deadline)


@pytest.fixture(autouse=True)
def no_safety_wake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make FakeClock's periodic real-time re-check too rare to hide a missing notify."""
    monkeypatch.setattr(_clock, "_FAKE_SAFETY_WAKE", 60.0)


@pytest.fixture
def spawn() -> Iterator[Callable[[Callable[[], None]], threading.Thread]]:
    """Start daemon threads and make sure each one has finished by the end of the test."""
    threads: list[threading.Thread] = []

    def start(target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, daemon=True)
        threads.append(thread)
        thread.start()
        return thread

    yield start
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a test thread did not finish"


def drain(limiter: RateLimiter) -> None:
    while take_if_ready(limiter):
        pass


def test_a_full_bucket_grants_a_burst_then_refuses() -> None:
    limiter = RateLimiter(1.0, 3, FakeClock())
    assert [take_if_ready(limiter) for _ in range(4)] == [True, True, True, False]
    assert limiter.granted == 3


def test_the_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, 3, clock)
    drain(limiter)
    clock.advance(0.5)
    assert take_if_ready(limiter)
    assert not take_if_ready(limiter)
    clock.advance(1000)
    assert sum(take_if_ready(limiter) for _ in range(10)) == 3


def test_delay_says_when_the_next_token_comes() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, 1, clock)
    assert limiter.delay() == 0.0
    drain(limiter)
    assert limiter.delay() == pytest.approx(0.25)


def test_invalid_rate_or_burst_is_refused() -> None:
    with pytest.raises(ValueError, match="requests_per_second"):
        RateLimiter(0, 1, FakeClock())
    with pytest.raises(ValueError, match="burst_size"):
        RateLimiter(1, 0, FakeClock())


def test_acquire_blocks_until_the_clock_brings_a_token(
    spawn: Callable[[Callable[[], None]], threading.Thread],
) -> None:
    clock = SignallingClock()
    limiter = RateLimiter(1.0, 1, clock)
    drain(limiter)
    done = threading.Event()

    def taker() -> None:
        limiter.acquire()
        done.set()

    spawn(taker)
    assert clock.waiting.wait(TIMEOUT)
    clock.advance(0.5)
    assert not done.is_set()  # half a token is not a token
    clock.advance(0.5)
    assert done.wait(TIMEOUT)
    assert limiter.granted == 2


def test_pause_for_grants_nothing_until_it_ends_then_refills_from_zero() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 5, clock)
    limiter.pause_for(10)
    assert limiter.paused_until == 10
    assert not take_if_ready(limiter)
    assert limiter.delay() == pytest.approx(11)
    clock.advance(10)
    assert not take_if_ready(limiter)  # the pause ended with an empty bucket
    clock.advance(1)
    assert take_if_ready(limiter)
    assert limiter.paused_until is None


def test_a_pause_never_shortens_a_longer_one() -> None:
    limiter = RateLimiter(1.0, 1, FakeClock())
    limiter.pause_for(30)
    limiter.pause_for(5)
    assert limiter.paused_until == 30


def test_a_pause_holds_back_a_waiting_thread(
    spawn: Callable[[Callable[[], None]], threading.Thread],
) -> None:
    clock = SignallingClock()
    limiter = RateLimiter(10.0, 1, clock)
    drain(limiter)
    limiter.pause_for(60)
    done = threading.Event()

    def taker() -> None:
        limiter.acquire()
        done.set()

    spawn(taker)
    assert clock.waiting.wait(TIMEOUT)
    clock.advance(59)
    assert not done.is_set()
    clock.advance(1.1)
    assert done.wait(TIMEOUT)
    assert clock.monotonic() >= 60.1


def test_close_wakes_waiters_with_limiter_closed(
    spawn: Callable[[Callable[[], None]], threading.Thread],
) -> None:
    clock = SignallingClock()
    limiter = RateLimiter(1.0, 1, clock, name="rd")
    drain(limiter)
    errors: list[BaseException] = []
    done = threading.Event()

    def taker() -> None:
        try:
            limiter.acquire()
        except LimiterClosed as exc:
            errors.append(exc)
        done.set()

    spawn(taker)
    assert clock.waiting.wait(TIMEOUT)
    limiter.close()
    assert done.wait(TIMEOUT)
    assert len(errors) == 1
    assert "rd" in str(errors[0])
    with pytest.raises(LimiterClosed):
        limiter.take()


def test_acquire_times_out_on_the_limiter_clock(
    spawn: Callable[[Callable[[], None]], threading.Thread],
) -> None:
    clock = SignallingClock()
    limiter = RateLimiter(0.01, 1, clock)
    drain(limiter)
    errors: list[BaseException] = []
    done = threading.Event()

    def taker() -> None:
        try:
            limiter.acquire(timeout=5)
        except WaitTimeout as exc:
            errors.append(exc)
        done.set()

    spawn(taker)
    assert clock.waiting.wait(TIMEOUT)
    clock.advance(5)
    assert done.wait(TIMEOUT)
    assert len(errors) == 1
    assert isinstance(errors[0], TimeoutError)
    assert limiter.granted == 1


def test_acquire_with_zero_timeout_and_no_token_fails_at_once() -> None:
    limiter = RateLimiter(1.0, 1, FakeClock())
    limiter.acquire(timeout=0)
    with pytest.raises(WaitTimeout):
        limiter.acquire(timeout=0)


def test_concurrent_takers_never_get_more_than_the_burst(
    spawn: Callable[[Callable[[], None]], threading.Thread],
) -> None:
    limiter = RateLimiter(1.0, 100, FakeClock())
    counts: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def taker() -> None:
        barrier.wait(TIMEOUT)
        got = sum(take_if_ready(limiter) for _ in range(50))
        with lock:
            counts.append(got)

    for thread in [spawn(taker) for _ in range(8)]:
        thread.join(TIMEOUT)
    assert len(counts) == 8
    assert sum(counts) == 100 == limiter.granted


def test_threads_blocked_in_acquire_share_the_rate(
    spawn: Callable[[Callable[[], None]], threading.Thread],
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, 1, clock)
    finished = threading.Semaphore(0)
    threads, per_thread = 4, 5

    def taker() -> None:
        for _ in range(per_thread):
            limiter.acquire()
        finished.release()

    for _ in range(threads):
        spawn(taker)
    done = 0
    for _ in range(10_000):
        if finished.acquire(timeout=0.001):
            done += 1
            if done == threads:
                break
        clock.advance(0.05)
    assert done == threads
    assert limiter.granted == threads * per_thread
    # 20 tokens from a bucket of 1 at 10/s need at least 1.9 s of clock time.
    assert clock.monotonic() >= (threads * per_thread - 1) / 10 - EPSILON


steps = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3, allow_nan=False),
        st.integers(min_value=0, max_value=6),
        st.booleans(),
    ),
    max_size=40,
)


@settings(deadline=None)  # the suite shares CPUs with actor tests
@given(
    rate=st.floats(min_value=0.1, max_value=50, allow_nan=False),
    burst=st.integers(min_value=1, max_value=8),
    operations=steps,
    pause=st.floats(min_value=0, max_value=5, allow_nan=False),
)
def test_no_window_ever_gets_more_than_burst_plus_rate_times_length(
    rate: float, burst: int, operations: list[tuple[float, int, bool]], pause: float
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, burst, clock)
    grants: list[float] = []
    for dt, count, pause_now in operations:
        clock.advance(dt)
        if pause_now:
            limiter.pause_for(pause)
        for _ in range(count):
            if take_if_ready(limiter):
                grants.append(clock.monotonic())
    # The busiest window starts and ends on a grant, so checking those windows suffices.
    for i, start in enumerate(grants):
        for j in range(i, len(grants)):
            window = grants[j] - start
            assert j - i + 1 <= burst + rate * window + EPSILON
    assert limiter.granted == len(grants)


# -- take / delay(cost) / capped pauses: what a provider actor that never sleeps uses --


def test_take_never_blocks_and_leaves_the_bucket_in_debt() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 2, clock)
    limiter.take(5)
    assert limiter.granted == 5
    assert not take_if_ready(limiter)
    # Three tokens of debt, then one to grant: four seconds at 1/s.
    assert limiter.delay() == pytest.approx(4.0)
    clock.advance(4.0)
    assert limiter.delay() == 0.0
    assert take_if_ready(limiter)


def test_delay_of_a_cost_is_capped_at_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, 3, clock)
    drain(limiter)
    assert limiter.delay(2) == pytest.approx(1.0)
    assert limiter.delay(3) == pytest.approx(1.5)
    assert limiter.delay(100) == pytest.approx(1.5)  # never more than a full bucket
    assert limiter.eta(5) == pytest.approx(2.5)  # a waiting line is not capped


def test_delay_counts_a_pause_even_for_a_cost_of_zero() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 1, clock)
    limiter.pause_for(7)
    assert limiter.delay(0) == pytest.approx(7)
    assert limiter.delay(1) == pytest.approx(8)


def test_take_on_a_closed_limiter_raises() -> None:
    limiter = RateLimiter(1.0, 1, FakeClock())
    limiter.close()
    with pytest.raises(LimiterClosed):
        limiter.take()


@pytest.mark.parametrize("seconds", [float("inf"), 1e400, 99_999_999.0, 999_999_996.0])
def test_a_huge_pause_is_cut_to_max_pause(seconds: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 1, clock, max_pause=120.0)
    assert limiter.pause_for(seconds) == 120.0
    assert limiter.paused_until == pytest.approx(120.0)
    clock.advance(121.0)
    assert take_if_ready(limiter)


@pytest.mark.parametrize("seconds", [float("nan"), -5.0, float("-inf")])
def test_a_pause_that_is_not_a_number_or_negative_pauses_nothing(seconds: float) -> None:
    limiter = RateLimiter(1.0, 1, FakeClock())
    assert limiter.pause_for(seconds) == 0.0
    assert limiter.paused_until is None
    assert take_if_ready(limiter)


def test_a_pause_is_cut_to_max_pause_from_now() -> None:
    clock = FakeClock(start=100.0)
    limiter = RateLimiter(1.0, 1, clock)  # the default cap: an hour
    assert limiter.pause_for(float("inf")) == 3600.0
    assert limiter.paused_until == pytest.approx(3700.0)
    assert limiter.pause_for(-50.0) == 0.0  # a time in the past
    assert limiter.paused_until == pytest.approx(3700.0)


def test_a_pause_keeps_a_debt() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 1, clock)
    limiter.take(3)
    limiter.pause_for(10)
    assert limiter.delay() == pytest.approx(10 + 3)


def test_max_pause_must_be_finite_and_not_negative() -> None:
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="max_pause"):
            RateLimiter(1.0, 1, FakeClock(), max_pause=bad)


cost_steps = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3, allow_nan=False),
        st.integers(min_value=1, max_value=12),
        st.booleans(),
    ),
    max_size=40,
)


@settings(deadline=None)
@given(
    rate=st.floats(min_value=0.1, max_value=50, allow_nan=False),
    burst=st.integers(min_value=1, max_value=8),
    operations=cost_steps,
    pause=st.floats(min_value=0, max_value=5, allow_nan=False),
)
def test_taking_only_when_delay_says_zero_keeps_every_window_within_the_bound(
    rate: float, burst: int, operations: list[tuple[float, int, bool]], pause: float
) -> None:
    """Callers who ``take(c)`` only after ``delay(c) == 0`` (costs may exceed the burst)
    get at most burst + rate * t + (max cost - 1) tokens in any window of length t."""
    clock = FakeClock()
    limiter = RateLimiter(rate, burst, clock)
    grants: list[tuple[float, int]] = []
    for dt, cost, pause_now in operations:
        clock.advance(dt)
        if pause_now:
            limiter.pause_for(pause)
        if limiter.delay(cost) == 0:
            limiter.take(cost)
            grants.append((clock.monotonic(), cost))
    max_cost = max((cost for _, cost in grants), default=1)
    for i, (start, _) in enumerate(grants):
        total = 0
        for j in range(i, len(grants)):
            total += grants[j][1]
            window = grants[j][0] - start
            assert total <= burst + rate * window + (max_cost - 1) + EPSILON
    assert limiter.granted == sum(cost for _, cost in grants)
