"""The job actor on its own: typed requests with ids, stale replies dropped, cleanups handed over.

A collector actor stands in for the provider actor and the supervisor, so each
test decides exactly which answer arrives when.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from actors import JobActor, JobSettings, Scheduler
from actors._base import EngineActor
from actors._handle import ProviderHandle
from actors._messages import (
    CallFailed,
    Cancel,
    Cleanup,
    FetchLinks,
    FindExisting,
    Found,
    GetStatus,
    JobChanged,
    Links,
    Op,
    ProviderRestarted,
    RetryOp,
    StatusUpdate,
    Submit,
    Submitted,
    Sync,
    Track,
)
from actors._replies import OnceReply
from providers import (
    FakeClock,
    FileLinksResponse,
    Job,
    JobFile,
    JobStatus,
    JobStatusResponse,
    ProviderError,
    RetryPolicy,
    StartJobPayload,
)


class Collector(EngineActor):
    """Records every message; tests wait for one that matches."""

    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()
        self.seen: list[Any] = []

    def on_receive(self, message: Any) -> None:
        with self.cond:
            self.seen.append(message)
            self.cond.notify_all()


class Harness:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.scheduler = Scheduler(self.clock)
        self.scheduler.start()
        self.provider_ref = Collector.start()
        self.supervisor_ref = Collector.start()
        self.provider = self.provider_ref._actor_weakref()
        self.supervisor = self.supervisor_ref._actor_weakref()
        self.handle = ProviderHandle(None)
        self.handle.point_at(self.provider_ref)
        self.job_ref: pykka.ActorRef[Any] | None = None

    def start(self, job: Job, *, fresh: bool = True) -> pykka.ActorRef[Any]:
        settings = JobSettings(retry_policy=RetryPolicy(max_retries=3, initial_delay=0.0))
        self.job_ref = JobActor.start(
            job,
            provider=self.handle,
            supervisor=self.supervisor_ref,
            scheduler=self.scheduler,
            settings=settings,
            fresh=fresh,
        )
        return self.job_ref

    def wait_for(self, who: Collector, match: Callable[[Any], bool], count: int = 1) -> list[Any]:
        with who.cond:
            ok = who.cond.wait_for(lambda: len([m for m in who.seen if match(m)]) >= count, 10)
            assert ok, f"no such message in {who.seen!r}"
            return [m for m in who.seen if match(m)]

    def sent(self, kind: type) -> list[Any]:
        with self.provider.cond:
            return [m for m in self.provider.seen if isinstance(m, kind)]

    def tell(self, message: Any) -> None:
        assert self.job_ref is not None
        self.job_ref.tell(message)

    def stop(self) -> None:
        self.scheduler.stop()
        for ref in (self.job_ref, self.provider_ref, self.supervisor_ref):
            if ref is not None and ref.is_alive():
                ref.stop()


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.stop()


def new_job(**changes: Any) -> Job:
    job = Job(
        id="job-1",
        provider="mock",
        status=JobStatus.QUEUED,
        payload=StartJobPayload(url="https://example.com/a.zip"),
        created_at=1,
        updated_at=1,
        submitted=True,
    )
    return job.evolve(**changes)


def resolving(remote_id: str = "r1", **extra: Any) -> JobStatusResponse:
    return JobStatusResponse(remote_id, JobStatus.RESOLVING, **extra)


def done_remotely(harness: Harness) -> FetchLinks:
    """A downloading job hears its remote job completed; the links request it sends."""
    harness.start(new_job(status=JobStatus.DOWNLOADING, remote_id="r1"))
    harness.wait_for(harness.provider, lambda m: isinstance(m, Track))
    harness.tell(StatusUpdate(JobStatusResponse("r1", JobStatus.COMPLETED, 100.0)))
    request: FetchLinks = harness.wait_for(harness.provider, lambda m: isinstance(m, FetchLinks))[0]
    return request


def test_a_stale_submitted_is_dropped_and_the_current_find_decides(harness: Harness) -> None:
    harness.start(new_job())
    submit = harness.wait_for(harness.provider, lambda m: isinstance(m, Submit))[0]
    # The provider actor died with the submission: the new one (generation 2) gets a find.
    generation = harness.handle.point_at(harness.provider_ref)
    harness.tell(ProviderRestarted(generation))
    find = harness.wait_for(harness.provider, lambda m: isinstance(m, FindExisting))[0]
    harness.tell(Submitted(submit.request_id, resolving("stale")))  # too late: dropped
    harness.tell(Found(find.request_id, None))
    harness.wait_for(harness.provider, lambda m: isinstance(m, Submit), count=2)
    assert len(harness.sent(Submit)) == 2 and len(harness.sent(FindExisting)) == 1
    assert not harness.sent(Track)  # the stale item was never attached


def test_a_restart_notice_for_the_generation_it_already_reached_sends_nothing(
    harness: Harness,
) -> None:
    generation = harness.handle.generation
    harness.start(new_job(), fresh=False)
    harness.wait_for(harness.provider, lambda m: isinstance(m, FindExisting))
    harness.tell(ProviderRestarted(generation))  # the find already went to this actor
    harness.tell(Sync(OnceReply()))  # a marker: once answered, the notice was handled
    harness.wait_for(harness.supervisor, lambda m: isinstance(m, JobChanged))
    assert len(harness.sent(FindExisting)) == 1
    assert not harness.sent(Submit)


def test_links_are_asked_again_after_a_provider_restart_even_after_a_sync(
    harness: Harness,
) -> None:
    links = done_remotely(harness)
    reply = OnceReply()
    harness.tell(Sync(reply))
    status = harness.wait_for(harness.provider, lambda m: isinstance(m, GetStatus))[0]
    done_now = JobStatusResponse("r1", JobStatus.COMPLETED, 100.0)
    harness.tell(StatusUpdate(done_now, status.request_id))
    harness.wait_for(harness.supervisor, lambda m: isinstance(m, JobChanged) and reply in m.replies)
    # The sync's answer did not clear the links request: a restart re-sends it.
    harness.tell(ProviderRestarted(harness.handle.point_at(harness.provider_ref)))
    again = harness.wait_for(harness.provider, lambda m: isinstance(m, FetchLinks), count=2)[1]
    assert again.request_id != links.request_id
    file = JobFile(0, "a.zip", 10, link="https://x/a")
    harness.tell(Links(links.request_id, FileLinksResponse("r1", (file,))))  # stale: dropped
    harness.tell(Links(again.request_id, FileLinksResponse("r1", (file,))))
    done = harness.wait_for(harness.supervisor, lambda m: isinstance(m, JobChanged) and m.finished)
    assert len(done) == 1 and done[0].job.status is JobStatus.COMPLETED


def test_cancel_while_waiting_to_retry_an_ambiguous_submission_hands_over_a_lookup(
    harness: Harness,
) -> None:
    harness.start(new_job())
    submit = harness.wait_for(harness.provider, lambda m: isinstance(m, Submit))[0]
    timeout = ProviderError("timed out", "mock", code="TIMEOUT", retryable=True)
    harness.tell(CallFailed(submit.request_id, Op.SUBMIT, timeout))
    reply = OnceReply()
    harness.tell(Cancel(reply))
    cleanup = harness.wait_for(harness.provider, lambda m: isinstance(m, Cleanup))[0]
    assert cleanup.unsure and cleanup.remote_id is None and cleanup.job_id == "job-1"
    changed = harness.wait_for(harness.supervisor, lambda m: isinstance(m, JobChanged))[-1]
    assert changed.job.status is JobStatus.CANCELLED and changed.finished


def test_cancel_with_a_submission_out_hands_over_a_lookup_and_stops_at_once(
    harness: Harness,
) -> None:
    ref = harness.start(new_job())
    harness.wait_for(harness.provider, lambda m: isinstance(m, Submit))
    harness.tell(Cancel(OnceReply()))
    cleanup = harness.wait_for(harness.provider, lambda m: isinstance(m, Cleanup))[0]
    assert cleanup.unsure
    assert ref.actor_stopped.wait(10)  # no lingering actor: the provider actor cleans up


def test_a_completed_job_releases_its_item_and_a_failed_one_cleans_it_up(
    harness: Harness,
) -> None:
    harness.start(new_job(status=JobStatus.RESOLVING, remote_id="r1"))
    harness.wait_for(harness.provider, lambda m: isinstance(m, Track))
    harness.tell(StatusUpdate(JobStatusResponse("r1", JobStatus.FAILED, error_code="VIRUS")))
    cleanup = harness.wait_for(harness.provider, lambda m: isinstance(m, Cleanup))[0]
    assert cleanup.remote_id == "r1" and not cleanup.unsure


def test_provider_metadata_reaches_the_job(harness: Harness) -> None:
    harness.start(new_job(status=JobStatus.RESOLVING, remote_id="r1"))
    harness.wait_for(harness.provider, lambda m: isinstance(m, Track))
    harness.tell(StatusUpdate(resolving("r1", progress=10.0, metadata={"seeders": 7})))
    changed = harness.wait_for(harness.supervisor, lambda m: isinstance(m, JobChanged))[-1]
    assert changed.job.metadata["seeders"] == 7


def test_a_stale_retry_timer_is_ignored(harness: Harness) -> None:
    harness.start(new_job())
    submit = harness.wait_for(harness.provider, lambda m: isinstance(m, Submit))[0]
    busy = ProviderError("busy", "mock", code="BUSY", retryable=True)
    harness.tell(RetryOp(Op.FIND, 999))  # no such timer
    harness.tell(CallFailed(submit.request_id, Op.SUBMIT, busy))
    harness.clock.advance(1.0)  # the real retry (delay 0) fires
    harness.wait_for(harness.provider, lambda m: isinstance(m, FindExisting))
    assert len(harness.sent(FindExisting)) == 1


def test_a_partial_links_answer_is_asked_again_at_once_and_the_full_one_completes(
    harness: Harness,
) -> None:
    first = done_remotely(harness)
    files = (JobFile(1, "a.mkv", 10), JobFile(2, "b.mkv", 10))
    harness.tell(Links(first.request_id, FileLinksResponse("r1", files, ready=False, more=True)))
    # No retry timer (the clock never moves here): the next request goes out at once.
    second = harness.wait_for(harness.provider, lambda m: isinstance(m, FetchLinks), count=2)[1]
    assert second.request_id != first.request_id
    linked = tuple(JobFile(f.id, f.name, f.size, link=f"https://x/{f.id}") for f in files)
    harness.tell(Links(second.request_id, FileLinksResponse("r1", linked)))
    done = harness.wait_for(harness.supervisor, lambda m: isinstance(m, JobChanged) and m.finished)
    assert done[0].job.status is JobStatus.COMPLETED and done[0].job.files == linked
