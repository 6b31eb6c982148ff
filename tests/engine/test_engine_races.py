"""Races and awkward timings found in review: each one once lost a job or an answer."""

from __future__ import annotations

import pykka
import pytest
from engine_helpers import MakeEngine, magnet

from actors import JobActor
from actors._messages import StatusUpdate
from engine import InvalidTransition, JobStatus, UnknownProvider
from engine.testing import ClockDriver, advance_until
from providers import FakeClock, JobStatusResponse, MockProvider


def _job_actors(job_id: str) -> int:
    return sum(
        1
        for ref in pykka.ActorRegistry.get_by_class(JobActor)
        if getattr(ref._actor_weakref(), "job", None) is not None
        and ref._actor_weakref().job.id == job_id
    )


def test_cancel_then_retry_of_a_waiting_job_never_gives_it_two_actors(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(10.0, max_active=2)
    engine = make_engine(mock)
    first, second = engine.create_job("mock", magnet(1)), engine.create_job("mock", magnet(2))
    waiting = engine.create_job("mock", magnet(3))
    engine.cancel_job(waiting.id)
    engine.retry_job(waiting.id)
    peak = 0

    def watch(_event: object) -> None:
        nonlocal peak
        peak = max(peak, _job_actors(waiting.id))

    engine.subscribe(watch)
    with ClockDriver(clock, step=0.25):
        for job in (first, second, waiting):
            assert engine.wait(job.id, timeout=30).status is JobStatus.COMPLETED
    assert peak <= 1
    assert mock.peak_active <= 2
    store = engine._store
    assert store is not None
    steps = [(t.attempt, t.to_status) for t in store.transitions(waiting.id)]
    assert steps[-1] == (2, JobStatus.COMPLETED)
    assert steps.count((2, JobStatus.COMPLETED)) == 1


def test_cancel_that_races_a_completion_is_answered_and_agrees_with_the_store(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(1000.0))
    supervisor = engine._supervisor.ref._actor_weakref()  # type: ignore[union-attr]
    for i in range(5):
        job = engine.create_job("mock", magnet(i))
        advance_until(clock, lambda j=job: engine.get_job(j.id).remote_id is not None, step=0)  # type: ignore[misc]
        # The provider reports the job ended (a poll) just as the user cancels.
        remote = engine.get_job(job.id).remote_id or ""
        ended = JobStatusResponse(remote, JobStatus.FAILED, error_code="DEAD")
        supervisor.actors[job.id].tell(StatusUpdate(ended))
        try:
            answer = engine.cancel_job(job.id, timeout=10).status
        except InvalidTransition:
            answer = JobStatus.FAILED
        stored = engine.get_job(job.id).status
        assert stored is answer
        transitions = [t.to_status for t in engine._store.transitions(job.id)]  # type: ignore[union-attr]
        assert sum(1 for t in transitions if t.terminal) == 1


def test_a_remote_job_deleted_elsewhere_fails_as_remote_gone_and_frees_its_slot(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1000.0, max_active=1)
    engine = make_engine(mock, poll_interval=5.0)
    gone = engine.create_job("mock", magnet(1))
    after = engine.create_job("mock", magnet(2))
    advance_until(clock, lambda: engine.get_job(gone.id).remote_id is not None, step=0)
    mock.cancel(engine.get_job(gone.id).remote_id or "")  # the user deletes it on the website
    with ClockDriver(clock, step=1.0):
        failed = engine.wait(gone.id, timeout=30)
        assert failed.error is not None and failed.error.code == "REMOTE_GONE"
        engine.wait(after.id, timeout=60, statuses=[JobStatus.RESOLVING])


def test_a_provider_error_text_the_database_cannot_hold_does_not_wedge_the_engine(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1.0)
    mock.inject("fatal", op="start_job", code="BAD\udc80\x00")
    engine = make_engine(mock)
    bad = engine.create_job("mock", magnet(1))
    failed = engine.wait(bad.id, timeout=30)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code.startswith("BAD")
    with ClockDriver(clock, step=0.5):
        good = engine.create_job("mock", magnet(2))
        assert engine.wait(good.id, timeout=30).status is JobStatus.COMPLETED


def test_retry_with_an_unknown_provider_does_not_kill_the_supervisor(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(0.0))
    job = engine.wait(engine.create_job("mock", magnet(1)).id, timeout=30)
    store = engine._store
    assert store is not None
    # A failed job of a provider this engine does not have (left by another setup).
    orphan = job.evolve(id="orphan", provider="gone", status=JobStatus.FAILED)
    store.save(orphan)
    with pytest.raises(UnknownProvider):
        engine.retry_job(orphan.id)
    again = engine.create_job("mock", magnet(2))
    assert engine.wait(again.id, timeout=30).status is JobStatus.COMPLETED
