"""Restarts: a stopped or killed engine comes back and finishes every job, once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import MakeEngine, magnet

from engine import Engine, EngineConfig, JobStatus
from engine.testing import ClockDriver, advance_until
from providers import FakeClock, MockProvider, ProviderRegistry

CHILD = Path(__file__).parent.parent / "fakes" / "crash_child.py"


def test_stop_mid_flight_and_a_new_engine_finishes_every_job_once(
    make_engine: MakeEngine, clock: FakeClock, tmp_path: Path
) -> None:
    mock = MockProvider(5.0)
    first = make_engine(mock)
    jobs = [first.create_job("mock", magnet(i)) for i in range(30)]
    advance_until(
        clock,
        lambda: (
            sum(1 for j in first.list_jobs(limit=None) if j.status is JobStatus.RESOLVING) >= 10
        ),
        step=0.5,
    )
    first.stop()
    second = make_engine(mock)
    with ClockDriver(clock, step=0.5):
        done = [second.wait(j.id, timeout=60) for j in jobs]
    assert all(j.status is JobStatus.COMPLETED for j in done)
    assert len(mock.submissions()) == 30
    assert set(mock.submissions().values()) == {1}


@pytest.mark.parametrize("point", ["after_create", "in_submit", "at_resolving", "at_downloading"])
def test_killed_process_is_recovered_without_duplicate_submissions(
    tmp_path: Path, point: str
) -> None:
    database, state = tmp_path / "jobs.db", tmp_path / "remote.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), *sys.path])}
    child = subprocess.run(
        [sys.executable, str(CHILD), str(database), str(state), point, "12"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 1, child.stderr.decode()[-2000:]

    clock = FakeClock(start_wall=1_800_000_000.0)
    mock = MockProvider(1.0, state_file=state)
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    with Engine(
        EngineConfig(
            database=database,
            registry=registry,
            clock=clock,
            providers={"mock": {"poll_interval": 0.5}},
        )
    ) as engine:
        jobs = engine.list_jobs(limit=None)
        assert len(jobs) == 12
        with ClockDriver(clock, step=0.25):
            done = [engine.wait(j.id, timeout=60) for j in jobs]
    assert all(j.status is JobStatus.COMPLETED for j in done)
    submitted = mock.submissions()
    assert len(submitted) == 12
    assert set(submitted.values()) == {1}, submitted
