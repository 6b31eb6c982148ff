"""Supervision that survives its own faults: each test pins a finding of issue 9.

A ``FaultyStore`` wraps the engine's real SQLite store, so a test decides which
read or write fails, on which thread.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pykka
import pytest
from engine_helpers import MakeEngine, magnet

import actors._supervisor as supervisor_module
from engine import Engine, EngineConfig, EngineNotRunning, Job, JobStatus, StoreError
from engine.testing import (
    ClockDriver,
    advance_until,
    inject_job_crash,
    inject_supervisor_crash,
)
from providers import (
    FakeClock,
    JobStatusResponse,
    MockProvider,
    ProviderRegistry,
    RetryPolicy,
    StartJobPayload,
)
from providers._status import TRANSITIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from faulty_store import FaultyStore

FAST_RETRY = RetryPolicy(max_retries=8, initial_delay=0.1, max_delay=0.5)


def history_is_legal(store: Any, job_id: str) -> bool:
    """Every stored step follows the one before; an attempt starts at QUEUED after a terminal."""
    previous: JobStatus | None = None
    for step in store.transitions(job_id):
        if step.from_status != previous:
            return False
        if previous is None or previous.terminal:
            if step.to_status is not JobStatus.QUEUED:
                return False
        elif step.to_status not in TRANSITIONS[previous]:
            return False
        previous = step.to_status
    return True


def test_one_failed_read_while_cancelling_does_not_kill_the_supervisor(
    make_engine: MakeEngine, clock: FakeClock, faulty: list[FaultyStore]
) -> None:
    mock = MockProvider(1000.0, max_active=1)
    engine = make_engine(mock)
    store = faulty[0]
    first, waiting = engine.create_job("mock", magnet(1)), engine.create_job("mock", magnet(2))
    advance_until(clock, lambda: engine.get_job(first.id).remote_id is not None, step=0)
    store.only_thread = "SupervisorActor"
    store.fail_next("get")  # the read that admits the waiting job after the cancel
    assert engine.cancel_job(first.id).status is JobStatus.CANCELLED
    with ClockDriver(clock, step=0.5):
        engine.wait(waiting.id, timeout=30, statuses=[JobStatus.RESOLVING])
    assert store.raised["get"] == 1
    assert engine.running and engine.health().supervisor == "running"
    steps = [t.to_status for t in store.transitions(first.id)]
    assert steps.count(JobStatus.CANCELLED) == 1 and history_is_legal(store, first.id)


def test_a_failed_read_fails_only_the_request_that_needed_it(
    make_engine: MakeEngine, clock: FakeClock, faulty: list[FaultyStore]
) -> None:
    engine = make_engine(MockProvider(1000.0, max_active=1))
    store = faulty[0]
    engine.create_job("mock", magnet(1))
    waiting = engine.create_job("mock", magnet(2))
    store.only_thread = "SupervisorActor"
    store.fail_next("get")
    with pytest.raises(StoreError, match="injected"):
        engine.cancel_job(waiting.id)
    assert engine.get_job(waiting.id).status is JobStatus.QUEUED  # nothing half done
    assert engine.cancel_job(waiting.id).status is JobStatus.CANCELLED
    store.fail_next("get")
    with pytest.raises(StoreError, match="injected"):
        engine.retry_job(waiting.id)
    again = engine.retry_job(waiting.id)
    assert again.status is JobStatus.QUEUED and again.attempt == 2
    assert history_is_legal(store, waiting.id)


def test_a_job_crash_meeting_a_failed_read_is_restarted_not_orphaned(
    make_engine: MakeEngine, clock: FakeClock, faulty: list[FaultyStore]
) -> None:
    mock = MockProvider(2.0)
    engine = make_engine(mock, retry=FAST_RETRY)
    store = faulty[0]
    job = engine.create_job("mock", magnet(3))
    advance_until(clock, lambda: engine.get_job(job.id).remote_id is not None, step=0)
    store.only_thread = "SupervisorActor"
    store.fail_next("get")
    assert inject_job_crash(engine, job.id)
    with ClockDriver(clock, step=0.5):
        assert engine.wait(job.id, timeout=30).status is JobStatus.COMPLETED
    assert store.raised["get"] == 1
    assert set(mock.submissions().values()) == {1}


def test_a_dead_supervisor_is_restarted_from_the_store_and_its_jobs_finish(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(2.0)
    engine = make_engine(mock)
    jobs = engine.create_jobs("mock", [magnet(10 + i) for i in range(5)])
    advance_until(clock, lambda: all(engine.get_job(j.id).remote_id for j in jobs), step=0)
    assert inject_supervisor_crash(engine)
    with ClockDriver(clock, step=0.5):
        done = [engine.wait(j.id, timeout=30) for j in jobs]
        late = engine.create_job("mock", magnet(20))
        assert engine.wait(late.id, timeout=30).status is JobStatus.COMPLETED
    assert all(j.status is JobStatus.COMPLETED for j in done)
    assert set(mock.submissions().values()) == {1}  # nothing submitted twice
    health = engine.health()
    assert health.supervisor == "running" and health.supervisor_restarts == 1 and health.ready


def test_past_the_restart_intensity_the_engine_stops_and_says_why(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(2.0), max_restarts=1, restart_window=1000.0)
    for _ in range(2):
        ref = engine._supervisor.ref
        assert ref is not None and inject_supervisor_crash(engine)
        assert ref.actor_stopped.wait(10)
        engine._supervisor.wait_for(engine._supervisor.generation, 10)
    deadline = threading.Event()
    for _ in range(100):
        if not engine.running:
            break
        deadline.wait(0.05)
    assert not engine.running
    with pytest.raises(EngineNotRunning, match="crashed 2 times"):
        engine.create_job("mock", magnet(1))
    assert engine.health().supervisor == "failed"
    engine.stop()
    assert not pykka.ActorRegistry.get_all()


def test_a_second_engine_on_the_same_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    config = EngineConfig(database=tmp_path / "jobs.db", providers={"mock": {"step_seconds": 0}})
    with Engine(config), pytest.raises(StoreError, match=r"in use by process \d+"):
        Engine(config).start()
    with Engine(config) as again:  # released on stop
        assert again.running


def test_two_jobs_with_the_same_link_each_get_their_own_item(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(2.0)
    mock.inject("transient", op="start_job", count=1)
    engine = make_engine(mock, retry=FAST_RETRY)
    payload = {"url": "https://example.com/same.zip"}
    first = engine.create_job("mock", payload)
    with ClockDriver(clock, step=0.1):
        engine.wait(first.id, timeout=30, statuses=[JobStatus.RESOLVING])
    second = engine.create_job("mock", payload)
    with ClockDriver(clock, step=0.25):
        done = [engine.wait(j.id, timeout=30) for j in (first, second)]
    assert [j.status for j in done] == [JobStatus.COMPLETED, JobStatus.COMPLETED]
    assert done[0].remote_id != done[1].remote_id


class SharingMock(MockProvider):
    """A service that answers a duplicate with the item it already has (Real-Debrid, TorBox)."""

    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        existing = MockProvider.find_existing(self, payload)
        if existing is not None:
            return existing
        return super().start_job(payload)


def two_jobs_on_one_item(
    engine: Engine, clock: FakeClock, payload: dict[str, str]
) -> tuple[Job, Job, str]:
    """Two jobs of ``payload`` on a SharingMock: the second is handed the first's item."""
    first = engine.create_job("mock", payload)
    advance_until(clock, lambda: engine.get_job(first.id).remote_id is not None, step=0)
    second = engine.create_job("mock", payload)
    advance_until(clock, lambda: engine.get_job(second.id).remote_id is not None, step=0)
    shared = engine.get_job(first.id).remote_id
    assert shared is not None and engine.get_job(second.id).remote_id == shared
    return first, second, shared


