"""Counters of what an engine did, for ``/metrics``: requests, 429s, budget waits, bytes, commits.

One ``Telemetry`` per engine, shared by its provider HTTP clients, provider
actors, downloads and writer. Every update is a few dictionary additions under
a lock (never I/O), so it may be called from any thread, an actor's included;
``snapshot()`` copies the figures for a scrape. The keys are bounded: providers,
their buckets and the codes a response can have, never job ids.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping

import attrs

__all__ = ["COMMIT_BUCKETS", "Telemetry", "TelemetrySnapshot"]

#: Upper bounds (seconds) of the commit latency histogram.
COMMIT_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)


@attrs.frozen
class TelemetrySnapshot:
    """The figures at one moment; every count only grows while the engine runs."""

    #: (provider, code) -> requests: an HTTP status ("200", "429") or an error code
    #: for an exchange that got no answer ("TIMEOUT", "PROVIDER_UNAVAILABLE").
    requests: Mapping[tuple[str, str], int]
    #: provider -> answers that were a rate limit (HTTP 429).
    rate_limited: Mapping[str, int]
    #: (provider, bucket) -> calls that had to wait for a budget.
    budget_waits: Mapping[tuple[str, str], int]
    #: provider -> bytes written by local downloads.
    bytes_downloaded: Mapping[str, int]
    commits: int
    commit_seconds_sum: float
    #: Cumulative: upper bound -> commits that took at most that long.
    commit_seconds_buckets: Mapping[float, int]


class Telemetry:
    """Thread-safe counters (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._rate_limited: dict[str, int] = {}
        self._budget_waits: dict[tuple[str, str], int] = {}
        self._bytes: dict[str, int] = {}
        self._commits = 0
        self._commit_sum = 0.0
        self._commit_counts = [0] * (len(COMMIT_BUCKETS) + 1)

    def request(self, provider: str, code: str) -> None:
        """One exchange with ``provider`` ended with ``code``."""
        with self._lock:
            key = (provider, code)
            self._requests[key] = self._requests.get(key, 0) + 1
            if code == "429":
                self._rate_limited[provider] = self._rate_limited.get(provider, 0) + 1

    def budget_wait(self, provider: str, bucket: str) -> None:
        """A call of ``provider`` was held back for its ``bucket`` budget."""
        with self._lock:
            key = (provider, bucket)
            self._budget_waits[key] = self._budget_waits.get(key, 0) + 1

    def downloaded(self, provider: str, count: int) -> None:
        """``count`` bytes of a job of ``provider`` reached the disk."""
        with self._lock:
            self._bytes[provider] = self._bytes.get(provider, 0) + count

    def commit(self, seconds: float) -> None:
        """One store transaction took ``seconds``."""
        with self._lock:
            self._commits += 1
            self._commit_sum += seconds
            self._commit_counts[bisect.bisect_left(COMMIT_BUCKETS, seconds)] += 1

    def snapshot(self) -> TelemetrySnapshot:
        """A copy of every figure."""
        with self._lock:
            running = 0
            cumulative: dict[float, int] = {}
            for bound, count in zip(COMMIT_BUCKETS, self._commit_counts, strict=False):
                running += count
                cumulative[bound] = running
            return TelemetrySnapshot(
                requests=dict(self._requests),
                rate_limited=dict(self._rate_limited),
                budget_waits=dict(self._budget_waits),
                bytes_downloaded=dict(self._bytes),
                commits=self._commits,
                commit_seconds_sum=self._commit_sum,
                commit_seconds_buckets=cumulative,
            )
