"""Time as a dependency: the real clock, and a FakeClock that tests advance by hand.

Every time-dependent piece (rate limiter, retry, scheduler, mock provider, stall
timeouts) reads time from a ``Clock`` and waits through ``Clock.wait``, so a test
can run minutes of provider behaviour in milliseconds without sleeping.
"""

from __future__ import annotations

import threading
import time as _time
import weakref

__all__ = ["Clock", "FakeClock", "RealClock"]

# FakeClock waiters also wake this often in real time, so that a waiter whose
# condition changed without a notify (a programming error elsewhere) re-checks
# instead of hanging forever; callers always loop on their own predicate.
_FAKE_SAFETY_WAKE = 0.5


class Clock:
    """The interface every time-dependent part uses; ``RealClock`` is the default."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for deadlines and rates)."""
        raise NotImplementedError

    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        raise NotImplementedError

    def time_ms(self) -> int:
        """Wall-clock milliseconds since the epoch, as stored in jobs."""
        return int(self.time() * 1000)

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait on ``cond`` (which the caller holds) until notified or ``deadline`` passes.

        ``deadline`` is on the ``monotonic()`` scale; ``None`` waits for a notify.
        Spurious wake-ups are allowed: callers re-check their predicate in a loop.
        """
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` of this clock's time."""
        cond = threading.Condition()
        deadline = self.monotonic() + seconds
        with cond:
            while self.monotonic() < deadline:
                self.wait(cond, deadline)


class RealClock(Clock):
    """The system clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return _time.monotonic()

    def time(self) -> float:
        """``time.time()``."""
        return _time.time()

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        """``cond.wait`` with the time left until ``deadline``."""
        if deadline is None:
            cond.wait()
            return
        remaining = deadline - _time.monotonic()
        if remaining > 0:
            cond.wait(remaining)

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        if seconds > 0:
            _time.sleep(seconds)


class FakeClock(Clock):
    """A clock that only moves when told to, for deterministic tests.

    ``advance(seconds)`` moves time forward and wakes every thread waiting on the
    clock, which then re-checks its deadline. With ``autojump=True`` a ``sleep``
    advances the clock itself instead of waiting for another thread to do so.
    ``time()`` is ``start_wall`` plus the seconds advanced so far.
    """

    def __init__(
        self, start: float = 0.0, *, start_wall: float = 1_700_000_000.0, autojump: bool = False
    ) -> None:
        self._lock = threading.Lock()
        self._now = float(start)
        self._wall_offset = start_wall - start
        self._autojump = autojump
        self._waiters: weakref.WeakSet[threading.Condition] = weakref.WeakSet()
        self._advanced = threading.Condition(self._lock)

    def monotonic(self) -> float:
        """The fake time, in seconds."""
        # No lock for reading: one attribute load sees the time before or after
        # an advance, never half of one; every actor reads the clock often.
        return self._now

    def time(self) -> float:
        """The fake wall-clock time."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every waiter."""
        if seconds < 0:
            raise ValueError(f"seconds: cannot go back in time (got {seconds})")
        with self._lock:
            self._now += seconds
            waiters = list(self._waiters)
            self._advanced.notify_all()
        for cond in waiters:
            with cond:
                cond.notify_all()

    def set(self, now: float) -> None:
        """Move time forward to ``now`` (never backwards)."""
        self.advance(max(0.0, now - self.monotonic()))

    def wait(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait until notified or until ``advance`` reaches ``deadline``."""
        with self._lock:
            if deadline is not None and self._now >= deadline:
                return
            self._waiters.add(cond)
        try:
            cond.wait(_FAKE_SAFETY_WAKE)
        finally:
            with self._lock:
                self._waiters.discard(cond)

    def sleep(self, seconds: float) -> None:
        """With autojump, advance by ``seconds``; otherwise wait until someone does."""
        if self._autojump:
            self.advance(max(0.0, seconds))
            return
        with self._lock:
            deadline = self._now + seconds
            while self._now < deadline:
                self._advanced.wait(_FAKE_SAFETY_WAKE)
