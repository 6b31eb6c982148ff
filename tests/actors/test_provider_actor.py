"""The provider actor refreshes every tracked job with one call per poll interval."""

from __future__ import annotations

from pathlib import Path

from engine import Engine, EngineConfig, JobStatus
from engine.testing import ClockDriver, advance_until
from providers import FakeClock, MockProvider, ProviderRegistry


def test_one_list_statuses_call_per_poll_whatever_the_number_of_jobs(tmp_path: Path) -> None:
    clock = FakeClock()
    mock = MockProvider(100.0)
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    config = EngineConfig(
        database=tmp_path / "jobs.db",
        registry=registry,
        clock=clock,
        providers={"mock": {"poll_interval": 10.0}},
    )
    with Engine(config) as engine:
        jobs = engine.create_jobs(
            "mock", [{"magnet": f"magnet:?xt=urn:btih:{i:040x}"} for i in range(200)]
        )
        advance_until(clock, lambda: all(engine.get_job(j.id).remote_id for j in jobs), step=0)
        before = mock.calls["list_statuses"]
        start = clock.monotonic()
        advance_until(clock, lambda: mock.calls["list_statuses"] >= before + 5, step=1.0)
        elapsed = clock.monotonic() - start
        # One call per 10 s interval for all 200 jobs, not one per job.
        assert mock.calls["list_statuses"] - before <= elapsed / 10.0 + 1
        assert mock.calls["get_status"] == 0
        with ClockDriver(clock, step=5.0):
            assert engine.wait(jobs[0].id, timeout=30).status is JobStatus.COMPLETED
