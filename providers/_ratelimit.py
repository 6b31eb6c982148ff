"""Token buckets, one per provider account (and per budget, where an API has several)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from providers._clock import Clock, RealClock
from providers._errors import EngineError, WaitTimeout

__all__ = ["LimiterClosed", "RateLimiter", "acquire_all"]

T = TypeVar("T")


class LimiterClosed(EngineError):
    """The limiter was closed (the engine is stopping) while a caller waited for a token."""


class RateLimiter:
    """A thread-safe token bucket on an injectable clock.

    The bucket holds at most ``burst_size`` tokens and refills at
    ``requests_per_second``. In any window of length t it grants at most
    ``burst_size + requests_per_second * t`` tokens. ``pause_until`` empties it
    until a time (a provider's Retry-After), after which it refills from zero.
    """

    def __init__(
        self,
        requests_per_second: float,
        burst_size: int,
        clock: Clock | None = None,
        *,
        name: str = "default",
    ) -> None:
        if not requests_per_second > 0:
            raise ValueError(f"requests_per_second: must be > 0 (got {requests_per_second!r})")
        if burst_size < 1:
            raise ValueError(f"burst_size: must be >= 1 (got {burst_size!r})")
        self.name = name
        self.rate = float(requests_per_second)
        self.burst = int(burst_size)
        self._clock = clock or RealClock()
        self._cond = threading.Condition()
        self._tokens = float(burst_size)
        self._last = self._clock.monotonic()
        self._closed = False
        self.granted = 0

    def _refill(self, now: float) -> None:
        # While paused, _last lies in the future: nothing refills until then.
        if now > self._last:
            tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            # Snap float residue (0.9999999999999999 after exactly delay() seconds):
            # its wait is too small to move a FakeClock, and acquire() would spin
            # forever holding the lock.
            nearest = round(tokens)
            self._tokens = float(nearest) if abs(tokens - nearest) < 1e-6 else tokens
            self._last = now

    def _wait_time(self, now: float) -> float:
        if self._tokens >= 1:
            return 0.0
        start = max(now, self._last)
        return (start - now) + (1 - self._tokens) / self.rate

    def try_acquire(self) -> bool:
        """Take a token if one is there now; never blocks."""
        with self._cond:
            if self._closed:
                raise LimiterClosed(f"rate limiter {self.name!r} is closed")
            self._refill(self._clock.monotonic())
            if self._tokens >= 1:
                self._tokens -= 1
                self.granted += 1
                return True
            return False

    def delay(self) -> float:
        """Seconds until a token will be there (0 when one is there now)."""
        with self._cond:
            now = self._clock.monotonic()
            self._refill(now)
            return self._wait_time(now)

    def acquire(self, timeout: float | None = None) -> None:
        """Block (on the limiter's clock) until a token is taken.

        Raises ``WaitTimeout`` after ``timeout`` clock seconds, ``LimiterClosed``
        if the limiter is closed meanwhile.
        """
        with self._cond:
            start = self._clock.monotonic()
            deadline = None if timeout is None else start + timeout
            while True:
                if self._closed:
                    raise LimiterClosed(f"rate limiter {self.name!r} is closed")
                now = self._clock.monotonic()
                self._refill(now)
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.granted += 1
                    return
                ready_at = now + self._wait_time(now)
                if deadline is not None and ready_at > deadline:
                    if now >= deadline:
                        raise WaitTimeout(f"no token from rate limiter {self.name!r} in {timeout}s")
                    ready_at = deadline
                self._clock.wait(self._cond, ready_at)

    def execute(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        """Take a token, then call ``fn``."""
        self.acquire(timeout)
        return fn()

    def pause_until(self, until: float) -> None:
        """Grant nothing before ``until`` (clock seconds); refill from zero after it."""
        with self._cond:
            now = self._clock.monotonic()
            self._refill(now)
            self._tokens = 0.0
            self._last = max(self._last, until)
            self._cond.notify_all()

    def pause_for(self, seconds: float) -> None:
        """``pause_until(now + seconds)``."""
        self.pause_until(self._clock.monotonic() + max(0.0, seconds))

    @property
    def paused_until(self) -> float | None:
        """The end of the current pause, or None when not paused."""
        with self._cond:
            return self._last if self._last > self._clock.monotonic() else None

    def close(self) -> None:
        """Wake every waiter with ``LimiterClosed``; later calls raise it too."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def acquire_all(limiters: Sequence[RateLimiter], timeout: float | None = None) -> None:
    """Take one token from each limiter, in order (several budgets guarding one call)."""
    for limiter in limiters:
        limiter.acquire(timeout)
