"""Cancel, retry, sync, clear and input validation through the Engine facade."""

from __future__ import annotations

import pykka
import pytest
from engine_helpers import MakeEngine, magnet

from actors import JobActor
from engine import InvalidTransition, JobNotFound, JobStatus, UnknownProvider, ValidationError
from engine.testing import ClockDriver, advance_until
from providers import FakeClock, MockProvider


@pytest.mark.parametrize("state", [JobStatus.QUEUED, JobStatus.RESOLVING, JobStatus.DOWNLOADING])
def test_cancel_in_each_non_terminal_state_deletes_the_remote_job(
    make_engine: MakeEngine, clock: FakeClock, state: JobStatus
) -> None:
    mock = MockProvider(10.0)
    engine = make_engine(mock)
    job = engine.create_job("mock", magnet(1))
    if state is JobStatus.QUEUED:
        advance_until(clock, lambda: engine.get_job(job.id).remote_id is not None, step=0)
    else:
        with ClockDriver(clock, step=0.5):
            engine.wait(job.id, timeout=30, statuses=[state])
    cancelled = engine.cancel_job(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert engine.get_job(job.id).status is JobStatus.CANCELLED
    advance_until(clock, lambda: mock.calls["cancel"] == 1, step=0)
    assert mock.list_statuses([cancelled.remote_id or ""]) == {}
    store = engine._store
    assert store is not None
    assert store.transitions(job.id)[-1].to_status is JobStatus.CANCELLED


def test_cancel_of_a_job_waiting_for_a_slot_needs_no_provider_call(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(100.0, max_active=1)
    engine = make_engine(mock)
    first = engine.create_job("mock", magnet(1))
    second = engine.create_job("mock", magnet(2))
    advance_until(clock, lambda: engine.get_job(first.id).remote_id is not None, step=0)
    assert engine.cancel_job(second.id).status is JobStatus.CANCELLED
    assert mock.calls["start_job"] == 1
    assert mock.calls["cancel"] == 0


def test_cancel_of_a_completed_job_is_an_invalid_transition(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(0.0))
    job = engine.wait(engine.create_job("mock", magnet(1)).id, timeout=30)
    with pytest.raises(InvalidTransition, match="COMPLETED -> CANCELLED"):
        engine.cancel_job(job.id)
    with pytest.raises(InvalidTransition):
        engine.retry_job(job.id)


def test_retry_of_a_failed_job_starts_attempt_two_and_completes(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1.0)
    mock.inject("remote_fail", at=JobStatus.RESOLVING, code="DEAD_TORRENT")
    engine = make_engine(mock)
    job = engine.create_job("mock", magnet(3))
    with ClockDriver(clock, step=0.5):
        failed = engine.wait(job.id, timeout=30)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "DEAD_TORRENT"
    again = engine.retry_job(job.id)
    assert again.status is JobStatus.QUEUED and again.attempt == 2 and again.error is None
    with ClockDriver(clock, step=0.5):
        done = engine.wait(job.id, timeout=30)
    assert done.status is JobStatus.COMPLETED and done.attempt == 2
    store = engine._store
    assert store is not None
    second = [t.to_status for t in store.transitions(job.id) if t.attempt == 2]
    assert second == [
        JobStatus.QUEUED,
        JobStatus.RESOLVING,
        JobStatus.DOWNLOADING,
        JobStatus.COMPLETED,
    ]


def test_sync_job_status_asks_the_provider_without_waiting_for_a_poll(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(10.0)
    engine = make_engine(mock, poll_interval=10_000)
    job = engine.create_job("mock", magnet(4))
    advance_until(clock, lambda: engine.get_job(job.id).remote_id is not None, step=0)
    clock.advance(25)  # the remote job is DOWNLOADING now; no poll is due for hours
    synced = engine.sync_job_status(job.id)
    assert synced.status is JobStatus.DOWNLOADING
    assert 0 < synced.progress < 100
    assert engine.get_job(job.id).status is JobStatus.DOWNLOADING
    assert mock.calls["get_status"] == 1


def test_clear_completed_removes_only_completed_jobs(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(0.0))
    done = [engine.wait(engine.create_job("mock", magnet(i)).id, timeout=30) for i in range(3)]
    assert all(j.status is JobStatus.COMPLETED for j in done)
    assert engine.clear_completed() == 3
    assert engine.list_jobs() == []
    with pytest.raises(JobNotFound):
        engine.get_job(done[0].id)


def test_bad_payload_is_rejected_before_anything_is_written(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(0.0))
    with pytest.raises(ValidationError) as info:
        engine.create_job("mock", {"magnet": "magnet:?xt=urn:btih:nothex"})
    assert info.value.field == "magnet"
    with pytest.raises(ValidationError):
        engine.create_job(
            "mock", {"url": "https://a/b", "magnet": "magnet:?xt=urn:btih:" + "a" * 40}
        )
    with pytest.raises(UnknownProvider, match="nope"):
        engine.create_job("nope", {"url": "https://example.com/x"})
    assert engine.list_jobs() == []


def test_list_and_active_jobs_filter_by_status_and_provider(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(100.0))
    jobs = [engine.create_job("mock", magnet(i)) for i in range(5)]
    engine.cancel_job(jobs[0].id)
    assert {j.id for j in engine.get_active_jobs()} == {j.id for j in jobs[1:]}
    assert [j.id for j in engine.list_jobs(status=JobStatus.CANCELLED)] == [jobs[0].id]
    assert len(engine.list_jobs(provider="mock", limit=2, offset=1)) == 2
    assert engine.list_jobs(provider="other") == []


def test_missing_job_raises_job_not_found(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(0.0))
    for call in (engine.get_job, engine.cancel_job, engine.retry_job, engine.sync_job_status):
        with pytest.raises(JobNotFound):
            call("no-such-job")


def test_test_connection_reports_the_mock_account(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(0.0))
    result = engine.test_connection("mock")
    assert result.ok and result.account == "mock-user"
    with pytest.raises(UnknownProvider):
        engine.test_connection("realdebrid-not-configured")


def test_sync_job_status_raises_the_providers_error_instead_of_hanging(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    from engine import ProviderError  # noqa: PLC0415

    mock = MockProvider(10.0)
    engine = make_engine(mock, poll_interval=10_000)
    job = engine.create_job("mock", magnet(5))
    advance_until(clock, lambda: engine.get_job(job.id).remote_id is not None, step=0)
    mock.inject("transient", op="get_status", code="DOWN_FOR_A_BIT")
    with pytest.raises(ProviderError, match="DOWN_FOR_A_BIT"):
        engine.sync_job_status(job.id, timeout=30)
    assert engine.sync_job_status(job.id).status is JobStatus.QUEUED


def test_cancel_right_after_a_bulk_create_never_leaves_a_remote_job_behind(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(100.0)
    engine = make_engine(mock)
    jobs = engine.create_jobs("mock", [magnet(i) for i in range(600)])
    for job in jobs[-50:]:
        assert engine.cancel_job(job.id).status is JobStatus.CANCELLED

    def live_remote_jobs() -> int:
        return sum(1 for item in mock.remote_items() if not item.cancelled)

    def cancelled_actors_alive() -> int:
        cancelled = {j.id for j in jobs[-50:]}
        refs = pykka.ActorRegistry.get_by_class(JobActor)
        return sum(
            1
            for ref in refs
            if getattr(ref._actor_weakref(), "job", None)
            and ref._actor_weakref().job.id in cancelled
        )

    advance_until(clock, lambda: all(engine.get_job(j.id).remote_id for j in jobs[:550]), step=0)
    # A cancelled job whose submission was on its way lives until the answer comes,
    # then deletes what it made.
    advance_until(clock, lambda: cancelled_actors_alive() == 0, step=0)
    assert live_remote_jobs() == 550
    assert all(engine.get_job(j.id).status is JobStatus.CANCELLED for j in jobs[-50:])
    assert set(mock.submissions().values()) == {1}
