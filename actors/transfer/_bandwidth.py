"""Bandwidth caps as token buckets in bytes per second, on the injectable clock.

A global bucket is shared by every download; a job may have its own on top.
A worker takes tokens for the bytes it has just read and waits (on its own
thread, never an actor's) until the buckets allow them. The buckets lend: a
take is never refused, it runs the bucket into debt and waits it off, so a
chunk bigger than the bucket still goes through and the rate over any window
is the cap, give or take one chunk. A bucket starts empty and saves at most
``burst_seconds`` (0.2 s) of idle capacity, so a cap is not overshot after a
pause; under a cap, workers read chunks of at most a tenth of a second's worth
(``chunk_for``). Over any window of W seconds the bytes granted stay within
``rate * (W + 0.2) + one chunk``: within 5 % of the cap for W >= 10 s.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from providers import Clock

__all__ = ["Bandwidth", "TokenBucket"]


def _checked(name: str, bps: float | None) -> float | None:
    if bps is None:
        return None
    if isinstance(bps, bool) or not isinstance(bps, int | float) or not math.isfinite(bps) \
            or bps <= 0:
        raise ValueError(f"{name}: a cap must be None or a finite number of bytes per second "
                         f"above 0, got {bps!r}")
    return float(bps)


class TokenBucket:
    """One cap, kept as two running totals: bytes taken and tokens earned.

    A take gets a ticket (the bytes taken so far, its own included) and may go
    on once the tokens earned reach it; tokens are earned at ``rate`` and, when
    nobody takes, stop ``rate * burst_seconds`` ahead of what was taken. A new
    rate applies at once, to the wait of every ticket still out. Not
    thread-safe on its own: ``Bandwidth`` holds the lock.
    """

    def __init__(self, rate: float | None, clock: Clock, burst_seconds: float = 0.2) -> None:
        self.clock = clock
        self.burst_seconds = burst_seconds
        self.rate = _checked("rate", rate)
        self.taken = 0.0
        self.earned = 0.0  # starts empty: no burst before the first byte
        self._at = clock.monotonic()

    def set_rate(self, rate: float | None) -> None:
        """Change the cap; lifting it clears any debt."""
        self._earn()
        self.rate = _checked("rate", rate)
        if self.rate is None:
            self.earned = self.taken

    def take(self, n: int) -> float:
        """Reserve ``n`` bytes; the ticket to wait for (``ready_at``)."""
        self._earn()
        if self.rate is None:
            self.earned += n
        self.taken += n
        return self.taken

    def ready_at(self, ticket: float) -> float:
        """The monotonic time at which ``ticket`` may go on, at the current rate."""
        now = self._earn()
        if self.rate is None or self.earned >= ticket:
            return now
        return now + (ticket - self.earned) / self.rate

    def _earn(self) -> float:
        now = self.clock.monotonic()
        if self.rate is not None and now > self._at:
            ceiling = self.taken + self.rate * self.burst_seconds
            self.earned = min(ceiling, self.earned + (now - self._at) * self.rate)
        self._at = max(self._at, now)
        return now


class Bandwidth:
    """The engine's caps: one global bucket, and one per job that has a cap."""

    def __init__(
        self, clock: Clock, global_bps: float | None = None, *, burst_seconds: float = 0.2
    ) -> None:
        self.clock = clock
        self.burst_seconds = burst_seconds
        self._cond = threading.Condition()
        self._global = TokenBucket(_checked("global_bps", global_bps), clock, burst_seconds)
        self._jobs: dict[str, TokenBucket] = {}

    def take(self, job_id: str, n: int, cancelled: threading.Event) -> bool:
        """Charge ``n`` bytes to the job and to everyone, then wait until both caps
        allow them. False once ``cancelled`` is set (the wait ends at ``wake``)."""
        with self._cond:
            overall = self._global
            mine = self._jobs.get(job_id)
            tickets = [(overall, overall.take(n))]
            if mine is not None:
                tickets.append((mine, mine.take(n)))
            while not cancelled.is_set():
                # Looked at again on every wake: a cap changed meanwhile counts at once.
                ready = max(bucket.ready_at(ticket) for bucket, ticket in tickets
                            if bucket is overall or self._jobs.get(job_id) is bucket)
                if self.clock.monotonic() >= ready:
                    return True
                self.clock.wait(self._cond, ready)
            return False

    def wake(self) -> None:
        """Wake every waiting worker (a cancel, a changed cap) to look again."""
        with self._cond:
            self._cond.notify_all()

    def set_global(self, bps: float | None) -> None:
        """Cap every download together at ``bps`` (None: no global cap)."""
        with self._cond:
            self._global.set_rate(_checked("global_bps", bps))
            self._cond.notify_all()

    def set_job(self, job_id: str, bps: float | None) -> None:
        """Cap one job at ``bps`` within the global cap (None lifts the job's cap)."""
        with self._cond:
            if bps is None:
                self._jobs.pop(job_id, None)
            else:
                bucket = self._jobs.get(job_id)
                if bucket is None:
                    self._jobs[job_id] = TokenBucket(_checked("bps", bps), self.clock,
                                                     self.burst_seconds)
                else:
                    bucket.set_rate(_checked("bps", bps))
            self._cond.notify_all()

    def chunk_for(self, job_id: str, default: int) -> int:
        """How much a worker of ``job_id`` should read at a time: ``default``, or under
        a cap a tenth of a second's worth (at least 4 KiB), so one chunk stays small
        against what the cap allows in a second."""
        with self._cond:
            rates = [self._global.rate]
            bucket = self._jobs.get(job_id)
            if bucket is not None:
                rates.append(bucket.rate)
        capped = [rate for rate in rates if rate is not None]
        if not capped:
            return default
        return max(4096, min(default, int(min(capped) / 10)))

    def forget(self, job_id: str) -> None:
        """The job is over: its cap goes."""
        with self._cond:
            self._jobs.pop(job_id, None)

    def capped_below(self, job_id: str, bps: float) -> bool:
        """True when the job may not go faster than ``bps`` (its cap or the global one)."""
        with self._cond:
            rates = [self._global.rate]
            bucket = self._jobs.get(job_id)
            if bucket is not None:
                rates.append(bucket.rate)
        return any(rate is not None and rate < bps for rate in rates)

    def limits(self) -> dict[str, Any]:
        """The caps in force: ``{"global_bps": ..., "jobs": {job_id: bps}}``."""
        with self._cond:
            return {
                "global_bps": self._global.rate,
                "jobs": {job: bucket.rate for job, bucket in self._jobs.items()},
            }
