"""Provider faults, rate limits, crashes and stalls, through the whole engine."""

from __future__ import annotations

import threading

from engine_helpers import MakeEngine, magnet

from engine import JobStatus
from engine.testing import ClockDriver, advance_until, inject_job_crash
from providers import FakeClock, MockProvider, RetryPolicy

FAST_RETRY = RetryPolicy(max_retries=5, initial_delay=1.0, backoff_multiplier=2.0, max_delay=8.0)


def test_transient_errors_are_retried_with_backoff_then_succeed_without_duplicates(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1.0)
    mock.inject("transient", op="start_job", count=3)
    engine = make_engine(mock, retry=FAST_RETRY, seed=1)
    job = engine.create_job("mock", magnet(1))
    with ClockDriver(clock, step=0.25):
        done = engine.wait(job.id, timeout=30)
    assert done.status is JobStatus.COMPLETED
    assert mock.calls["start_job"] == 4
    # Each retry first looked for the job, since a failed submission may have landed.
    assert mock.calls["find_existing"] == 3
    assert mock.submissions()[done.payload.source_key] == 1


def test_retry_after_delays_the_retry_at_least_that_long(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1.0)
    mock.inject("transient", op="start_job", retry_after=40.0)
    engine = make_engine(mock, retry=FAST_RETRY)
    job = engine.create_job("mock", magnet(2))
    advance_until(clock, lambda: mock.calls["start_job"] == 1, step=0)
    t0 = clock.monotonic()
    advance_until(clock, lambda: mock.calls["find_existing"] == 1, step=1.0)
    assert clock.monotonic() - t0 >= 40.0
    with ClockDriver(clock, step=0.25):
        assert engine.wait(job.id, timeout=30).status is JobStatus.COMPLETED


def test_non_retryable_error_fails_the_job_with_its_code(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1.0)
    # (A refusal of the whole account, BAD_TOKEN say, holds the job instead:
    # test_engine_account.py.)
    mock.inject("fatal", op="start_job", code="INVALID_TORRENT")
    engine = make_engine(mock, retry=FAST_RETRY)
    job = engine.create_job("mock", magnet(3))
    failed = engine.wait(job.id, timeout=30)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "INVALID_TORRENT"
    assert mock.calls["start_job"] == 1


def test_retries_give_up_after_the_policy_limit(make_engine: MakeEngine, clock: FakeClock) -> None:
    mock = MockProvider(1.0)
    mock.inject("transient", op="start_job", count=100, code="DOWN")
    engine = make_engine(mock, retry=RetryPolicy(max_retries=2, initial_delay=1.0, max_delay=2.0))
    job = engine.create_job("mock", magnet(4))
    with ClockDriver(clock, step=0.25):
        failed = engine.wait(job.id, timeout=30)
    assert failed.error is not None and failed.error.code == "DOWN"
    assert mock.calls["start_job"] == 3


def test_a_429_pauses_every_job_of_the_provider(make_engine: MakeEngine, clock: FakeClock) -> None:
    mock = MockProvider(0.0, requests_per_second=100.0, burst=100)
    mock.inject("rate_limit", op="start_job", retry_after=30.0)
    engine = make_engine(mock, retry=FAST_RETRY)
    first = engine.create_job("mock", magnet(5))
    advance_until(
        clock, lambda: engine.get_job(first.id).submitted and mock.calls["start_job"] == 1, step=0
    )
    paused_at = clock.monotonic()
    # Other jobs of the same provider now wait for the bucket, whatever their own state.
    others = [engine.create_job("mock", magnet(10 + i)) for i in range(3)]
    clock.advance(29.0)
    gate = threading.Event()
    gate.wait(0.2)
    assert mock.calls["start_job"] == 1
    assert all(engine.get_job(j.id).status is JobStatus.QUEUED for j in others)
    with ClockDriver(clock, step=0.5):
        for job in [first, *others]:
            assert engine.wait(job.id, timeout=30).status is JobStatus.COMPLETED
    assert clock.monotonic() - paused_at >= 30.0


def test_job_actor_crash_restarts_the_job_from_its_stored_state(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(10.0)
    engine = make_engine(mock)
    job = engine.create_job("mock", magnet(6))
    other = engine.create_job("mock", magnet(7))
    with ClockDriver(clock, step=0.5):
        engine.wait(job.id, timeout=30, statuses=[JobStatus.RESOLVING])
    assert inject_job_crash(engine, job.id)
    with ClockDriver(clock, step=0.5):
        done = engine.wait(job.id, timeout=30)
        assert engine.wait(other.id, timeout=30).status is JobStatus.COMPLETED
    assert done.status is JobStatus.COMPLETED
    assert set(mock.submissions().values()) == {1}


def test_job_crashing_past_the_restart_limit_fails_as_crashed_and_others_complete(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(10.0)
    engine = make_engine(mock, max_restarts=2, restart_window=1000.0)
    job = engine.create_job("mock", magnet(8))
    others = [engine.create_job("mock", magnet(20 + i)) for i in range(5)]
    crashes = 0
    while not engine.get_job(job.id).terminal:
        advance_until(clock, lambda: _live_actor(engine, job.id) is not None, step=0)
        crashed = _live_actor(engine, job.id)
        assert inject_job_crash(engine, job.id)
        crashes += 1
        assert crashes <= 3
        advance_until(
            clock,
            lambda old=crashed: (  # type: ignore[misc]
                engine.get_job(job.id).terminal or _live_actor(engine, job.id) not in (None, old)
            ),
            step=0,
        )
    failed = engine.get_job(job.id)
    assert failed.error is not None and failed.error.code == "CRASHED"
    assert crashes == 3
    with ClockDriver(clock, step=0.5):
        assert all(engine.wait(j.id, timeout=30).status is JobStatus.COMPLETED for j in others)


def _live_actor(engine: object, job_id: str) -> object | None:
    """The job's current actor, if it is alive (reaching inside on purpose)."""
    supervisor = engine._supervisor.ref._actor_weakref()  # type: ignore[attr-defined]
    ref = supervisor.actors.get(job_id)
    if ref is not None and hasattr(ref, "tell") and ref.is_alive():
        return ref
    return None


def test_provider_actor_crash_is_restarted_and_its_jobs_carry_on(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(2.0)
    mock.inject("crash", op="list_statuses", count=2)
    mock.inject("crash", op="start_job")
    engine = make_engine(mock, retry=FAST_RETRY)
    jobs = [engine.create_job("mock", magnet(30 + i)) for i in range(10)]
    with ClockDriver(clock, step=0.25):
        done = [engine.wait(j.id, timeout=30) for j in jobs]
    assert all(j.status is JobStatus.COMPLETED for j in done)
    assert set(mock.submissions().values()) == {1}
    assert len(mock.submissions()) == 10


def test_a_job_without_progress_fails_as_stalled(make_engine: MakeEngine, clock: FakeClock) -> None:
    mock = MockProvider(100.0)
    engine = make_engine(mock, stall_timeouts={JobStatus.RESOLVING: 30.0})
    job = engine.create_job("mock", magnet(9))
    with ClockDriver(clock, step=1.0):
        failed = engine.wait(job.id, timeout=30)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "STALLED"
    store = engine._store
    assert store is not None
    assert [t.to_status for t in store.transitions(job.id)][-2:] == [
        JobStatus.RESOLVING,
        JobStatus.FAILED,
    ]
