"""Findings of the review of issue 9's actor change: each test failed before its fix."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pykka
import pytest
from engine_helpers import MakeEngine, magnet, wrap_stores

import actors._supervisor as supervisor_module
import engine._engine as engine_module
from actors import JobActor
from actors._handle import ProviderDown, ProviderHandle
from engine import Engine, EngineConfig, JobStatus, StoreError
from engine.testing import ClockDriver, advance_until, inject_job_crash
from persistence import JobStore
from providers import (
    FakeClock,
    MockProvider,
    ProviderError,
    ProviderRegistry,
    StartJobPayload,
    UnstorableValue,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from faulty_store import FaultyStore


class RefusingStore(FaultyStore):
    """Refuses, once armed, the first batch that holds a job in ``status`` (or with ``job_id``)."""

    def __init__(self, store: JobStore) -> None:
        super().__init__(store)
        self.refuse_status: JobStatus | None = None
        self.refuse_id: str | None = None
        self.refusals = 0

    def save_batch(self, changes: Any, cleanups: Any = ()) -> None:
        for job, _ in changes:
            if job.status is self.refuse_status:
                self.refuse_status = None
                self.refusals += 1
                raise StoreError("injected: this batch cannot be written")
            if job.id == self.refuse_id:
                # What the store raises for a value the database refuses.
                self.refusals += 1
                raise UnstorableValue("injected: this job cannot be stored")
        self._store.save_batch(changes, cleanups)


@pytest.fixture
def refusing(monkeypatch: pytest.MonkeyPatch) -> list[RefusingStore]:
    return wrap_stores(monkeypatch, RefusingStore)


def config(tmp_path: Path, clock: FakeClock, **providers: MockProvider) -> EngineConfig:
    registry = ProviderRegistry()
    for name, provider in providers.items():
        registry.register_provider(name, provider)
    return EngineConfig(
        database=tmp_path / "jobs.db",
        providers={name: {"poll_interval": 0.5} for name in providers},
        registry=registry,
        clock=clock,
        stall_timeouts={},
    )


def test_a_failed_flush_during_admission_does_not_stall_the_line(
    tmp_path: Path, clock: FakeClock, refusing: list[RefusingStore]
) -> None:
    with Engine(config(tmp_path, clock, mock=MockProvider(1000.0, max_active=0))) as first:
        jobs = first.create_jobs("mock", [magnet(i) for i in range(300)])
    second = Engine(config(tmp_path, clock, mock=MockProvider(0.0, max_active=1)))
    refusing.clear()
    with second:
        refusing[0].refuse_status = JobStatus.COMPLETED  # the first completion's flush fails
        with ClockDriver(clock, step=0.5):
            second.wait(jobs[-1].id, timeout=60)
            for job in jobs:
                assert second.wait(job.id, timeout=60).status is JobStatus.COMPLETED
    assert refusing[0].refusals == 1


class SlowRefusal(MockProvider):
    """Refuses every submission for lack of slots, with a long Retry-After."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inside = threading.Event()

    def start_job(self, payload: StartJobPayload) -> Any:
        self.inside.set()
        raise ProviderError(
            "full", self.name, code="ACTIVE_LIMIT", retryable=True, retry_after=3000
        )


def test_a_slot_refusal_frees_the_global_place_for_another_provider(
    tmp_path: Path, clock: FakeClock
) -> None:
    refusing, other = SlowRefusal(1.0, name="a"), MockProvider(1.0, name="b")
    cfg = config(tmp_path, clock, a=refusing, b=other)
    cfg.max_job_actors = 1
    with Engine(cfg) as engine:
        engine.create_job("a", magnet(1))
        waiting = engine.create_job("b", magnet(2))
        with ClockDriver(clock, step=0.5):
            done = engine.wait(waiting.id, timeout=30)
    assert done.status is JobStatus.COMPLETED


