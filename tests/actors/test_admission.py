"""Admission: the order of the line, slots and caps, and a backlog read a page at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import Admission
from persistence import JobStore
from providers import FakeClock, Job, JobStatus, StartJobPayload


def job(n: int, *, priority: int = 0, remote: bool = False, provider: str = "mock") -> Job:
    return Job(
        id=f"job-{n:06d}",
        provider=provider,
        status=JobStatus.QUEUED,
        payload=StartJobPayload(url=f"https://example.com/{n}", priority=priority),
        remote_id=f"r{n}" if remote else None,
        created_at=1_000 + n,
        updated_at=1_000 + n,
    )


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    with JobStore(tmp_path / "jobs.db") as opened:
        yield opened


def drain(admission: Admission, provider: str = "mock") -> list[str]:
    order = []
    while True:
        admission.refill(provider)
        head = admission.head(provider)
        if head is None:
            return order
        admission.pop(provider)
        order.append(head[0])


def test_jobs_holding_a_slot_come_first_then_priority_then_age(store: JobStore) -> None:
    admission = Admission(store, ["mock"], FakeClock(), max_job_actors=None)
    for item in (job(1), job(2, priority=5), job(3, remote=True), job(4)):
        admission.enqueue(item)
    assert drain(admission) == ["job-000003", "job-000002", "job-000001", "job-000004"]


def test_a_backlog_is_read_a_page_at_a_time_in_resume_order(store: JobStore) -> None:
    jobs = [job(n, priority=n % 3, remote=n % 10 == 0) for n in range(1, 1001)]
    store.save_batch([(j, ()) for j in jobs])
    admission = Admission(store, ["mock"], FakeClock(), max_job_actors=None, page_size=50)
    admission.open_backlog("mock")
    admission.refill("mock")
    # One page in memory, not the thousand.
    assert admission.waiting_count("mock") == 50
    order = drain(admission)
    expected = sorted(
        jobs, key=lambda j: (j.remote_id is None, -j.payload.priority, j.created_at, j.id)
    )
    assert order == [j.id for j in expected]
    assert not admission.backlog_open("mock")


def test_a_job_queued_while_a_backlog_is_open_is_neither_lost_nor_doubled(store: JobStore) -> None:
    old = [job(n) for n in range(1, 101)]
    store.save_batch([(j, ()) for j in old])
    admission = Admission(store, ["mock"], FakeClock(), max_job_actors=None, page_size=10)
    admission.open_backlog("mock")
    admission.refill("mock")
    urgent, late = job(500, priority=9), job(501)
    store.save_batch([(urgent, ()), (late, ())])
    admission.enqueue(urgent)  # sorts before what was read: into memory
    admission.enqueue(late)  # sorts after: the store brings it
    order = drain(admission)
    assert order[0] == urgent.id
    assert order.count(late.id) == 1 and order[-1] == late.id
    assert len(order) == len(set(order)) == 102


def test_slots_pauses_and_the_global_cap(store: JobStore) -> None:
    clock = FakeClock()
    admission = Admission(store, ["mock", "other"], clock, max_job_actors=3)
    admission.slot_limits["mock"] = 2
    admission.take_slot("a", "mock")
    assert admission.has_room("mock")
    admission.take_slot("b", "mock")
    assert not admission.has_room("mock")
    assert admission.has_room("mock", holds_slot=True)  # adds nothing to the account's load
    admission.take_slot("c", "other")
    assert not admission.has_room("other")  # the global cap of 3
    admission.release("a", "mock")
    admission.release("a", "mock")  # twice: counted once
    assert admission.holders == 2
    admission.paused["mock"] = clock.monotonic() + 10
    assert not admission.has_room("mock")
    clock.advance(11)
    assert admission.has_room("mock")


def test_a_discarded_or_admitted_entry_is_skipped(store: JobStore) -> None:
    admission = Admission(store, ["mock"], FakeClock(), max_job_actors=None)
    first, second = job(1), job(2)
    admission.enqueue(first)
    admission.enqueue(first)  # twice: one entry
    admission.enqueue(second)
    admission.discard(first.id)
    assert drain(admission) == [second.id]


def test_idle_is_true_only_when_neither_memory_nor_the_store_can_hold_a_waiting_job(
    store: JobStore,
) -> None:
    """``idle`` is the supervisor's shortcut past admission: it must never say "nobody
    waits" while a backlog page or an entry (even a stale one) is left."""
    store.save_batch([(job(n), ()) for n in range(1, 8)])
    admission = Admission(store, ["mock", "other"], FakeClock(), max_job_actors=None, page_size=3)
    assert admission.idle("mock") and admission.idle("unknown")
    admission.open_backlog("mock")
    assert not admission.idle("mock")  # nothing in memory yet, but the store has jobs
    assert admission.idle("other")  # one provider's backlog is not another's
    seen = drain(admission)
    assert len(seen) == 7
    assert admission.idle("mock")  # the last page was short: the backlog is closed
    assert not admission.backlog_open("mock")
    admission.enqueue(job(9))
    assert not admission.idle("mock")
    admission.discard("job-000009")  # stale: still an entry until head() skips it
    assert not admission.idle("mock")
    assert admission.head("mock") is None
    assert admission.idle("mock")


def test_take_if_free_admits_only_past_an_empty_line_and_within_the_slots(store: JobStore) -> None:
    admission = Admission(store, ["mock"], FakeClock(), max_job_actors=None)
    admission.slot_limits["mock"] = 1
    admission.enqueue(job(1))
    assert not admission.take_if_free("job-000002", "mock")  # job 1 is in line first
    assert admission.in_use("mock") == 0
    drain(admission)
    assert admission.take_if_free("job-000002", "mock")
    assert admission.holds("job-000002", "mock")
    assert not admission.take_if_free("job-000003", "mock")  # the one slot is taken
    admission.release("job-000002", "mock")
    assert admission.take_if_free("job-000003", "mock")
