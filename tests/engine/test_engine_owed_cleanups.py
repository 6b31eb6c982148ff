"""Owed remote cleanups are recorded as they arise, so a killed process still owes them.

A cancelled job's remote delete that waits for its retry lives in the provider
actor's book; the supervisor records it in ``pending_cleanups`` with the job's
last change, and forgets it when the provider actor reports it done. A process
that dies with ``os._exit`` (no stop, no final write) leaves the record behind,
and the next engine deletes the item.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine_helpers import MakeEngine, cancel_while_its_delete_fails, magnet

from engine import Engine, EngineConfig, JobStatus
from engine.testing import advance_until
from persistence import JobStore
from providers import FakeClock, MockProvider, ProviderRegistry

ROOT = Path(__file__).resolve().parents[2]
CHILD = ROOT / "tests" / "fakes" / "cleanup_kill_child.py"


def test_an_owed_delete_survives_a_killed_process(tmp_path: Path) -> None:
    database = tmp_path / "jobs.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    child = subprocess.run(
        [sys.executable, str(CHILD), str(database)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    word, remote_id = child.stdout.split()
    assert word == "owed"

    config = EngineConfig(database=database)
    mock = MockProvider(2.0, state_file=config.mock_state_file("mock"))
    # The child's delete never ran (read before the engine binds the mock to its clock).
    assert [item.id for item in mock.remote_items() if not item.cancelled] == [remote_id]
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    clock = FakeClock()
    config = EngineConfig(
        database=database,
        registry=registry,
        clock=clock,
        providers={"mock": {"poll_interval": 1.0}},
    )
    with Engine(config) as engine:
        advance_until(clock, lambda: mock.calls["cancel"] >= 1, step=0.5)
        store = engine._store
        assert store is not None
        advance_until(clock, lambda: store.pending_cleanups("mock") == ([], []), step=0.5)
        (job,) = engine.list_jobs()
        assert job.status is JobStatus.CANCELLED
    assert [item.id for item in mock.remote_items() if not item.cancelled] == []


def test_the_record_follows_the_cleanup_from_owed_to_done(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(2.0)
    engine = make_engine(mock)
    job = cancel_while_its_delete_fails(engine, mock, clock, magnet(1))
    store = engine._store
    assert store is not None
    # Recorded in the commit of the cancellation: the job is CANCELLED, the delete owed.
    assert store.pending_cleanups("mock") == ([job.remote_id], [])
    advance_until(clock, lambda: store.pending_cleanups("mock") == ([], []), step=0.5)
    assert mock.calls["cancel"] == 2
    assert [item.id for item in mock.remote_items() if not item.cancelled] == []


def test_a_recorded_lookup_stays_recorded_while_it_is_owed(
    make_engine: MakeEngine, clock: FakeClock, tmp_path: Path
) -> None:
    """Review finding: at start the store's record reached the provider actor before
    the lookups it holds, and the report in between forgot them while still owed: a
    second kill before the lookup ran lost it."""
    mock = MockProvider(50.0)
    first = make_engine(mock)
    job = first.create_job("mock", magnet(2))
    advance_until(clock, lambda: first.get_job(job.id).remote_id is not None, step=0)
    first.stop()
    # What a killed process may leave: the job ended unsure, its lookup owed.
    with JobStore(tmp_path / "jobs.db") as store:
        store.save(store.get(job.id).evolve(status=JobStatus.CANCELLED, remote_id=None))
        store.replace_pending_cleanups("mock", [], [job.id])

    mock.inject("transient", op="find_existing")  # the lookup then waits 5 s for its retry
    second = make_engine(mock)
    advance_until(clock, lambda: mock.calls["find_existing"] >= 1, step=0)
    second.health()  # round trips: a report of the provider actor has reached the supervisor
    second.health()  # ... and the flush it asked for has run
    store = second._store
    assert store is not None
    supervisor: Any = second._supervisor.ref._actor_weakref()  # type: ignore[union-attr]
    assert job.id in supervisor.books["mock"].lookups  # still owed ...
    assert store.pending_cleanups("mock") == ([], [job.id])  # ... so still recorded
