"""Token buckets, one per provider account (and per budget, where an API has several)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable

from providers._clock import Clock, RealClock
from providers._errors import EngineError, WaitTimeout

__all__ = ["GrowingWait", "LimiterClosed", "RateLimiter"]


class LimiterClosed(EngineError):
    """The limiter was closed (the engine is stopping) while a caller waited for a token."""


class RateLimiter:
    """A thread-safe token bucket on an injectable clock.

    The bucket holds at most ``burst_size`` tokens and refills at
    ``requests_per_second``. In any window of length t it grants at most
    ``burst_size + requests_per_second * t`` tokens (plus ``cost - 1`` for callers
    of ``take(cost)`` who wait for ``delay(cost) == 0``). ``pause_for`` empties it
    for a while (a provider's Retry-After), after which it refills from zero;
    no pause lasts longer than ``max_pause`` seconds, whatever a header says.

    Two ways to spend it: ``acquire`` blocks until a token is there (providers
    used on their own); ``take`` never blocks and may leave the bucket in debt,
    for an actor that asked ``delay(cost)`` first and must never sleep.
    """

    def __init__(
        self,
        requests_per_second: float,
        burst_size: int,
        clock: Clock | None = None,
        *,
        name: str = "default",
        max_pause: float = 3600.0,
    ) -> None:
        if not requests_per_second > 0:
            raise ValueError(f"requests_per_second: must be > 0 (got {requests_per_second!r})")
        if burst_size < 1:
            raise ValueError(f"burst_size: must be >= 1 (got {burst_size!r})")
        if not 0 <= max_pause < math.inf:
            raise ValueError(f"max_pause: must be finite and >= 0 (got {max_pause!r})")
        self.name = name
        self.rate = float(requests_per_second)
        self.burst = int(burst_size)
        #: The longest pause ``pause_for`` applies, in seconds.
        self.max_pause = float(max_pause)
        self._clock = clock or RealClock()
        self._cond = threading.Condition()
        self._tokens = float(burst_size)
        self._last = self._clock.monotonic()
        self._pause_reason: str | None = None
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

    def _wait_time(self, now: float, need: float = 1.0) -> float:
        if self._tokens >= need and now >= self._last:
            return 0.0
        start = max(now, self._last)
        return (start - now) + max(0.0, need - self._tokens) / self.rate

    def take(self, cost: int = 1) -> None:
        """Take ``cost`` tokens now, never blocking, into debt if the bucket holds fewer.

        A bucket in debt refills from below zero, so whoever comes next waits
        longer: the rate holds over time. Callers that must stay inside the burst
        as well ask ``delay(cost)`` first and take only when it is 0.
        """
        if cost < 0:
            raise ValueError(f"cost: must be >= 0 (got {cost!r})")
        with self._cond:
            if self._closed:
                raise LimiterClosed(f"rate limiter {self.name!r} is closed")
            self._refill(self._clock.monotonic())
            self._tokens -= cost
            self.granted += cost

    def delay(self, cost: int = 1) -> float:
        """Seconds until ``cost`` tokens (at most the burst) will be there (0: now)."""
        need = float(min(max(cost, 0), self.burst))
        with self._cond:
            now = self._clock.monotonic()
            self._refill(now)
            if need == 0:
                return max(0.0, self._last - now)
            return self._wait_time(now, need)

    def eta(self, tokens: float) -> float:
        """Seconds until ``tokens`` tokens, not capped at the burst, will have come.

        An estimate for a waiting line: the last of calls needing ``tokens`` in
        all, served as soon as each token exists, starts about this much later.
        """
        with self._cond:
            now = self._clock.monotonic()
            self._refill(now)
            if tokens <= 0:
                return max(0.0, self._last - now)
            return self._wait_time(now, tokens)

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

    def pause_for(self, seconds: float, reason: str | None = None) -> float:
        """Grant nothing for ``seconds`` (clock seconds); refill from zero after.

        The pause is cut to ``max_pause`` (+inf, a Retry-After of 1e400, is simply
        above the cap); a negative time or not a number is refused and changes
        nothing. Returns the seconds applied, so a caller can tell (and log) that
        a provider's Retry-After was cut. A longer pause already running is never
        shortened, and a debt is kept. ``reason`` (a 429, and where) is what
        ``pause_reason`` says while this pause is the one that holds.
        """
        if math.isnan(seconds) or seconds < 0:
            return 0.0  # refused: nothing to wait for, and nothing said about the bucket
        with self._cond:
            now = self._clock.monotonic()
            seconds = min(seconds, self.max_pause)
            self._refill(now)
            self._tokens = min(self._tokens, 0.0)
            if now + seconds > self._last:
                self._last = now + seconds
                self._pause_reason = reason
            self._cond.notify_all()
            return seconds

    @property
    def paused_until(self) -> float | None:
        """The end of the current pause, or None when not paused."""
        with self._cond:
            return self._last if self._last > self._clock.monotonic() else None

    @property
    def pause_reason(self) -> str | None:
        """Why the current pause holds (as its ``pause_for`` said), or None."""
        with self._cond:
            if self._last > self._clock.monotonic():
                return self._pause_reason or "paused"
            return None

    def close(self) -> None:
        """Wake every waiter with ``LimiterClosed``; later calls raise it too."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class GrowingWait:
    """Waits for refusals that say nothing of when to come back: ``first`` seconds,
    doubling with each refusal in a row, at most ``cap``.

    Counted per set of buckets (the ones the refusal held back): a success on
    other buckets does not end the count of a limit it never touched; ``settle``
    after a success that needed buckets restarts the counts of every set within
    them. Thread-safe (a provider's client may serve a device-flow thread too).
    """

    __slots__ = ("_counts", "_lock", "cap", "first")

    def __init__(self, first: float, cap: float) -> None:
        self.first = min(first, cap)
        self.cap = cap
        self._counts: dict[frozenset[str], int] = {}
        self._lock = threading.Lock()

    def next(self, buckets: Iterable[str] = ()) -> float:
        """The wait for one more refusal on ``buckets`` (and count it)."""
        key = frozenset(buckets)
        with self._lock:
            count = self._counts.get(key, 0)
            self._counts[key] = min(count + 1, 32)
        return min(self.cap, self.first * 2.0**count)

    def settle(self, buckets: Iterable[str] = ()) -> None:
        """A call that needed ``buckets`` went through: their counts restart."""
        if not self._counts:
            return
        names = set(buckets)
        with self._lock:
            for key in [key for key in self._counts if key <= names]:
                del self._counts[key]
