"""FakeClock and RealClock: virtual time that wakes waiting threads, and never runs backwards."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from providers import Clock, FakeClock, RealClock, _clock

TIMEOUT = 5.0  # real seconds: only a bound on a failure, never the path to success


@pytest.fixture
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


@pytest.mark.usefixtures("no_safety_wake")
def test_advance_wakes_a_thread_waiting_for_a_deadline(
    spawn: Callable[[Callable[[], None]], threading.Thread],
) -> None:
    clock = FakeClock()
    cond = threading.Condition()
    started, done = threading.Event(), threading.Event()

    def waiter() -> None:
        with cond:
            started.set()
            while clock.monotonic() < 5:
                clock.wait(cond, 5)
        done.set()

    spawn(waiter)
    assert started.wait(TIMEOUT)
    with cond:  # only free once the waiter is inside clock.wait
        pass
    clock.advance(4)
    assert not done.is_set()  # it cannot finish before its deadline
    clock.advance(1)
    assert done.wait(TIMEOUT)


@pytest.mark.usefixtures("no_safety_wake")
def test_advance_wakes_a_thread_in_sleep_only_once_its_time_has_passed(
    spawn: Callable[[Callable[[], None]], threading.Thread],
) -> None:
    clock = FakeClock(start=100.0)
    done = threading.Event()
    times: list[float] = []

    def sleeper() -> None:
        times.append(clock.monotonic())
        clock.sleep(10)
        times.append(clock.monotonic())
        done.set()

    spawn(sleeper)
    # The sleeper may call sleep at any point of this loop: step until it is woken.
    for _ in range(1000):
        clock.advance(0.5)
        if done.wait(0.01):
            break
    assert done.is_set()
    slept_from, woke_at = times
    assert woke_at >= slept_from + 10


def test_wait_returns_at_once_when_the_deadline_has_passed() -> None:
    clock = FakeClock(start=10.0)
    cond = threading.Condition()
    with cond:
        clock.wait(cond, 10.0)
    assert clock.monotonic() == 10.0


def test_autojump_sleep_advances_the_clock_without_waiting() -> None:
    clock = FakeClock(autojump=True)
    clock.sleep(3600)
    clock.sleep(-5)  # a negative sleep is no sleep, not a step back
    assert clock.monotonic() == 3600


def test_advance_refuses_to_go_backwards() -> None:
    clock = FakeClock(start=5.0)
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)
    assert clock.monotonic() == 5.0


def test_set_moves_forward_only() -> None:
    clock = FakeClock()
    clock.set(30.0)
    clock.set(10.0)
    assert clock.monotonic() == 30.0


def test_wall_time_follows_the_fake_monotonic_time() -> None:
    clock = FakeClock(start=2.0, start_wall=1_000.0)
    clock.advance(1.5)
    assert clock.time() == 1_001.5
    assert clock.time_ms() == 1_001_500


def test_real_clock_is_monotonic_and_a_clock() -> None:
    clock = RealClock()
    assert isinstance(clock, Clock)
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert abs(clock.time_ms() - clock.time() * 1000) < 60_000


def test_real_clock_wait_with_a_past_deadline_returns_at_once() -> None:
    clock = RealClock()
    cond = threading.Condition()
    with cond:
        clock.wait(cond, clock.monotonic() - 1)
    clock.sleep(0)
    assert clock.monotonic() > 0