def test_two_jobs_sharing_one_item_both_complete_and_one_cancel_keeps_it(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = SharingMock(10.0)
    engine = make_engine(mock)
    first, second, shared = two_jobs_on_one_item(engine, clock, magnet(40))
    third = engine.create_job("mock", magnet(40))
    advance_until(clock, lambda: engine.get_job(third.id).remote_id is not None, step=0)
    engine.cancel_job(third.id)
    with ClockDriver(clock, step=0.5):
        done = [engine.wait(j.id, timeout=60) for j in (first, second)]
    assert [j.status for j in done] == [JobStatus.COMPLETED, JobStatus.COMPLETED]
    assert [j.remote_id for j in done] == [shared, shared]
    assert mock.calls["cancel"] == 0  # the item stayed: two other jobs used it


def test_a_job_failed_as_crashed_leaves_no_remote_item(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1000.0)
    engine = make_engine(mock, max_restarts=0, restart_window=1000.0)
    job = engine.create_job("mock", magnet(50))
    advance_until(clock, lambda: engine.get_job(job.id).remote_id is not None, step=0)
    remote = engine.get_job(job.id).remote_id
    assert inject_job_crash(engine, job.id)
    failed = engine.wait(job.id, timeout=30)
    assert failed.error is not None and failed.error.code == "CRASHED"
    advance_until(clock, lambda: mock.calls["cancel"] >= 1, step=0)
    with pytest.raises(Exception, match="no remote job"):
        mock.get_status(remote or "")


class LazyMock(MockProvider):
    """Learns its slot limit from the service, like Real-Debrid and TorBox."""

    slots_learnt_lazily = True

    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        self._learnt = 3
        return super().start_job(payload)

    @property
    def max_active(self) -> int | None:
        return getattr(self, "_learnt", None)


def mock_config(database: Path, mock: MockProvider, clock: FakeClock) -> EngineConfig:
    """An engine config with ``mock`` registered as the mock provider."""
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    return EngineConfig(
        database=database,
        providers={"mock": {"poll_interval": 1.0}},
        registry=registry,
        clock=clock,
        stall_timeouts={},
    )


def test_a_learnt_slot_limit_is_remembered_across_a_restart(
    tmp_path: Path, clock: FakeClock
) -> None:
    def config() -> EngineConfig:
        return mock_config(tmp_path / "jobs.db", LazyMock(1000.0), clock)

    with Engine(config()) as first:
        job = first.create_job("mock", magnet(60))
        advance_until(clock, lambda: first.health().providers["mock"].slot_limit == 3, step=0)
        assert first.get_job(job.id).remote_id is not None
    with Engine(config()) as second:
        assert second.health().providers["mock"].slot_limit == 3  # not one at a time


def test_start_reads_a_backlog_a_page_at_a_time(tmp_path: Path, clock: FakeClock) -> None:
    config = mock_config(tmp_path / "jobs.db", MockProvider(1000.0, max_active=1), clock)
    with Engine(config) as first:
        jobs = first.create_jobs("mock", [magnet(1000 + i) for i in range(2000)], timeout=120)
        # The one job admitted holds the only slot: recovered first, with its remote id.
        advance_until(clock, lambda: first.get_job(jobs[0].id).remote_id is not None, step=0)
    with Engine(config) as second:
        mock = second.health().providers["mock"]
        assert mock.backlog and mock.waiting <= 256  # one page, not two thousand
        assert mock.slots_used == 1


def test_clear_completed_deletes_in_chunks_between_other_messages(
    make_engine: MakeEngine, faulty: list[FaultyStore]
) -> None:
    engine = make_engine(MockProvider(0.0))
    store = faulty[0]
    template = engine.wait(engine.create_job("mock", magnet(1)).id, timeout=30)
    store.save_batch([(template.evolve(id=f"done-{n}"), ()) for n in range(12_000)])
    assert engine.clear_completed(timeout=120) == 12_001
    assert store.calls["delete_terminal"] == 3  # 5,000 a turn
    assert engine.list_jobs(status=JobStatus.COMPLETED) == []


def test_stop_never_raises_for_a_provider_stuck_in_a_call(make_engine: MakeEngine) -> None:
    gate = threading.Event()

    class Stuck(MockProvider):
        def test_connection(self) -> Any:
            gate.wait(30)
            return super().test_connection()

    engine = make_engine(Stuck(1.0))
    caller = threading.Thread(target=lambda: _quietly(engine.test_connection, "mock"))
    caller.start()
    try:
        engine.stop(timeout=1.0)  # returns without pykka.Timeout
        assert not engine.running
    finally:
        gate.set()
        caller.join(10)
        pykka.ActorRegistry.stop_all(block=True, timeout=10)


def _quietly(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        return


def test_a_retry_never_deletes_the_item_a_completed_job_shares(
    make_engine: MakeEngine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: a retry hands its last attempt's item to a cleanup, and after a
    restart the provider actor's record of released items holds only the newest
    completions (none here): the item a completed twin shares was deleted."""
    monkeypatch.setattr(supervisor_module, "_RELEASED_AT_START", 0)
    mock = SharingMock(2.0)
    first = make_engine(mock)
    done, twin, shared = two_jobs_on_one_item(first, clock, magnet(41))
    first.cancel_job(twin.id)  # kept: the other job uses it
    with ClockDriver(clock, step=0.25):
        assert first.wait(done.id, timeout=30).status is JobStatus.COMPLETED
    first.stop()

    second = make_engine(mock)
    second.retry_job(twin.id)
    with ClockDriver(clock, step=0.25):
        again = second.wait(twin.id, timeout=30)
    assert again.status is JobStatus.COMPLETED and again.remote_id == shared
    assert mock.calls["cancel"] == 0
    assert mock.get_status(shared).status is JobStatus.COMPLETED
