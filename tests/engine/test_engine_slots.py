"""Provider slots: jobs beyond ``max_active`` wait QUEUED in the store, without an actor."""

from __future__ import annotations

import pytest
from engine_helpers import MakeEngine, magnet

from engine import JobStatus
from engine.testing import ClockDriver, advance_until
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


def test_a_cooldown_holds_back_submissions_without_shrinking_the_slot_limit(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    """TorBox's COOLDOWN_LIMIT says "not now", nothing of how many slots there are:
    the job goes back in line until the hint passes, and the slot limit stays (an
    ACTIVE_LIMIT clamps it to what runs; a cooldown that did would starve the rest)."""
    mock = MockProvider(100.0, max_active=5)
    engine = make_engine(mock, slot_retry_delay=1.0)
    running = engine.create_job("mock", magnet(1))
    advance_until(clock, lambda: engine.get_job(running.id).remote_id is not None, step=0.5)
    mock.inject("transient", op="start_job", code="COOLDOWN_LIMIT", retry_after=300.0)
    refused_at = clock.time()
    cooled = engine.create_job("mock", magnet(2))
    advance_until(
        clock,
        lambda: engine.health(timeout=5).providers["mock"].admission_paused_until is not None,
        step=0.0,
        timeout=10,
    )
    health = engine.health(timeout=5).providers["mock"]
    assert health.slot_limit == 5  # not clamped to the one job running
    assert health.admission_paused_until is not None
    assert health.admission_paused_until >= refused_at + 300  # the hint, not slot_retry_delay
    with ClockDriver(clock, step=2.0):
        done = engine.wait(cooled.id, timeout=60)
    assert done.status is JobStatus.COMPLETED
    assert mock.calls["start_job"] == 3


@pytest.mark.parametrize("code", ["COOLDOWN_LIMIT", "ACTIVE_LIMIT"])
def test_a_refusal_holds_back_the_submissions_already_in_the_provider_actors_line(
    make_engine: MakeEngine, clock: FakeClock, code: str
) -> None:
    """Admitted jobs whose submissions wait in the provider actor's line (here for a
    token a second) were each sent once the refusal came, each one certain to be
    refused: on TorBox a token of the 60-an-hour creation budget apiece. Found in
    review: 6 submissions where 1 will do. Now those in line, and those that come
    while the refusal holds, get it without being sent."""
    mock = MockProvider(100.0, max_active=6, requests_per_second=1.0, burst=1)
    engine = make_engine(mock, slot_retry_delay=1.0)
    mock.inject("transient", op="start_job", code=code, retry_after=300.0, count=100)
    start = clock.monotonic()
    engine.create_jobs("mock", [magnet(i) for i in range(6)])
    advance_until(clock, lambda: clock.monotonic() >= start + 30, step=0.5, timeout=60)
    assert mock.calls["start_job"] == 1


@pytest.mark.parametrize("code", ["HOSTER_UNAVAILABLE", "RATE_LIMITED"])
def test_a_refused_submission_is_sent_again_without_a_lookup(
    make_engine: MakeEngine, clock: FakeClock, code: str
) -> None:
    """A refusal made nothing remotely: the retry submits again rather than look for
    what may have landed (on Real-Debrid a walk of every /downloads page), and the
    job is never "unsure" (found in review: code 19 on a hoster link was)."""
    mock = MockProvider(1.0)
    engine = make_engine(mock)
    mock.inject("transient", op="start_job", code=code, retry_after=1.0)
    job = engine.create_job("mock", {"url": "https://hoster.example/file.bin"})
    with ClockDriver(clock, step=0.5):
        done = engine.wait(job.id, timeout=30)
    assert done.status is JobStatus.COMPLETED
    assert mock.calls["start_job"] == 2
    assert mock.calls["find_existing"] == 0


@pytest.mark.parametrize("hint", [0.0, -5.0, float("nan")])
def test_a_refusal_with_a_hint_of_nothing_waits_as_one_without_a_hint(
    make_engine: MakeEngine, clock: FakeClock, hint: float
) -> None:
    """A hint of 0, below 0 or NaN paused admission for nothing, so the job was
    admitted, looked up and refused again as fast as actors start (found in review).
    It waits as a refusal without a hint does: 5 s the first time."""
    mock = MockProvider(100.0, max_active=5)
    engine = make_engine(mock, slot_retry_delay=30.0)
    mock.inject("transient", op="start_job", code="COOLDOWN_LIMIT", retry_after=hint, count=1000)
    engine.create_job("mock", magnet(1))
    advance_until(clock, lambda: mock.calls["start_job"] >= 1, step=0)
    advance_until(clock, lambda: clock.monotonic() >= 4.5, step=0.5, timeout=60)
    assert mock.calls["start_job"] == 1
    assert mock.calls["find_existing"] <= 1


def test_a_slot_refusal_without_a_hint_holds_admission_briefly(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    """Review of issue 10: the provider actor held submissions 5 s after a hint-less
    refusal, but told the refused job nothing, so the supervisor paused admission
    for the whole slot_retry_delay (30 s) all the same."""
    mock = MockProvider(1.0, max_active=5)
    mock.inject("fatal", op="start_job", code="ACTIVE_LIMIT", count=1)
    engine = make_engine(mock, slot_retry_delay=30.0)
    engine.create_job("mock", magnet(1))
    advance_until(clock, lambda: mock.calls["start_job"] >= 1, step=0)
    start = clock.monotonic()
    advance_until(clock, lambda: mock.calls["start_job"] >= 2, step=0.5, timeout=120)
    assert clock.monotonic() - start <= 6.0
