"""A SIGKILL on the embedded defaults: a new engine on the same database finishes every job once.

Nothing is injected: ``EngineConfig(database=...)`` as an embedder would write it,
so the mock keeps its remote side in the default state file beside the database,
steps every 2 s of the real clock, and is polled at the default interval.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from engine_helpers import kill_when_ready

from engine import Engine, EngineConfig, JobStatus
from providers import MockProvider

ROOT = Path(__file__).resolve().parents[2]
CHILD = ROOT / "tests" / "fakes" / "kill_child.py"
JOBS = 100


def submissions(state_file: Path) -> Counter[str]:
    """Remote items per source in the mock's state file (read by a mock of its own)."""
    mock = MockProvider(state_file=state_file)
    try:
        return mock.submissions()
    finally:
        mock.close()


@pytest.mark.slow
def test_sigkill_on_the_defaults_then_a_new_engine_completes_every_job_once(
    tmp_path: Path,
) -> None:
    database = tmp_path / "jobs.db"
    line, returncode = kill_when_ready([str(CHILD), str(database), str(JOBS)],
                                       tmp_path / "child.stderr")
    assert line.startswith(f"ready {JOBS} "), (line, (tmp_path / "child.stderr").read_text())
    assert returncode == -signal.SIGKILL

    config = EngineConfig(database=database)
    state_file = config.mock_state_file("mock")
    assert state_file is not None and state_file.parent == tmp_path
    made_before = submissions(state_file)
    assert made_before and set(made_before.values()) == {1}

    with Engine(config) as engine:
        jobs = engine.list_jobs(limit=None)
        assert len(jobs) == JOBS
        done = [engine.wait(job.id, timeout=60) for job in jobs]
    assert all(job.status is JobStatus.COMPLETED for job in done), [
        (job.status, job.error) for job in done if job.status is not JobStatus.COMPLETED
    ]
    made = submissions(state_file)
    assert len(made) == JOBS
    assert set(made.values()) == {1}, {key: n for key, n in made.items() if n != 1}
    # What the child had made was found again, not made anew.
    assert all(made[key] == 1 for key in made_before)
