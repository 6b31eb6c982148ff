"""A SIGKILL on the embedded defaults: a new engine on the same database finishes every job once.

Nothing is injected: ``EngineConfig(database=...)`` as an embedder would write it,
so the mock keeps its remote side in the default state file beside the database,
steps every 2 s of the real clock, and is polled at the default interval.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import IO

import pytest

from engine import Engine, EngineConfig, JobStatus
from providers import MockProvider

ROOT = Path(__file__).resolve().parents[2]
CHILD = ROOT / "tests" / "fakes" / "kill_child.py"
JOBS = 100


def first_line(stream: IO[str], timeout: float) -> str:
    """The first line ``stream`` gives within ``timeout`` seconds ('' at EOF)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return "(no line within the timeout)"


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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    with (tmp_path / "child.stderr").open("w") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(database), str(JOBS)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert child.stdout is not None
            line = first_line(child.stdout, timeout=60)
            # Ready or not (a child that is not has failed: its stderr says why).
            os.kill(child.pid, signal.SIGKILL)
            returncode = child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
            if child.stdout is not None:
                child.stdout.close()
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
