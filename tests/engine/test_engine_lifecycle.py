"""Jobs through the whole actor engine: every transition stored, events after commit."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from typing import Any

from engine_helpers import MakeEngine

from engine import JobEvent, JobStatus
from engine.testing import ClockDriver, advance_until
from providers import FakeClock, MockProvider

HAPPY = [None, JobStatus.QUEUED, JobStatus.RESOLVING, JobStatus.DOWNLOADING, JobStatus.COMPLETED]


def magnet(i: int) -> dict[str, str]:
    return {"magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}"}


def test_thousand_mock_jobs_complete_with_every_transition_stored_and_events_after_commit(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    mock = MockProvider(1.0)
    engine = make_engine(mock)
    store = engine._store
    assert store is not None
    events: dict[str, list[JobEvent]] = defaultdict(list)
    not_durable: list[str] = []
    lock = threading.Lock()

    def on_event(event: JobEvent) -> None:
        # Published only after commit: the store already holds this state (or a later one).
        stored = store.get(event.job.id)
        if stored.status.rank < event.job.status.rank or stored.attempt < event.job.attempt:
            not_durable.append(event.job.id)
        with lock:
            events[event.job.id].append(event)

    engine.subscribe(on_event)
    ids = [engine.create_job("mock", magnet(i)).id for i in range(1000)]
    advance_until(
        clock,
        lambda: engine._store is not None and store.count(status=JobStatus.COMPLETED) == 1000,
        step=0.5,
        timeout=120,
    )

    for job_id in ids:
        path = [(t.from_status, t.to_status) for t in store.transitions(job_id)]
        assert path == list(itertools.pairwise(HAPPY)), job_id
        job = store.get(job_id)
        assert job.status is JobStatus.COMPLETED and job.progress == 100.0
        assert len(job.files) == 3 and all(f.link for f in job.files)

    def state_events() -> int:
        with lock:
            return sum(1 for v in events.values() for e in v if e.kind != "updated")

    advance_until(clock, lambda: state_events() >= 4000, step=0)
    assert not not_durable
    for job_id in ids:
        statuses = [e.job.status for e in events[job_id] if e.kind in ("created", "transition")]
        assert statuses == HAPPY[1:], job_id
    assert sum(mock.submissions().values()) == 1000
    assert set(mock.submissions().values()) == {1}


def test_progress_rises_during_downloading_and_is_published(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(10.0), poll_interval=1.0)
    seen: list[float] = []
    engine.subscribe(
        lambda e: seen.append(e.job.progress) if e.job.status is JobStatus.DOWNLOADING else None
    )
    job = engine.create_job("mock", {"url": "https://example.com/a.bin"})
    with ClockDriver(clock, step=0.5):
        done = engine.wait(job.id, timeout=30)
    assert done.status is JobStatus.COMPLETED
    rising = [p for p in seen if 0 < p < 100]
    assert len(rising) >= 3
    assert rising == sorted(rising)
    assert done.files[0].name == "a.bin"


def test_cached_item_walks_through_every_state_in_one_go(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(0.0))
    events: list[JobEvent] = []
    finished = threading.Event()

    def on_event(event: JobEvent) -> None:
        events.append(event)
        if event.status is JobStatus.COMPLETED:
            finished.set()

    engine.subscribe(on_event)
    job = engine.create_job("mock", magnet(7))
    done = engine.wait(job.id, timeout=30)
    assert done.status is JobStatus.COMPLETED
    assert done.remote_id is not None
    assert done.progress == 100.0
    assert done.files and all(f.link for f in done.files)
    store = engine._store
    assert store is not None
    assert [t.to_status for t in store.transitions(job.id)] == HAPPY[1:]
    # Every state is announced, each with the job as it stood there.
    assert finished.wait(10)
    assert [(e.kind, e.previous, e.status) for e in events] == [
        ("created", None, JobStatus.QUEUED),
        ("transition", JobStatus.QUEUED, JobStatus.RESOLVING),
        ("transition", JobStatus.RESOLVING, JobStatus.DOWNLOADING),
        ("transition", JobStatus.DOWNLOADING, JobStatus.COMPLETED),
    ]
    assert events[-1].job == done


def test_file_selection_marks_only_the_wanted_files(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(0.0))
    job = engine.create_job(
        "mock", {**magnet(8), "select": {"globs": ["*.mkv"], "largest_only": True}}
    )
    done = engine.wait(job.id, timeout=30)
    chosen = [f.name for f in done.files if f.selected]
    assert chosen == ["job8/job8.mkv"]
    assert len(done.files) == 3


class _StuckMock(MockProvider):
    """A mock whose submissions hang until released; records how it was closed."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.in_call = False
        self.closed_during_call: bool | None = None

    def start_job(self, payload: Any) -> Any:
        self.in_call = True
        self.entered.set()
        try:
            self.release.wait(10.0)
            return super().start_job(payload)
        finally:
            self.in_call = False

    def close(self) -> None:
        self.closed_during_call = self.in_call
        super().close()


def test_stop_never_closes_a_provider_under_a_call_in_progress(make_engine: MakeEngine) -> None:
    """Finding 12 of issue 10: Engine.stop closed every provider from its own thread
    once the actors' stop timed out, while an actor was still in a request."""
    mock = _StuckMock()
    engine = make_engine(mock)
    engine.create_job("mock", {"magnet": f"magnet:?xt=urn:btih:{0x57C0:040x}"})
    assert mock.entered.wait(10.0)
    try:
        engine.stop(timeout=0.5)
        assert mock.in_call
        assert mock.closed_during_call is None  # left open, not closed under the call
    finally:
        mock.release.set()
        last = engine._handles["mock"].last
        assert last is not None
        assert last.actor_stopped.wait(10.0)  # it stops once its call returns
