"""Provider slots: jobs beyond ``max_active`` wait QUEUED in the store, without an actor."""

from __future__ import annotations

from engine_helpers import MakeEngine, magnet

from engine import JobStatus
from engine.testing import ClockDriver
from providers import FakeClock, MockProvider


def _job_actors(engine: object) -> int:
    supervisor = engine._supervisor.ref._actor_weakref()  # type: ignore[attr-defined]
    return len(supervisor.actors)


def test_max_active_two_with_fifty_jobs_never_runs_more_than_two(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1.0, max_active=2)
    engine = make_engine(mock)
    peak_actors = 0

    def watch(_event: object) -> None:
        nonlocal peak_actors
        peak_actors = max(peak_actors, _job_actors(engine))

    engine.subscribe(watch)
    jobs = [engine.create_job("mock", magnet(i)) for i in range(50)]
    assert _job_actors(engine) <= 2
    with ClockDriver(clock, step=0.25):
        done = [engine.wait(j.id, timeout=60) for j in jobs]
    assert all(j.status is JobStatus.COMPLETED for j in done)
    assert mock.peak_active <= 2
    assert mock.refused_active == 0
    assert peak_actors <= 2
    assert set(mock.submissions().values()) == {1}


def test_a_refused_submission_goes_back_to_queued_and_is_offered_again_later(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1.0)
    # The account is full for reasons the engine cannot see (another client).
    mock.inject("fatal", op="start_job", code="ACTIVE_LIMIT", count=1)
    engine = make_engine(mock, slot_retry_delay=60.0)
    job = engine.create_job("mock", magnet(1))
    with ClockDriver(clock, step=1.0):
        done = engine.wait(job.id, timeout=30)
    assert done.status is JobStatus.COMPLETED
    store = engine._store
    assert store is not None
    assert JobStatus.FAILED not in [t.to_status for t in store.transitions(job.id)]
    assert mock.calls["start_job"] == 2


def test_job_actor_cap_keeps_the_rest_queued_in_the_store(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(1.0), max_job_actors=5)
    jobs = [engine.create_job("mock", magnet(i)) for i in range(40)]
    assert _job_actors(engine) <= 5
    with ClockDriver(clock, step=0.25):
        done = [engine.wait(j.id, timeout=60) for j in jobs]
    assert all(j.status is JobStatus.COMPLETED for j in done)
