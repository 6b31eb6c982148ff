"""``GET /metrics``: Prometheus text, read from the engine at scrape time.

One ``CollectorRegistry`` per app (never the process-global one, so two apps
in one process, tests included, do not collide) with one collector that asks
the engine for its job counts, telemetry and health when scraped. The scrape
blocks on the engine: the route runs it on a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from providers import EngineError
from providers._log import get_logger

__all__ = ["EngineCollector", "make_registry", "scrape"]

log = get_logger("debrid.server")


class EngineCollector(Collector):
    """Every ``debrid_*`` metric, from ``engine`` at each scrape."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """The metric families of this moment (what the engine cannot answer is left out)."""
        yield from self._jobs()
        yield from self._telemetry()
        yield from self._health()

    def _jobs(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "debrid_jobs", "Jobs in the store by provider and status",
            labels=["provider", "status"],
        )
        try:
            counts = self.engine.job_counts()
        except EngineError as error:
            log.warning("metrics_job_counts_failed", error_type=type(error).__name__)
            counts = {}
        for (provider, status), count in sorted(counts.items()):
            jobs.add_metric([provider, status], count)
        yield jobs

    def _telemetry(self) -> Iterator[Metric]:
        snapshot = self.engine.telemetry()
        yield _counter("debrid_provider_requests", "Provider HTTP exchanges by answer",
                       ["provider", "code"], snapshot.requests)
        yield _counter("debrid_provider_rate_limited",
                       "Provider answers that were a rate limit (429)", ["provider"],
                       {(p,): n for p, n in snapshot.rate_limited.items()})
        yield _counter("debrid_budget_waits", "Provider calls held back for a request budget",
                       ["provider", "bucket"], snapshot.budget_waits)
        yield _counter("debrid_bytes_downloaded", "Bytes written by local downloads",
                       ["provider"], {(p,): n for p, n in snapshot.bytes_downloaded.items()})
        buckets = [
            (_bound(bound), count)
            for bound, count in sorted(snapshot.commit_seconds_buckets.items())
        ]
        buckets.append(("+Inf", snapshot.commits))
        yield HistogramMetricFamily(
            "debrid_commit_seconds", "Seconds per job store transaction",
            buckets=buckets, sum_value=snapshot.commit_seconds_sum,
        )

    def _health(self) -> Iterator[Metric]:
        report = self.engine.health()
        up = GaugeMetricFamily(
            "debrid_provider_up",
            "1 while the provider's actor runs; state says how its account is",
            labels=["provider", "state"],
        )
        for name, provider in sorted(report.providers.items()):
            up.add_metric([name, provider.state], 1 if provider.alive else 0)
        yield up
        ready = GaugeMetricFamily("debrid_ready", "1 when the engine is ready to run jobs")
        ready.add_metric([], 1 if report.ready else 0)
        yield ready


def _bound(value: float) -> str:
    return repr(float(value))


def make_registry(engine: Any) -> CollectorRegistry:
    """A registry of its own holding an ``EngineCollector`` of ``engine``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    return registry


def scrape(registry: CollectorRegistry) -> bytes:
    """The Prometheus text of ``registry`` (blocks on the engine)."""
    return generate_latest(registry)


def _counter(
    name: str, text: str, labels: list[str], counts: Mapping[tuple[str, ...], int]
) -> CounterMetricFamily:
    """A counter family with one sample per label tuple, in a stable order."""
    family = CounterMetricFamily(name, text, labels=labels)
    for values, count in sorted(counts.items()):
        family.add_metric(list(values), count)
    return family
