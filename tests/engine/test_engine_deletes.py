"""Deleting finished jobs: what stays, what is announced, and faults in the middle.

Each test here is a finding of the review of ``Engine.delete_jobs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_helpers import MakeEngine, magnet

from engine import EngineError, JobEvent, JobNotFound, JobStatus, StoreError
from engine.testing import ClockDriver, advance_until
from persistence import JobStore
from providers import FakeClock, Job, MockProvider


def finished(make_engine: MakeEngine, clock: FakeClock, count: int) -> tuple[Any, list[Job]]:
    """An engine with ``count`` COMPLETED jobs (no cleanup owed for them)."""
    engine = make_engine(MockProvider(0.0))
    jobs = engine.create_jobs("mock", [{"url": f"https://h.example/{i}"} for i in range(count)])
    with ClockDriver(clock, step=1.0):
        done = [engine.wait(job.id, timeout=30) for job in jobs]
    assert {job.status for job in done} == {JobStatus.COMPLETED}
    return engine, done


def test_a_job_whose_lookup_is_still_owed_is_kept_until_the_lookup_ran(
    make_engine: MakeEngine, clock: FakeClock, tmp_path: Path
) -> None:
    """Review finding: a deleted row lost the lookup its cleanup owed (the next start
    needs the row's payload to look for the item), and the item stayed on the account."""
    mock = MockProvider(50.0)
    first = make_engine(mock)
    job = first.create_job("mock", magnet(2))
    advance_until(clock, lambda: first.get_job(job.id).remote_id is not None, step=0)
    first.stop()
    with JobStore(tmp_path / "jobs.db") as store:
        store.save(store.get(job.id).evolve(status=JobStatus.CANCELLED, remote_id=None))
        store.replace_pending_cleanups("mock", [], [job.id])
    mock.inject("transient", op="find_existing", count=5)
    second = make_engine(mock)
    advance_until(clock, lambda: mock.calls["find_existing"] >= 1, step=0)

    answer = second.delete_jobs([job.id])
    assert isinstance(answer[job.id], EngineError)
    assert "looked for" in str(answer[job.id])
    assert second.get_job(job.id).status is JobStatus.CANCELLED
    # Once the lookup has run (and deleted what it found), the job can go.
    mock.clear_faults()
    store = second._store
    assert store is not None
    advance_until(clock, lambda: store.pending_cleanups("mock") == ([], []), step=1.0)
    assert second.delete_jobs([job.id]) == {job.id: None}
    with pytest.raises(JobNotFound):
        second.get_job(job.id)

def test_a_delete_is_announced_after_it_is_committed(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine, [job] = finished(make_engine, clock, 1)
    seen: list[JobEvent] = []
    engine.subscribe(seen.append)
    assert engine.delete_jobs([job.id]) == {job.id: None}
    engine.health()  # a round trip: the bus has delivered what came before
    deleted = [e for e in seen if e.kind == "deleted"]
    assert [(e.job_id, e.status) for e in deleted] == [(job.id, JobStatus.COMPLETED)]


def test_an_id_no_job_can_have_does_not_fail_the_others(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    """Review finding: a lone surrogate in one id (a JSON body can carry it) failed the
    whole batch with the store's 'cannot store' error."""
    engine, [job] = finished(make_engine, clock, 1)
    answer = engine.delete_jobs([job.id, "bad\ud800id"])
    assert answer[job.id] is None
    assert isinstance(answer["bad\ud800id"], JobNotFound)


def test_a_store_fault_in_the_delete_fails_it_once_and_deletes_nothing(
    make_engine: MakeEngine, clock: FakeClock, faulty: list[Any]
) -> None:
    engine, jobs = finished(make_engine, clock, 3)
    [store] = faulty
    store.fail_next("delete_finished")
    with pytest.raises(StoreError):
        engine.delete_jobs([j.id for j in jobs])
    assert engine.count_jobs() == 3
    store.fail_next("get")
    with pytest.raises(StoreError):
        engine.delete_jobs([j.id for j in jobs])
    assert engine.count_jobs() == 3
    answer = engine.delete_jobs([j.id for j in jobs])
    assert answer == dict.fromkeys((j.id for j in jobs), None)
    assert engine.count_jobs() == 0

