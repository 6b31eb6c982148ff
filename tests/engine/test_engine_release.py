"""A completed job's remote item is released to its provider only once the completion is committed.

The supervisor hands each provider one ``Released`` per commit, with every
completion that commit wrote (instead of one ``Release`` per job from the job
actor). Until then the item stays owned by the job's id, so a successor of the
same job (after a supervisor crash lost the uncommitted completion) finds its own
item again instead of submitting a second one.
"""

from __future__ import annotations

from typing import Any

from engine_helpers import MakeEngine, live_job_actors, magnet
from faulty_store import FaultyStore

from actors import ProviderBook
from engine import Engine, JobStatus
from engine.testing import ClockDriver, advance_until, inject_supervisor_crash
from providers import FakeClock, MockProvider


def book_of(engine: Engine, provider: str = "mock") -> ProviderBook:
    supervisor: Any = engine._supervisor.ref._actor_weakref()  # type: ignore[union-attr]
    book: ProviderBook = supervisor.books[provider]
    return book


def finish_without_commit(
    engine: Engine, store: FaultyStore, clock: FakeClock, job_id: str
) -> str:
    """Let ``job_id`` complete in its actor while every write fails; its remote id."""
    store.fail_next("save_batch", 10**6)
    advance_until(clock, lambda: job_id not in live_job_actors(), step=0.5)
    engine.health()  # a round trip through the supervisor and the provider actor
    (remote_id,) = book_of(engine).jobs[job_id]
    return remote_id


def test_the_item_is_released_only_after_the_completion_is_committed(
    make_engine: MakeEngine, faulty: list[FaultyStore], clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(1.0))
    job = engine.create_job("mock", magnet(1))
    remote_id = finish_without_commit(engine, faulty[-1], clock, job.id)
    book = book_of(engine)
    assert engine.get_job(job.id).status is not JobStatus.COMPLETED
    assert book.owners[remote_id] == {job.id}
    assert remote_id not in book.released

    faulty[-1].clear()
    with ClockDriver(clock, step=0.5):
        done = engine.wait(job.id, timeout=30)
    assert done.status is JobStatus.COMPLETED
    engine.health()
    assert remote_id in book.released
    assert remote_id not in book.owners
    assert job.id not in book.jobs


def test_a_completion_lost_with_the_supervisor_is_found_again_not_submitted_again(
    make_engine: MakeEngine, faulty: list[FaultyStore], clock: FakeClock
) -> None:
    mock = MockProvider(1.0)
    engine = make_engine(mock)
    job = engine.create_job("mock", magnet(2))
    remote_id = finish_without_commit(engine, faulty[-1], clock, job.id)

    assert inject_supervisor_crash(engine)  # the uncommitted completion goes with it
    faulty[-1].clear()
    with ClockDriver(clock, step=0.5):
        done = engine.wait(job.id, timeout=30, statuses=[JobStatus.COMPLETED])
    assert done.remote_id == remote_id
    assert sum(mock.submissions().values()) == 1
    assert [item.id for item in mock.remote_items()] == [remote_id]
