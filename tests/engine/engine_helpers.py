"""Shared bits of the engine tests (importable, unlike conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import Engine, EngineConfig, Job, JobStatus
from engine.testing import ClockDriver, advance_until
from providers import FakeClock, ProviderRegistry, RetryPolicy

MakeEngine = Callable[..., Engine]


def magnet(i: int) -> dict[str, str]:
    """A valid magnet payload, unique per ``i``."""
    return {"magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}"}


def crash_after_submit(base: type[Any], times: int) -> type[Any]:
    """A subclass of provider ``base`` whose first ``times`` submissions crash right
    after the remote job was made, before the engine hears of it (``.crashes`` counts)."""

    class CrashAfterSubmit(base):  # type: ignore[misc, valid-type]
        crashes = 0

        def start_job(self, payload: Any) -> Any:
            response = super().start_job(payload)
            if CrashAfterSubmit.crashes < times:
                CrashAfterSubmit.crashes += 1
                raise RuntimeError("crash between the submission and its answer")
            return response

    return CrashAfterSubmit


def stored_bytes(directory: Path) -> bytes:
    """Everything the SQLite store wrote under ``directory`` (database, WAL, shared memory)."""
    return b"".join(path.read_bytes() for path in directory.glob("jobs.db*"))


def restart_in_phase(
    new_engine: Callable[[], Engine],
    provider: str,
    payloads: list[dict[str, Any]],
    *,
    phase: JobStatus,
    clock: FakeClock,
    remote_made: Callable[[], bool],
    step: float,
) -> list[Job]:
    """Stop a first engine once its first job reaches ``phase`` (QUEUED: once the
    first remote item exists), then finish every job with a second engine on the
    same database (``new_engine`` makes each); returns the jobs as they ended."""
    first = new_engine().start()
    try:
        jobs = first.create_jobs(provider, payloads)
        if phase is JobStatus.QUEUED:
            advance_until(clock, remote_made, step=0.2)
        else:
            with ClockDriver(clock, step=0.5):
                first.wait(jobs[0].id, timeout=60, statuses=[phase])
    finally:
        first.stop()
    with new_engine() as second, ClockDriver(clock, step=step):
        return [second.wait(j.id, timeout=120) for j in jobs]


def finish_with_crashing_submissions(
    provider_class: type[Any],
    provider: str,
    options: dict[str, Any],
    payloads: list[dict[str, Any]],
    *,
    clock: FakeClock,
    database: Path,
    retry: RetryPolicy,
    step: float,
) -> tuple[type[Any], list[Job]]:
    """Run ``payloads`` to their end on a provider whose first two submissions crash
    after the remote item was made (``crash_after_submit``); returns that provider
    class (``.crashes``) and the jobs as they ended."""
    registry = ProviderRegistry()
    crashing = crash_after_submit(provider_class, times=2)
    registry.register_provider(provider, crashing)
    config = EngineConfig(
        database=database,
        clock=clock,
        registry=registry,
        retry=retry,
        providers={provider: {**options, "poll_interval": 5.0}},
    )
    with Engine(config) as engine:
        jobs = engine.create_jobs(provider, payloads)
        with ClockDriver(clock, step=step):
            return crashing, [engine.wait(j.id, timeout=120) for j in jobs]