def test_a_finished_job_frees_the_global_place_for_another_provider(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Nothing waits for ``a`` when its job ends, but ``b``'s job waits for the place
    (a shortcut past admission once skipped telling ``b``: found in review)."""
    cfg = config(tmp_path, clock, a=MockProvider(1.0, name="a"), b=MockProvider(1.0, name="b"))
    cfg.max_job_actors = 1
    with Engine(cfg) as engine:
        first = engine.create_job("a", magnet(1))
        waiting = engine.create_job("b", magnet(2))
        with ClockDriver(clock, step=0.5):
            assert engine.wait(first.id, timeout=30).status is JobStatus.COMPLETED
            assert engine.wait(waiting.id, timeout=30).status is JobStatus.COMPLETED


def test_a_create_the_store_refuses_for_good_is_not_reported_as_created_nor_submitted(
    make_engine: MakeEngine, clock: FakeClock, refusing: list[RefusingStore], monkeypatch: Any
) -> None:
    mock = MockProvider(0.0)
    engine = make_engine(mock)
    ids = iter(["bad" + "0" * 29, "good" + "0" * 28])
    monkeypatch.setattr(engine_module, "new_job_ids", lambda n: [next(ids) for _ in range(n)])
    refusing[0].refuse_id = "bad" + "0" * 29
    with ClockDriver(clock, step=1.0), pytest.raises(StoreError):
        engine.create_job("mock", magnet(1), timeout=30)
    assert mock.calls["start_job"] == 0
    good = engine.create_job("mock", magnet(2))
    assert engine.wait(good.id, timeout=30).status is JobStatus.COMPLETED
    assert engine.health().providers["mock"].slots_used == 0


def test_the_generation_of_a_failed_send_is_read_with_the_failure() -> None:
    class Sink:
        def __init__(self) -> None:
            self.told: list[Any] = []

        def tell(self, message: Any) -> None:
            self.told.append(message)

    handle = ProviderHandle(None)
    handle.point_at(None)
    with pytest.raises(ProviderDown) as failure:
        handle.tell("submit")
    down_at = failure.value.generation
    handle.point_at(Sink())  # type: ignore[arg-type]
    assert down_at < handle.generation  # a restart notice for it makes the job re-send


class RefusingTwice(MockProvider):
    """Refuses the first two submissions for lack of slots, with Retry-After 5 s, then 100 s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pauses = [5.0, 100.0]

    def start_job(self, payload: StartJobPayload) -> Any:
        self.calls["start_job"] += 1
        if self.pauses:
            pause = self.pauses.pop(0)
            raise ProviderError("full", self.name, code="ACTIVE_LIMIT", retry_after=pause)
        return super().start_job(payload)


def test_a_pause_after_a_long_refusal_is_not_ended_by_an_earlier_tick(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = RefusingTwice(1000.0, max_active=2)
    engine = make_engine(mock)
    engine.create_jobs("mock", [magnet(1), magnet(2)])
    # The first refusal (5 s) answers the other submission too, unsent; once it has
    # passed, a submission meets the second (100 s), and ticks of the first remain.
    advance_until(clock, lambda: mock.calls["start_job"] >= 2, step=0.5)
    engine.health()  # both refusals handled
    with ClockDriver(clock, step=1.0):
        advance_until(clock, lambda: clock.monotonic() >= 50, step=1.0)
        engine.health()
    assert mock.calls["start_job"] == 2  # paused until the longer pause ends


def test_a_spawn_that_fails_once_strands_nothing(
    make_engine: MakeEngine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = JobActor.start
    failures = {"left": 1, "calls": 0}

    def flaky_start(*args: Any, **kwargs: Any) -> Any:
        failures["calls"] += 1
        if failures["calls"] == 2 and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("cannot start a thread")
        return original(*args, **kwargs)

    monkeypatch.setattr(supervisor_module.JobActor, "start", flaky_start)
    engine = make_engine(MockProvider(1.0))
    jobs = engine.create_jobs("mock", [magnet(i) for i in range(5)])
    with ClockDriver(clock, step=0.5):
        done = [engine.wait(j.id, timeout=30) for j in jobs]
    assert all(j.status is JobStatus.COMPLETED for j in done)
    assert engine.health().providers["mock"].slots_used == 0


def test_failed_syncs_leave_nothing_behind(make_engine: MakeEngine, clock: FakeClock) -> None:
    mock = MockProvider(1000.0)
    engine = make_engine(mock)
    job = engine.create_job("mock", magnet(1))
    advance_until(clock, lambda: engine.get_job(job.id).remote_id is not None, step=0)
    for _ in range(5):
        mock.inject("transient", op="get_status")
        with pytest.raises(ProviderError):
            engine.sync_job_status(job.id, timeout=10)
    supervisor = engine._supervisor.ref
    assert supervisor is not None
    assert not supervisor._actor_weakref().outstanding.get(job.id)


def test_a_job_crash_meeting_a_failed_read_does_not_spin_a_cancel(
    make_engine: MakeEngine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    original = supervisor_module.SupervisorActor._cancel

    def counting(self: Any, job_id: str, reply: Any) -> None:
        calls["n"] += 1
        original(self, job_id, reply)

    monkeypatch.setattr(supervisor_module.SupervisorActor, "_cancel", counting)
    made: list[FaultyStore] = wrap_stores(monkeypatch, FaultyStore)
    engine = make_engine(MockProvider(1000.0))
    job = engine.create_job("mock", magnet(1))
    advance_until(clock, lambda: engine.get_job(job.id).remote_id is not None, step=0)
    made[0].only_thread = "SupervisorActor"
    made[0].fail_next("get")
    actor = engine._supervisor.ref._actor_weakref().actors[job.id]  # type: ignore[union-attr]
    assert inject_job_crash(engine, job.id)
    assert actor.actor_stopped.wait(10)
    answer: list[Any] = []
    canceller = threading.Thread(
        target=lambda: answer.append(engine.cancel_job(job.id, timeout=20))
    )
    canceller.start()
    with ClockDriver(clock, step=0.5):
        canceller.join(30)
    assert answer and answer[0].status is JobStatus.CANCELLED
    assert calls["n"] < 10


def test_the_facade_never_skips_a_live_new_supervisor(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(1.0))
    handle = engine._supervisor
    ref, generation = handle.current()
    assert ref is not None and generation == handle.generation


def test_ask_after_stop_is_engine_not_running_at_once(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(1.0))
    engine.stop()
    with pytest.raises(Exception, match=r"not started|stopped"):
        engine.cancel_job("x", timeout=5)
    assert not pykka.ActorRegistry.get_all()
