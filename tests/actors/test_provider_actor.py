"""The provider actor never sleeps: calls wait for tokens in its own line, served by class.

Real Pykka actors on a Scheduler driven by a FakeClock. Collector actors stand in
for the job actors and the supervisor; tests wait on what they receive (or on a
provider's record of its calls), with timeouts, and never sleep for progress.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import types
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import pykka
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors._messages import (
    Adopt,
    BudgetWait,
    CallFailed,
    ChildFailed,
    Cleanup,
    DescribeProvider,
    FetchLinks,
    FindExisting,
    Found,
    GetStatus,
    InjectCrash,
    Links,
    Op,
    PollTick,
    ProviderReport,
    Release,
    SlotLimit,
    StatusUpdate,
    Submit,
    Submitted,
    TestConnection,
    Track,
    Wake,
)
from actors._provider import ProviderActor, ProviderHandle
from actors._provider_book import ProviderBook
from actors._scheduler import Scheduler
from providers import (
    BaseProvider,
    Call,
    CancelJobResponse,
    EngineNotRunning,
    FakeClock,
    FileLinksResponse,
    JobStatus,
    JobStatusResponse,
    MockProvider,
    Provider,
    ProviderContext,
    ProviderError,
    RateLimit,
    RateLimiter,
    StartJobPayload,
    TestConnectionResponse,
    parse_start_job_payload,
)

TIMEOUT = 10.0  # real seconds: only a bound on a failure, never the path to success

Predicate = Callable[[Any], bool]


# -- stand-ins -----------------------------------------------------------------
class Inbox:
    """Every message a collector got, with a condition to wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.messages: list[Any] = []

    def add(self, message: Any) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def of(self, kind: type, predicate: Predicate = lambda _: True) -> list[Any]:
        with self._cond:
            return [m for m in self.messages if isinstance(m, kind) and predicate(m)]

    def wait_for(self, kind: type, predicate: Predicate = lambda _: True, count: int = 1) -> Any:
        """The ``count``-th message of ``kind`` that matches (waits for it)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(kind, predicate)) >= count, TIMEOUT)
            assert ok, f"no {kind.__name__} (x{count}) in {self.messages!r}"
            return self.of(kind, predicate)[count - 1]


class Collector(pykka.ThreadingActor):
    """Stands in for a job actor or the supervisor: keeps what it is told."""

    use_daemon_thread = True

    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox

    def on_receive(self, message: Any) -> None:
        self.inbox.add(message)


class CallLog:
    """The provider calls made, in order, with a condition to wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.calls: list[tuple[str, Any]] = []

    def record(self, op: str, arg: Any = None) -> None:
        with self._cond:
            self.calls.append((op, arg))
            self._cond.notify_all()

    def ops(self) -> list[str]:
        with self._cond:
            return [op for op, _ in self.calls]

    def count(self, op: str) -> int:
        return self.ops().count(op)

    def wait_count(self, op: str, count: int = 1) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: self.ops().count(op) >= count, TIMEOUT)
            assert ok, f"{op} not called {count} times: {self.ops()}"

    def wait_total(self, count: int) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.calls) >= count, TIMEOUT)
            assert ok, f"fewer than {count} calls: {self.ops()}"


class RecordingMock(MockProvider):
    """The mock provider, recording each call in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = CallLog()

    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        self.log.record("start_job", payload)
        return super().start_job(payload)

    def get_status(self, remote_id: str) -> JobStatusResponse:
        self.log.record("get_status", remote_id)
        return super().get_status(remote_id)

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        self.log.record("list_statuses", tuple(remote_ids))
        return super().list_statuses(remote_ids)

    def find_existing(
        self, payload: StartJobPayload, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        self.log.record("find_existing", frozenset(exclude))
        return super().find_existing(payload, exclude=exclude)

    def cancel(self, remote_id: str) -> CancelJobResponse:
        self.log.record("cancel", remote_id)
        return super().cancel(remote_id)

    def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
        self.log.record("get_file_links", remote_id)
        return super().get_file_links(remote_id, payload)

    def test_connection(self) -> TestConnectionResponse:
        self.log.record("test_connection")
        return super().test_connection()


class Budgeted(BaseProvider):
    """A tiny provider with a general bucket and a creation bucket, as TorBox has.

    Items live in a dict; ``faults[op]`` holds exceptions the next calls of ``op`` raise.
    ``share`` makes a second submission of a payload return the first one's item
    (as Real-Debrid does with error code 33).
    """

    name = "budgeted"

    def __init__(
        self, create_rate: float = 1 / 60, *, create_burst: int = 1, share: bool = False
    ) -> None:
        super().__init__()
        self.create_rate = create_rate
        self.create_burst = create_burst
        self.share = share
        self.items: dict[str, JobStatusResponse] = {}
        self.faults: dict[str, list[BaseException]] = {}
        self.log = CallLog()
        self._ids = itertools.count(1)

    def rate_limits(self) -> Mapping[str, RateLimit]:
        return {
            "default": RateLimit(100.0, 20),
            "create": RateLimit(self.create_rate, self.create_burst),
        }

    def budgets(self, call: Call, payload: StartJobPayload | None) -> Mapping[str, int]:
        return {"create": 1, "default": 1} if call is Call.SUBMIT else {"default": 1}

    def _enter(self, op: str, arg: Any = None) -> None:
        self.log.record(op, arg)
        pending = self.faults.get(op)
        if pending:
            raise pending.pop(0)

    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        self._enter("start_job", payload)
        if self.share:
            for item in self.items.values():
                if item.info_hash == payload.info_hash:
                    return item
        remote_id = f"b{next(self._ids)}"
        item = JobStatusResponse(remote_id, JobStatus.RESOLVING, info_hash=payload.info_hash)
        self.items[remote_id] = item
        return item

    def get_status(self, remote_id: str) -> JobStatusResponse:
        self._enter("get_status", remote_id)
        if remote_id not in self.items:
            raise ProviderError(f"no item {remote_id}", self.name, code="NOT_FOUND")
        return self.items[remote_id]

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        self._enter("list_statuses", tuple(remote_ids))
        return {rid: self.items[rid] for rid in remote_ids if rid in self.items}

    def find_existing(
        self, payload: StartJobPayload, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        self._enter("find_existing", frozenset(exclude))
        for item in self.items.values():
            if item.info_hash == payload.info_hash and item.remote_id not in exclude:
                return item
        return None

    def cancel(self, remote_id: str) -> CancelJobResponse:
        self._enter("cancel", remote_id)
        gone = self.items.pop(remote_id, None) is None
        return CancelJobResponse(remote_id, already_gone=gone)

    def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
        self._enter("get_file_links", remote_id)
        return FileLinksResponse(remote_id, (), ready=False)

    def test_connection(self) -> TestConnectionResponse:
        self._enter("test_connection")
        return TestConnectionResponse(self.name, ok=True)


class RecordingScheduler(Scheduler):
    """A Scheduler that remembers every Wake it was asked to deliver, and when for."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.wakes: list[float] = []

    def schedule(self, delay: float, target: Any, message: Any) -> Any:
        if isinstance(message, Wake):
            self.wakes.append(self.clock.monotonic() + delay)
        return super().schedule(delay, target, message)


class CountingFuture(pykka.ThreadingFuture[Any]):
    """A reply future that counts how often it was answered."""

    def __init__(self) -> None:
        super().__init__()
        self.answers = 0

    def set(self, value: Any | None = None) -> None:
        self.answers += 1
        super().set(value)

    def set_exception(self, exc_info: Any = None) -> None:
        self.answers += 1
        super().set_exception(exc_info)


def payload(n: int) -> StartJobPayload:
    return parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{n:040x}&dn=item{n}"})


# -- the harness ------------------------------------------------------------------
class Harness:
    """A provider actor under test, its jobs (one collector each) and its supervisor."""

    def __init__(self, clock: FakeClock, scheduler: RecordingScheduler) -> None:
        self.clock = clock
        self.scheduler = scheduler
        self.supervisor = Inbox()
        self.supervisor_ref = Collector.start(self.supervisor)
        self.inboxes: dict[str, Inbox] = {}
        self.refs: dict[str, pykka.ActorRef[Any]] = {}
        self.actor: pykka.ActorRef[Any] | None = None
        self.book = ProviderBook()
        self.limiters: dict[str, RateLimiter] = {}
        self._requests = itertools.count(1)

    def start(
        self,
        provider: Provider,
        *,
        book: ProviderBook | None = None,
        bind: bool = True,
        **options: Any,
    ) -> pykka.ActorRef[Any]:
        if book is not None:
            self.book = book
        if bind:
            self.limiters = {
                name: RateLimiter(limit.rate, limit.burst, self.clock, name=name)
                for name, limit in provider.rate_limits().items()
            }
            provider.bind(ProviderContext(clock=self.clock, limiters=self.limiters, blocking=False))
        options.setdefault("poll_interval", 10.0)
        self.actor = ProviderActor.start(
            "test",
            provider,
            supervisor=self.supervisor_ref,
            scheduler=self.scheduler,
            book=self.book,
            limiters=self.limiters,
            **options,
        )
        return self.actor

    # -- jobs --------------------------------------------------------------------
    def job(self, job_id: str) -> pykka.ActorRef[Any]:
        if job_id not in self.refs:
            self.inboxes[job_id] = Inbox()
            self.refs[job_id] = Collector.start(self.inboxes[job_id])
        return self.refs[job_id]

    def restart_job(self, job_id: str) -> pykka.ActorRef[Any]:
        """Stop ``job_id``'s actor, as a crash would, and give the job a new one."""
        self.job(job_id).stop(block=True, timeout=TIMEOUT)
        del self.refs[job_id]
        return self.job(job_id)

    def inbox(self, job_id: str) -> Inbox:
        self.job(job_id)
        return self.inboxes[job_id]

    def tell(self, message: Any) -> None:
        assert self.actor is not None
        self.actor.tell(message)

    def submit(self, job_id: str, item: StartJobPayload) -> int:
        request_id = next(self._requests)
        self.tell(Submit(job_id, request_id, item, self.job(job_id)))
        return request_id

    def find(self, job_id: str, item: StartJobPayload) -> int:
        request_id = next(self._requests)
        self.tell(FindExisting(job_id, request_id, item, self.job(job_id)))
        return request_id

    def links(self, job_id: str, remote_id: str, item: StartJobPayload) -> int:
        request_id = next(self._requests)
        self.tell(FetchLinks(job_id, request_id, remote_id, item, self.job(job_id)))
        return request_id

    def status(self, job_id: str, remote_id: str) -> int:
        request_id = next(self._requests)
        self.tell(GetStatus(job_id, request_id, remote_id, self.job(job_id)))
        return request_id

    def track(self, job_id: str, remote_id: str, item: StartJobPayload) -> None:
        """Track, and wait until the actor has it (its first poll is due from now)."""
        self.tell(Track(job_id, remote_id, item, self.job(job_id)))
        self.describe()

    def submitted(self, job_id: str, request_id: int) -> Submitted:
        reply: Submitted = self.inbox(job_id).wait_for(
            Submitted, lambda m: m.request_id == request_id
        )
        return reply

    def replies(self, job_id: str) -> list[Any]:
        return [m for m in self.inbox(job_id).messages if hasattr(m, "request_id")]

    # -- the actor ---------------------------------------------------------------
    def describe(self) -> ProviderReport:
        """The actor's report; also a barrier: every message sent before is handled."""
        reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        self.tell(DescribeProvider(reply))
        report: ProviderReport = reply.get(timeout=TIMEOUT)
        return report

    def idle(self) -> ProviderReport:
        """Wait until nothing is queued (calls waiting for the clock never end: don't)."""
        for _ in range(10_000):
            report = self.describe()
            if not any(report.queued.values()):
                return report
        raise AssertionError(f"still queued: {report.queued}")

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def until(self, condition: Callable[[], bool]) -> None:
        """Round trips through the actor's mailbox until ``condition()`` holds (bounded)."""
        for _ in range(10_000):
            self.describe()
            if condition():
                return
        raise AssertionError("condition never held")

    def stop(self) -> None:
        for ref in [self.actor, *self.refs.values(), self.supervisor_ref]:
            if ref is not None:
                ref.stop(block=True, timeout=TIMEOUT)


def test_provider_handle_is_still_importable_from_the_provider_module() -> None:
    from actors._handle import ProviderHandle as Moved  # noqa: PLC0415

    assert ProviderHandle is Moved


# -- never blocking ------------------------------------------------------------------
def test_the_actor_answers_and_polls_while_ten_submissions_wait_for_the_creation_budget(
    h: Harness,
) -> None:
    provider = Budgeted(create_rate=1 / 60)
    h.start(provider)
    first = h.submit("j0", payload(0))
    item = h.submitted("j0", first).response
    for n in range(1, 11):
        h.submit(f"j{n}", payload(n))
    report = h.describe()
    assert report.queued["submit"] == 10
    assert set(report.waiting_for) == {"create"}
    assert report.waiting_for["create"] == pytest.approx(h.clock.time() + 60, abs=0.01)
    # A poll, a status, links and a lookup need only the general budget: they go first.
    h.track("j0", item.remote_id, payload(0))
    h.advance(10.0)
    h.inbox("j0").wait_for(StatusUpdate, lambda m: m.request_id is None)
    status = h.status("j0", item.remote_id)
    links = h.links("j0", item.remote_id, payload(0))
    find = h.find("x", payload(99))
    h.inbox("j0").wait_for(StatusUpdate, lambda m: m.request_id == status)
    h.inbox("j0").wait_for(Links, lambda m: m.request_id == links)
    h.inbox("x").wait_for(Found, lambda m: m.request_id == find)
    assert provider.log.count("start_job") == 1
    assert h.describe().queued["submit"] == 10


def test_the_creation_budget_lets_one_submission_through_per_token(h: Harness) -> None:
    provider = Budgeted(create_rate=1 / 60)
    h.start(provider)
    ids = [h.submit(f"j{n}", payload(n)) for n in range(3)]
    h.submitted("j0", ids[0])
    h.advance(59.0)
    assert h.describe().queued["submit"] == 2
    h.advance(1.0)
    h.submitted("j1", ids[1])
    assert h.describe().queued["submit"] == 1
    assert provider.log.count("start_job") == 2


# -- order of service ------------------------------------------------------------------
def test_cancels_then_polls_then_links_then_submissions(h: Harness) -> None:
    mock = RecordingMock(100.0, requests_per_second=1.0, burst=1)
    h.start(mock)
    first = h.submitted("a", h.submit("a", payload(1))).response.remote_id  # the only token
    # Queued while the bucket is empty, in the reverse order of service.
    h.submit("c", payload(2))
    h.links("b", first, payload(1))
    h.status("b", first)
    h.tell(Cleanup("a", payload(1), first, unsure=False))
    assert h.describe().queued == {"cancel": 1, "status": 1, "links": 1, "submit": 1}
    for step in range(1, 5):
        h.advance(1.0)
        mock.log.wait_total(1 + step)
    assert mock.log.ops() == ["start_job", "cancel", "get_status", "get_file_links", "start_job"]


def test_a_spent_budget_holds_back_only_the_calls_that_need_it(h: Harness) -> None:
    provider = Budgeted(create_rate=1 / 3600)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response
    h.submit("b", payload(2))  # waits an hour for "create"
    find = h.find("c", payload(3))  # queued behind it, in the same class
    h.inbox("c").wait_for(Found, lambda m: m.request_id == find)
    h.tell(Cleanup("a", payload(1), item.remote_id, unsure=False))
    provider.log.wait_count("cancel")
    assert provider.log.count("start_job") == 1


# -- waking on the clock ----------------------------------------------------------------
def test_one_wake_is_scheduled_for_the_next_token_and_fires_at_its_time(
    h: Harness, scheduler: RecordingScheduler
) -> None:
    mock = RecordingMock(100.0, requests_per_second=0.5, burst=1)
    h.start(mock)
    ids = [h.submit(f"j{n}", payload(n)) for n in range(11)]
    h.submitted("j0", ids[0])
    assert h.describe().queued["submit"] == 10
    assert scheduler.wakes == [pytest.approx(2.0)]  # one Wake, however many wait
    h.advance(1.9)
    assert h.describe().queued["submit"] == 10
    h.advance(0.1)
    h.submitted("j1", ids[1])
    assert mock.log.count("start_job") == 2
    assert h.describe().queued["submit"] == 9
    assert scheduler.wakes[-1] == pytest.approx(4.0)


# -- telling jobs why they wait -----------------------------------------------------------
def test_a_job_is_told_once_which_budget_it_waits_for_and_until_when(h: Harness) -> None:
    h.start(Budgeted(create_rate=1 / 60))
    first = h.submit("a", payload(1))
    h.submitted("a", first)
    start = h.clock.time()
    second = h.submit("b", payload(2))
    third = h.submit("c", payload(3))
    wait_b = h.inbox("b").wait_for(BudgetWait)
    assert wait_b == BudgetWait(second, Op.SUBMIT, "create", pytest.approx(start + 60))
    wait_c = h.inbox("c").wait_for(BudgetWait)
    assert wait_c == BudgetWait(third, Op.SUBMIT, "create", pytest.approx(start + 120))
    h.advance(60.0)
    h.submitted("b", second)
    h.advance(60.0)
    h.submitted("c", third)
    assert len(h.inbox("b").of(BudgetWait)) == 1
    assert len(h.inbox("c").of(BudgetWait)) == 1
    assert h.inbox("a").of(BudgetWait) == []  # no wait, nothing to tell


def test_a_short_wait_is_not_worth_a_budget_wait(h: Harness) -> None:
    mock = RecordingMock(100.0, requests_per_second=4.0, burst=1)
    h.start(mock)
    h.submitted("a", h.submit("a", payload(1)))
    second = h.submit("b", payload(2))
    h.advance(0.25)
    h.submitted("b", second)
    assert h.inbox("b").of(BudgetWait) == []


# -- cleanups -----------------------------------------------------------------------------
def test_a_cleanup_withdraws_a_queued_submission_unanswered(h: Harness) -> None:
    provider = Budgeted(create_rate=1 / 60)
    h.start(provider)
    h.submitted("a", h.submit("a", payload(1)))
    h.submit("b", payload(2))
    h.tell(Cleanup("b", payload(2), None, unsure=False))
    assert h.describe().queued["submit"] == 0
    h.advance(60.0)
    third = h.submit("c", payload(3))
    h.submitted("c", third)
    assert [p for op, p in provider.log.calls if op == "start_job"] == [payload(1), payload(3)]
    assert h.inbox("b").of(Submitted) == [] and h.inbox("b").of(CallFailed) == []
    assert h.book.is_empty() is False  # a and c still own their items
    assert "b" not in h.book.jobs


def test_cleanup_of_an_unsure_job_looks_the_payload_up_and_deletes_the_find(
    h: Harness,
) -> None:
    mock = RecordingMock(100.0)
    h.start(mock)
    landed = mock.start_job(payload(1))  # the answer never reached the job
    h.tell(Cleanup("a", payload(1), None, unsure=True))
    mock.log.wait_count("cancel")
    h.idle()
    assert ("cancel", landed.remote_id) in mock.log.calls
    assert mock.find_existing(payload(1)) is None
    assert h.book.is_empty()


def test_a_submission_that_timed_out_makes_the_later_cleanup_look_up(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    landed = provider.start_job(payload(1))  # made remotely, as a timed-out request may be
    provider.faults["start_job"] = [
        ProviderError("timed out", "budgeted", code="TIMEOUT", retryable=True)
    ]
    request = h.submit("a", payload(1))
    failed = h.inbox("a").wait_for(CallFailed)
    assert (failed.request_id, failed.op, failed.error.code) == (request, Op.SUBMIT, "TIMEOUT")
    assert "a" in h.book.unsure
    h.tell(Cleanup("a", payload(1), None, unsure=False))  # the job did not know
    provider.log.wait_count("cancel")
    h.idle()
    assert ("cancel", landed.remote_id) in provider.log.calls
    assert h.book.is_empty()


def test_a_refused_submission_is_not_unsure(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    provider.faults["start_job"] = [
        ProviderError("full", "budgeted", code="ACTIVE_LIMIT", retryable=True)
    ]
    h.submit("a", payload(1))
    h.inbox("a").wait_for(CallFailed)
    h.tell(Cleanup("a", payload(1), None, unsure=False))
    h.idle()
    assert provider.log.count("find_existing") == 0
    assert h.book.is_empty()


def test_a_failed_delete_is_retried_with_backoff_then_done(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response
    provider.faults["cancel"] = [
        ProviderError("down", "budgeted", code="PROVIDER_UNAVAILABLE", retryable=True)
    ] * 2
    h.tell(Cleanup("a", payload(1), item.remote_id, unsure=False))
    provider.log.wait_count("cancel")
    assert h.idle() and h.book.deletes == {item.remote_id: 1}
    h.advance(4.9)
    assert provider.log.count("cancel") == 1
    h.advance(0.1)  # 5 s after the first failure
    provider.log.wait_count("cancel", 2)
    h.idle()  # its retry is scheduled before the clock moves on
    h.advance(10.0)  # then 10 s
    provider.log.wait_count("cancel", 3)
    h.idle()
    assert item.remote_id not in provider.items
    assert h.book.is_empty()


def test_a_delete_of_an_item_already_gone_counts_as_done(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response
    provider.faults["cancel"] = [ProviderError("gone", "budgeted", code="NOT_FOUND")]
    h.tell(Cleanup("a", payload(1), item.remote_id, unsure=False))
    provider.log.wait_count("cancel")
    h.idle()
    assert h.book.is_empty()


# -- ownership ------------------------------------------------------------------------
def test_a_lookup_never_hands_a_job_an_item_another_job_owns(h: Harness) -> None:
    mock = RecordingMock(100.0)
    h.start(mock)
    mine = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    other = h.find("b", payload(1))
    assert h.inbox("b").wait_for(Found, lambda m: m.request_id == other).response is None
    own = h.find("a", payload(1))  # a job finds its own item
    found = h.inbox("a").wait_for(Found, lambda m: m.request_id == own).response
    assert found is not None and found.remote_id == mine
    excludes = [arg for op, arg in mock.log.calls if op == "find_existing"]
    assert excludes == [frozenset({mine}), frozenset()]


def test_a_provider_without_exclude_still_never_hands_out_an_owned_item(h: Harness) -> None:
    class OldFind(Budgeted):
        def find_existing(self, payload: StartJobPayload) -> JobStatusResponse | None:  # type: ignore[override]
            return super().find_existing(payload)

    provider = OldFind(create_rate=10.0)
    h.start(provider)
    h.submitted("a", h.submit("a", payload(1)))
    other = h.find("b", payload(1))
    assert h.inbox("b").wait_for(Found, lambda m: m.request_id == other).response is None
    assert h.book.owners.keys() == {"b1"}


def test_two_jobs_sharing_one_item_are_both_polled_and_it_is_deleted_after_both(
    h: Harness,
) -> None:
    provider = Budgeted(create_rate=10.0, share=True)
    h.start(provider)
    first = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.advance(1.0)
    second = h.submitted("b", h.submit("b", payload(1))).response.remote_id
    assert first == second
    h.track("a", first, payload(1))
    h.track("b", first, payload(1))
    h.advance(10.0)
    for job in ("a", "b"):
        update = h.inbox(job).wait_for(StatusUpdate, lambda m: m.request_id is None)
        assert update.response.remote_id == first
    assert provider.log.count("list_statuses") == 1
    h.tell(Cleanup("a", payload(1), first, unsure=False))
    report = h.idle()
    assert report.queued["cancel"] == 0 and provider.log.count("cancel") == 0
    assert h.book.owners == {first: {"b"}}
    h.tell(Cleanup("b", payload(1), first, unsure=False))
    provider.log.wait_count("cancel")
    h.idle()
    assert provider.items == {}
    assert h.book.is_empty()


def test_release_stops_polling_and_keeps_the_item(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.track("a", item, payload(1))
    assert h.describe().tracked == 1
    h.tell(Release("a", item))
    assert h.describe().tracked == 0
    h.advance(10.0)
    h.tell(Cleanup("z", payload(9), None, unsure=False))  # nothing to do: a barrier
    h.idle()
    assert provider.log.count("list_statuses") == 0
    assert provider.log.count("cancel") == 0
    assert item in provider.items
    assert h.book.is_empty()


def test_adopted_owners_keep_their_items_out_of_lookups(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    landed = provider.start_job(payload(1))
    h.start(provider)
    h.tell(Adopt([("a", landed.remote_id)]))
    request = h.find("b", payload(1))
    assert h.inbox("b").wait_for(Found, lambda m: m.request_id == request).response is None
    assert h.describe().tracked == 0  # no polling until the job tracks it


class Moving(Budgeted):
    """A service whose items move: a poll answers for ``<id>-started``, in ``status``."""

    def __init__(self, status: JobStatus, **options: Any) -> None:
        super().__init__(**options)
        self.status = status

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        self.log.record("list_statuses", tuple(remote_ids))
        return {rid: JobStatusResponse(f"{rid}-started", self.status)
                for rid in remote_ids if not rid.endswith("-started")}


def test_an_item_that_moved_takes_its_owners_and_pollers_along(h: Harness) -> None:
    provider = Moving(JobStatus.RESOLVING, create_rate=10.0)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.track("a", item, payload(1))
    h.advance(10.0)
    update = h.inbox("a").wait_for(StatusUpdate)
    assert update.response.remote_id == f"{item}-started"
    h.describe()
    assert h.book.owners == {f"{item}-started": {"a"}}
    assert h.book.jobs == {"a": {f"{item}-started"}}
    assert set(h.book.tracked) == {f"{item}-started"}


# -- polling ----------------------------------------------------------------------------
def test_an_item_missing_from_three_polls_and_not_found_fails_every_owner(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0, share=True)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.advance(1.0)
    h.submitted("b", h.submit("b", payload(1)))
    for job in ("a", "b"):
        h.track(job, item, payload(1))
    del provider.items[item]  # deleted on the website
    for poll in range(1, 4):
        h.advance(10.0)
        provider.log.wait_count("list_statuses", poll)
        h.describe()  # the next poll is scheduled before the clock moves on
    provider.log.wait_count("get_status")
    for job in ("a", "b"):
        gone = h.inbox(job).wait_for(StatusUpdate)
        assert (gone.response.status, gone.response.error_code) == (
            JobStatus.FAILED,
            "REMOTE_GONE",
        )
    h.describe()
    assert item not in h.book.tracked and item not in h.book.misses
    assert item not in h.book.owners


def test_a_poll_forgets_dead_job_actors_and_their_miss_counts(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.track("a", item, payload(1))
    del provider.items[item]
    h.advance(10.0)
    provider.log.wait_count("list_statuses")
    assert h.describe() and h.book.misses == {item: 1}
    h.refs["a"].stop(block=True, timeout=TIMEOUT)
    h.advance(10.0)
    h.track("c", "other", payload(2))  # keeps polling going
    h.advance(10.0)
    provider.log.wait_count("list_statuses", 2)
    h.describe()
    assert item not in h.book.tracked and item not in h.book.misses
    h.tell(Release("a", item))
    h.tell(Release("c", "other"))
    h.describe()
    assert h.book.is_empty()


# -- pauses -----------------------------------------------------------------------------
@pytest.mark.parametrize("retry_after", [1e400, math.inf, 99_999_999.0])
def test_a_huge_retry_after_is_capped_and_the_actor_keeps_working(
    h: Harness, retry_after: float, caplog: pytest.LogCaptureFixture
) -> None:
    mock = RecordingMock(100.0, requests_per_second=10.0, burst=5)
    h.start(mock, max_pause=30.0)
    mock.inject("rate_limit", op="start_job", retry_after=retry_after)
    with caplog.at_level(logging.WARNING, logger="debrid.actors.provider"):
        h.submit("a", payload(1))
        failed = h.inbox("a").wait_for(CallFailed)
    assert failed.error.retry_after == retry_after  # the job's retry policy caps its own
    assert any("retry_after_capped" in r.getMessage() for r in caplog.records)
    report = h.describe()
    assert report.paused_until["default"] == pytest.approx(h.clock.time() + 30.0, abs=0.01)
    second = h.submit("b", payload(2))
    assert h.inbox("b").wait_for(BudgetWait).until == pytest.approx(h.clock.time() + 30.1, abs=0.01)
    h.advance(30.1)
    h.submitted("b", second)


def test_429s_without_retry_after_pause_briefly_then_longer_each_in_a_row(h: Harness) -> None:
    """Finding 13 of issue 10: one hint-less 429 cost a flat minute. Now 2 s, doubling
    with each one in a row (up to a minute), from 2 s again once a call works."""
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    slow_down = ProviderError("slow down", "budgeted", code="RATE_LIMITED", http_status=429)
    provider.faults["get_status"] = [slow_down, slow_down]
    pauses = []
    for _ in range(2):
        h.status("a", "b1")
        h.inbox("a").wait_for(CallFailed, count=len(pauses) + 1)
        report = h.describe()
        # Only the buckets the refused call took from: a status read never holds
        # back creations.
        assert set(report.paused_until) == {"default"}
        pauses.append(report.paused_until["default"] - h.clock.time())
        h.advance(pauses[-1] + 0.5)
    assert pauses == [pytest.approx(2.0, abs=0.01), pytest.approx(4.0, abs=0.01)]
    provider.items["b1"] = JobStatusResponse("b1", JobStatus.RESOLVING)
    h.status("a", "b1")
    h.inbox("a").wait_for(StatusUpdate)
    provider.faults["get_status"] = [slow_down]
    h.status("a", "b1")
    h.inbox("a").wait_for(CallFailed, count=3)
    assert h.describe().paused_until["default"] - h.clock.time() == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize(
    "code", ["ACTIVE_LIMIT", "COOLDOWN_LIMIT", "SEEDING_LIMIT", "PROVIDER_UNAVAILABLE"]
)
def test_a_hint_that_is_not_a_rate_limit_pauses_no_bucket(h: Harness, code: str) -> None:
    """A slot refusal or a cooldown concerns submissions (the supervisor holds them
    back); a 503 with a hint spaces that call's own retry. Polls, links and cancels
    of the provider go on at once."""
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    provider.faults["start_job"] = [
        ProviderError("wait", "budgeted", code=code, retryable=True, retry_after=120.0)
    ]
    h.submit("a", payload(1))
    assert h.inbox("a").wait_for(CallFailed).error.retry_after == 120.0
    assert h.describe().paused_until == {}
    h.advance(1.0)  # a creation token (10 a second), far short of the 120 s hint
    second = h.submit("b", payload(2))
    if code == "PROVIDER_UNAVAILABLE":
        h.submitted("b", second)  # only that call's own retry was spaced
        return
    # A refusal of the account answers the next submissions too, unsent, while it
    # holds; nothing else waits: a status read goes out at once.
    assert h.inbox("b").wait_for(CallFailed).error.code == code
    assert provider.log.count("start_job") == 1
    h.status("c", "b9")
    assert h.inbox("c").wait_for(CallFailed).error.code == "NOT_FOUND"
    assert provider.log.count("get_status") == 1


# -- crashes and restarts ------------------------------------------------------------------
def test_a_crash_mid_call_answers_the_job_and_a_new_incarnation_resumes_the_cleanups(
    h: Harness,
) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    provider.faults["cancel"] = [
        ProviderError("down", "budgeted", code="PROVIDER_UNAVAILABLE", retryable=True)
    ]
    h.tell(Cleanup("a", payload(1), item, unsure=False))
    provider.log.wait_count("cancel")
    provider.faults["start_job"] = [RuntimeError("a bug in the provider")]
    h.advance(1.0)  # a creation token for b
    request = h.submit("b", payload(2))
    failed = h.inbox("b").wait_for(CallFailed)
    assert (failed.request_id, failed.op) == (request, Op.SUBMIT)
    assert (failed.error.code, failed.error.retryable) == ("PROVIDER_CRASHED", True)
    crash = h.supervisor.wait_for(ChildFailed)
    assert (crash.key, crash.urn) == ("test", str(h.actor.actor_urn if h.actor else ""))
    assert "b" in h.book.unsure
    assert h.book.deletes == {item: 1}
    # The supervisor starts a new incarnation with the same book and buckets.
    h.start(provider, book=h.book, bind=False)
    provider.log.wait_count("cancel", 2)
    h.tell(Cleanup("b", payload(2), None, unsure=False))  # unsure: looks up, finds nothing
    provider.log.wait_count("find_existing")
    h.idle()
    assert item not in provider.items
    assert h.book.is_empty()


def test_the_supervisor_hears_the_slot_limit_after_the_first_submission(h: Harness) -> None:
    mock = RecordingMock(100.0, max_active=7)
    h.start(mock)
    h.submitted("a", h.submit("a", payload(1)))
    assert h.supervisor.wait_for(SlotLimit) == SlotLimit("test", 7)


# -- TestConnection and DescribeProvider ----------------------------------------------------
def test_test_connection_is_answered_exactly_once_in_every_case(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    fine = CountingFuture()
    h.tell(TestConnection(fine))
    assert fine.get(timeout=TIMEOUT).ok
    provider.faults["test_connection"] = [ProviderError("nope", "budgeted", code="BAD_TOKEN")]
    refused = CountingFuture()
    h.tell(TestConnection(refused))
    with pytest.raises(ProviderError, match="BAD_TOKEN"):
        refused.get(timeout=TIMEOUT)
    provider.faults["test_connection"] = [RuntimeError("bug")]
    crashed = CountingFuture()
    h.tell(TestConnection(crashed))
    with pytest.raises(ProviderError, match="PROVIDER_CRASHED"):
        crashed.get(timeout=TIMEOUT)
    h.supervisor.wait_for(ChildFailed)
    assert (fine.answers, refused.answers, crashed.answers) == (1, 1, 1)


def test_test_connections_waiting_when_the_actor_stops_get_engine_not_running(
    h: Harness,
) -> None:
    mock = RecordingMock(100.0, requests_per_second=0.01, burst=1)
    h.start(mock)
    first, second, third = CountingFuture(), CountingFuture(), CountingFuture()
    h.tell(TestConnection(first))
    assert first.get(timeout=TIMEOUT).ok
    h.tell(TestConnection(second))
    assert h.describe().queued["cancel"] == 1
    assert h.actor is not None
    h.actor.stop(block=True, timeout=TIMEOUT)
    with pytest.raises(EngineNotRunning):
        second.get(timeout=TIMEOUT)
    with pytest.raises(pykka.ActorDeadError):
        h.tell(TestConnection(third))
    assert (first.answers, second.answers) == (1, 1)


def test_describe_provider_reports_queues_budgets_and_tracking(h: Harness) -> None:
    provider = Budgeted(create_rate=1 / 60)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.track("a", item, payload(1))
    h.submit("b", payload(2))
    report = h.describe()
    assert report.name == "test"
    assert report.queued == {"cancel": 0, "status": 0, "links": 0, "submit": 1}
    assert report.waiting_for == {"create": pytest.approx(h.clock.time() + 60, abs=0.01)}
    assert report.paused_until == {}
    assert report.tracked == 1
    assert report.slot_limit is None
    assert report.last_error is None


def test_an_unexpected_message_is_logged_not_fatal(h: Harness) -> None:
    h.start(Budgeted())
    h.tell("what?")
    h.tell(PollTick(12345))  # a stale tick
    h.tell(Wake(12345))  # a stale wake
    assert h.describe().name == "test"


# -- bookkeeping ---------------------------------------------------------------------------
def test_the_book_is_empty_once_every_job_is_released_or_cleaned_up(h: Harness) -> None:
    provider = Budgeted(create_rate=100.0, create_burst=20)
    h.start(provider)
    items: dict[str, str] = {}
    for n in range(20):
        job = f"j{n}"
        items[job] = h.submitted(job, h.submit(job, payload(n))).response.remote_id
        h.track(job, items[job], payload(n))
    h.advance(10.0)
    provider.log.wait_count("list_statuses")
    for n, (job, remote_id) in enumerate(items.items()):
        if n % 2:
            h.tell(Release(job, remote_id))
        else:
            h.tell(Cleanup(job, payload(n), remote_id, unsure=n % 4 == 0))
    provider.log.wait_count("cancel", 10)
    h.idle()
    assert h.book.is_empty(), h.book
    assert len(provider.items) == 10  # the released ones stay
    h.advance(10.0)
    h.describe()
    assert provider.log.count("list_statuses") == 1  # nothing tracked: no more polls


def test_a_bucket_in_debt_from_an_http_provider_makes_the_next_call_wait(
    h: Harness,
) -> None:
    """HTTP providers take their own tokens (``limits_requests``): the actor only checks."""

    class Http(Budgeted):
        limits_requests = True

        def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
            for _ in range(3):  # three requests, as Real-Debrid's first submission
                self.context.limiters["default"].take()
            return super().start_job(payload)

        def rate_limits(self) -> Mapping[str, RateLimit]:
            return {"default": RateLimit(1.0, 1)}

        def budgets(self, call: Call, payload: StartJobPayload | None) -> Mapping[str, int]:
            return {"default": 1}

    provider = Http()
    h.start(provider)
    h.submitted("a", h.submit("a", payload(1)))
    second = h.submit("b", payload(2))
    assert h.describe().waiting_for == {"default": pytest.approx(h.clock.time() + 3.0, abs=0.01)}
    h.advance(3.0)
    h.submitted("b", second)
    assert h.limiters["default"].granted == 6



# -- over real sockets: TorBox's creation budget ---------------------------------------------
def test_torbox_submissions_past_the_creation_burst_wait_in_line_while_polls_go_on(
    h: Harness, clock: FakeClock
) -> None:
    from engine.testing.torbox import FakeTorBox  # noqa: PLC0415
    from providers.torbox import RATE_LIMITS, TorBoxProvider  # noqa: PLC0415

    fake = FakeTorBox(clock=clock)
    fake.settings.active_limit = 1000
    fake.start()
    provider = TorBoxProvider(**fake.provider_options())
    try:
        h.start(provider)  # bound with blocking=False: requests take tokens at once
        burst = RATE_LIMITS["create"].burst
        ids = [h.submit(f"j{n}", payload(n)) for n in range(burst + 2)]
        first = h.submitted("j0", ids[0]).response.remote_id
        for n in range(1, burst):
            h.submitted(f"j{n}", ids[n])
        report = h.describe()
        assert report.queued["submit"] == 2
        assert set(report.waiting_for) == {"create"}
        wait = h.inbox(f"j{burst}").wait_for(BudgetWait)
        assert wait.budget == "create"
        assert wait.until == pytest.approx(clock.time() + 1 / RATE_LIMITS["create"].rate, abs=1.0)
        h.track("j0", first, payload(0))
        h.advance(10.0)
        update = h.inbox("j0").wait_for(StatusUpdate, lambda m: m.request_id is None)
        assert update.response.remote_id == first
        assert h.describe().queued["submit"] == 2
        assert len(fake.items("torrent")) == burst
        h.advance(1 / RATE_LIMITS["create"].rate)
        h.submitted(f"j{burst}", ids[burst])
        assert fake.hash_counts() and max(fake.hash_counts().values()) == 1
    finally:
        h.stop()
        provider.close()
        fake.stop()


def test_a_cleanup_still_in_the_mailbox_when_the_actor_crashes_is_done_by_the_next(
    h: Harness,
) -> None:
    class Gate(Budgeted):
        """start_job of payload 2 waits for the test, then crashes."""

        def __init__(self) -> None:
            super().__init__(create_rate=10.0)
            self.release = threading.Event()

        def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
            if payload == payload_two:
                self.log.record("start_job", payload)
                assert self.release.wait(TIMEOUT)
                raise RuntimeError("a bug in the provider")
            return super().start_job(payload)

    payload_two = payload(2)
    provider = Gate()
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.advance(1.0)
    h.submit("b", payload_two)
    provider.log.wait_count("start_job", 2)  # the actor is inside the call that will crash
    h.tell(Cleanup("a", payload(1), item, unsure=False))  # waits in the mailbox
    h.tell(Track("c", "c-item", payload(3), h.job("c")))
    provider.release.set()
    h.supervisor.wait_for(ChildFailed)
    assert h.book.deletes == {item: 0}
    assert h.book.owners.get("c-item") == {"c"}
    h.start(provider, book=h.book, bind=False)
    provider.log.wait_count("cancel")
    h.idle()
    assert item not in provider.items
    assert h.book.deletes == {}


def test_a_job_sharing_an_item_may_find_it_again(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0, share=True)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.advance(1.0)
    h.submitted("b", h.submit("b", payload(1)))
    request = h.find("a", payload(1))  # after a restart of a's actor, say
    found = h.inbox("a").wait_for(Found, lambda m: m.request_id == request).response
    assert found is not None and found.remote_id == item
    stranger = h.find("c", payload(1))
    assert h.inbox("c").wait_for(Found, lambda m: m.request_id == stranger).response is None


def test_polls_faster_than_the_budget_refills_do_not_starve_the_calls_below_them(
    h: Harness,
) -> None:
    class Costly(Budgeted):
        def rate_limits(self) -> Mapping[str, RateLimit]:
            return {"default": RateLimit(4.0, 5)}  # Real-Debrid's

        def budgets(self, call: Call, payload: StartJobPayload | None) -> Mapping[str, int]:
            return {"default": 2 if call is Call.LINKS else 1}

    provider = Costly()
    h.start(provider, poll_interval=0.2)  # 5 polls a second against 4 tokens
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.track("a", item, payload(1))

    def run(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        for _ in range(round(seconds / 0.01)):  # a hundredth of a second at a time
            if until():
                return
            h.advance(0.01)
            h.describe()

    run(8.0)  # polls alone, long enough to spend the burst
    start, polls = h.clock.monotonic(), provider.log.count("list_statuses")
    request = h.links("a", item, payload(1))
    run(5.0, lambda: bool(h.inbox("a").of(Links)))
    assert h.inbox("a").of(Links, lambda m: m.request_id == request)
    assert h.clock.monotonic() - start <= 1.0
    # The polls went on meanwhile, at most half the budget's rate: one each half second.
    run(2.0)
    polls = provider.log.count("list_statuses") - polls
    assert 2 <= polls <= (h.clock.monotonic() - start) / 0.5 + 1


# -- a crashed job's calls ------------------------------------------------------------------
def test_a_queued_call_of_a_dead_asker_is_dropped_so_a_restarted_job_submits_once(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    provider = Budgeted(create_rate=1 / 3600)
    h.start(provider)
    h.submitted("j1", h.submit("j1", payload(1)))  # spends the creation token
    h.submit("j2", payload(2))  # waits an hour for the next one
    assert h.describe().queued["submit"] == 1
    h.restart_job("j2")  # its actor crashed; the new one looks before it submits
    find = h.find("j2", payload(2))
    assert h.inbox("j2").wait_for(Found, lambda m: m.request_id == find).response is None
    submit = h.submit("j2", payload(2))
    with caplog.at_level(logging.INFO, logger="debrid.actors.provider"):
        h.advance(3600.0)
        provider.log.wait_count("start_job", 2)
        h.describe()  # the next Wake is scheduled before the clock moves on
        h.advance(3600.0)
        submitted = h.submitted("j2", submit)
        h.idle()
    assert provider.log.count("start_job") == 2
    assert h.book.jobs["j2"] == {submitted.response.remote_id}
    assert any("call_dropped_dead_asker" in r.getMessage() for r in caplog.records)


# -- what a cleanup may delete ---------------------------------------------------------------
def test_an_unsure_cleanup_never_deletes_the_item_a_completed_job_released(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    item = h.submitted("j", h.submit("j", payload(1))).response.remote_id
    h.track("j", item, payload(1))
    h.tell(Release("j", item))  # j completed on it
    h.tell(Cleanup("k", payload(1), None, unsure=True))  # same magnet, cancelled while unsure
    provider.log.wait_count("find_existing")
    h.idle()
    assert provider.log.count("cancel") == 0
    assert item in provider.items
    excludes = [arg for op, arg in provider.log.calls if op == "find_existing"]
    assert excludes == [frozenset({item})]


@pytest.mark.parametrize("completed", [False, True])
def test_a_lookup_left_by_an_earlier_attempt_spares_the_item_of_a_later_attempt(
    h: Harness, completed: bool
) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    provider.faults["find_existing"] = [
        ProviderError("down", "budgeted", code="PROVIDER_UNAVAILABLE", retryable=True)
    ]
    h.tell(Cleanup("j", payload(1), None, unsure=True))  # attempt 1 ends unsure
    provider.log.wait_count("find_existing")
    h.idle()  # the lookup is tried again in 5 s
    item = h.submitted("j", h.submit("j", payload(1))).response.remote_id  # attempt 2
    if completed:
        h.tell(Release("j", item))
    h.advance(5.0)
    provider.log.wait_count("find_existing", 2)
    h.idle()
    assert provider.log.count("cancel") == 0
    assert item in provider.items
    assert h.book.lookups == {}


@pytest.mark.parametrize("completed", [False, True])
def test_a_delete_a_lookup_asked_for_spares_an_item_a_job_took_meanwhile(
    h: Harness, completed: bool
) -> None:
    provider = Budgeted(create_rate=10.0, share=True)
    h.start(provider)
    landed = provider.start_job(payload(1)).remote_id  # k's submission landed, unanswered
    provider.faults["cancel"] = [
        ProviderError("down", "budgeted", code="PROVIDER_UNAVAILABLE", retryable=True)
    ]
    h.tell(Cleanup("k", payload(1), None, unsure=True))
    provider.log.wait_count("cancel")  # the lookup found it; the delete failed, retried in 5 s
    h.idle()
    assert h.book.deletes == {landed: 1}
    # m submits the same magnet: the service hands it that item (Real-Debrid's code 33).
    assert h.submitted("m", h.submit("m", payload(1))).response.remote_id == landed
    if completed:
        h.tell(Release("m", landed))
    h.advance(5.0)
    # The retry's timer fires on the scheduler's thread: wait for its outcome.
    h.until(lambda: not h.book.deletes)
    h.advance(10.0)
    h.idle()
    assert provider.log.count("cancel") == 1
    assert landed in provider.items
    assert h.book.deletes == {}


# -- replies of a dying actor -------------------------------------------------------------------
@pytest.mark.parametrize("end", ["crash", "stop"])
def test_requests_still_in_the_mailbox_are_answered_when_the_actor_ends(
    h: Harness, end: str
) -> None:
    class Gate(Budgeted):
        """test_connection waits for the test, then crashes or answers."""

        def __init__(self) -> None:
            super().__init__(create_rate=10.0)
            self.entered = threading.Event()
            self.go = threading.Event()

        def test_connection(self) -> TestConnectionResponse:
            self.entered.set()
            assert self.go.wait(TIMEOUT)
            if end == "crash":
                raise RuntimeError("a bug in the provider")
            return super().test_connection()

    provider = Gate()
    actor = h.start(provider)
    running = CountingFuture()
    h.tell(TestConnection(running))
    assert provider.entered.wait(TIMEOUT)  # the actor is inside the call
    if end == "stop":
        actor.stop(block=False)
    describe, test = CountingFuture(), CountingFuture()
    h.tell(DescribeProvider(describe))
    h.tell(TestConnection(test))
    provider.go.set()
    for waiting in (describe, test):
        with pytest.raises(EngineNotRunning):
            waiting.get(timeout=TIMEOUT)
    if end == "crash":
        h.supervisor.wait_for(ChildFailed)
    assert (running.answers, describe.answers, test.answers) == (1, 1, 1)


def test_inject_crash_kills_the_provider_actor_and_the_supervisor_hears_of_it(
    h: Harness,
) -> None:
    actor = h.start(Budgeted())
    h.tell(InjectCrash())
    crash = h.supervisor.wait_for(ChildFailed)
    assert (crash.key, crash.urn) == ("test", str(actor.actor_urn))
    assert "injected crash in provider actor test" in crash.error
    actor.actor_stopped.wait(TIMEOUT)
    assert not actor.is_alive()


# -- releases ------------------------------------------------------------------------------------
def test_a_release_for_a_job_that_no_longer_owns_the_item_is_harmless(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0, share=True)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.advance(1.0)
    h.submitted("b", h.submit("b", payload(1)))  # shares it
    h.track("b", item, payload(1))
    h.tell(Cleanup("a", payload(1), item, unsure=False))  # b keeps it
    h.tell(Release("a", item))  # late, for a job that owns nothing any more
    h.tell(Release("never", item))  # for a job that never owned it
    h.tell(Release("never", "unknown"))
    report = h.idle()
    assert h.book.owners == {item: {"b"}} and h.book.jobs == {"b": {item}}
    assert report.tracked == 1 and set(h.book.tracked[item]) == {"b"}
    assert provider.log.count("cancel") == 0
    h.advance(10.0)
    h.inbox("b").wait_for(StatusUpdate, lambda m: m.request_id is None)  # still polled


def test_a_release_naming_the_id_an_item_had_before_it_moved_frees_the_job(
    h: Harness,
) -> None:
    provider = Moving(JobStatus.COMPLETED, create_rate=10.0)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.track("a", item, payload(1))
    h.advance(10.0)
    h.inbox("a").wait_for(StatusUpdate)
    h.tell(Release("a", item))  # the job completed before it heard of the move
    h.describe()
    assert "a" not in h.book.jobs and h.book.owners == {} and h.book.tracked == {}
    assert h.book.is_empty()


# -- the book's indexes ------------------------------------------------------------------------
class _CountingDict(dict[str, Any]):
    """A dict that counts how often it was walked through."""

    walks = 0

    def __iter__(self) -> Iterator[str]:
        type(self).walks += 1
        return super().__iter__()

    def items(self) -> Any:
        type(self).walks += 1
        return super().items()

    def keys(self) -> Any:
        type(self).walks += 1
        return super().keys()

    def values(self) -> Any:
        type(self).walks += 1
        return super().values()


def test_forgetting_a_job_reads_only_that_jobs_items() -> None:
    _CountingDict.walks = 0
    book = ProviderBook(tracked=_CountingDict(), owners=_CountingDict())
    ref: Any = object()
    for n in range(1000):
        book.own(f"j{n}", f"r{n}")
        book.track(f"j{n}", f"r{n}", ref)
    walks = _CountingDict.walks
    for n in range(0, 1000, 2):
        assert book.forget_job(f"j{n}") == {f"r{n}"}
    assert _CountingDict.walks == walks
    assert len(book.tracked) == len(book.owners) == 500


_JOBS = st.sampled_from(["j0", "j1", "j2", "j3"])
_REMOTES = st.sampled_from(["r0", "r1", "r2", "r3", "r4"])
_STEPS = st.one_of(
    st.tuples(st.just("own"), _JOBS, _REMOTES),
    st.tuples(st.just("disown"), _JOBS, _REMOTES),
    st.tuples(st.just("track"), _JOBS, _REMOTES),
    st.tuples(st.just("untrack"), _JOBS, _REMOTES),
    st.tuples(st.just("release"), _JOBS, _REMOTES),
    st.tuples(st.just("cleanup"), _JOBS, st.none()),
    st.tuples(st.just("unsure"), _JOBS, st.none()),
    st.tuples(st.just("miss"), st.none(), _REMOTES),
    st.tuples(st.just("gone"), st.none(), _REMOTES),
    st.tuples(st.just("delete"), st.none(), _REMOTES),
    st.tuples(st.just("move"), _REMOTES, _REMOTES),
)


def _check_book(book: ProviderBook) -> None:
    """Every index of ``book`` agrees with the others."""
    for remote_id, owners in book.owners.items():
        assert owners, remote_id
        assert all(remote_id in book.jobs.get(job, ()) for job in owners)
    for job_id, owned in book.jobs.items():
        assert owned, job_id
        assert all(job_id in book.owners.get(rid, ()) for rid in owned)
    for remote_id, pollers in book.tracked.items():
        assert pollers, remote_id
        assert all(remote_id in book.polled.get(job, ()) for job in pollers)
    for job_id, polled in book.polled.items():
        assert polled, job_id
        assert all(job_id in book.tracked.get(rid, {}) for rid in polled)
    assert book.misses.keys() <= book.tracked.keys()
    assert len(book.released) <= book.released_limit
    # What a lookup may not find: the same whether asked one by one or listed.
    known = {*book.owners, *book.deletes, *book.released, *book.tracked}
    for job_id in (None, *book.jobs):
        view = book.owned_by_others(job_id)
        listed = list(view)
        assert len(listed) == len(set(listed)) == len(view)
        assert set(listed) == {rid for rid in known if rid in view}


@settings(max_examples=300, deadline=None)
@given(st.lists(_STEPS, max_size=40))
def test_the_books_indexes_agree_after_every_step(steps: list[tuple[Any, Any, Any]]) -> None:
    book = ProviderBook(released_limit=3)
    ref: Any = object()
    for op, a, b in steps:
        match op:
            case "own":
                book.own(a, b)
            case "disown":
                book.disown(a, b)
            case "track":
                book.track(a, b, ref)
            case "untrack":
                book.untrack(a, b)
            case "release":
                book.release_job(a, b)
                assert b in book.released
            case "cleanup":
                book.forget_job(a)
            case "unsure":
                book.unsure.add(a)
            case "miss":
                if b in book.tracked:
                    book.misses[b] = book.misses.get(b, 0) + 1
            case "delete":
                book.deletes.setdefault(b, 0)
            case "gone":
                book.forget_remote(b)
                assert b not in book.owners and b not in book.tracked
            case "move":
                if a != b:
                    book.move(a, b)
        _check_book(book)
        if op in ("cleanup", "release"):
            assert a not in book.jobs and a not in book.polled and a not in book.unsure
            assert all(a not in owners for owners in book.owners.values())
            assert all(a not in pollers for pollers in book.tracked.values())


def test_the_record_of_released_items_keeps_the_newest() -> None:
    book = ProviderBook(released_limit=2)
    for n in range(5):
        book.release_job(f"j{n}", f"r{n}")
    assert list(book.released) == ["r3", "r4"]
    book.release_job("j9", "r3")  # seen again: the newest now
    book.release_job("j8", "r5")
    assert list(book.released) == ["r3", "r5"]


def test_a_job_looking_for_its_lost_submission_never_finds_a_completed_twins_item(
    h: Harness,
) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    twin = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.tell(Release("a", twin))  # a completed on it
    own = provider.start_job(payload(1)).remote_id  # b's submission landed; its answer was lost
    request = h.find("b", payload(1))
    found = h.inbox("b").wait_for(Found, lambda m: m.request_id == request).response
    assert found is not None and found.remote_id == own
    assert h.book.jobs == {"b": {own}}


def test_a_job_sharing_an_item_a_completed_job_released_may_find_it_again(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0, share=True)
    h.start(provider)
    item = h.submitted("a", h.submit("a", payload(1))).response.remote_id
    h.advance(1.0)
    h.submitted("b", h.submit("b", payload(1)))  # the service hands b the same item
    h.tell(Release("a", item))
    request = h.find("b", payload(1))  # after a restart of b's actor, say
    found = h.inbox("b").wait_for(Found, lambda m: m.request_id == request).response
    assert found is not None and found.remote_id == item
    stranger = h.find("c", payload(1))
    assert h.inbox("c").wait_for(Found, lambda m: m.request_id == stranger).response is None


# -- the refusal hold (found in review, each failed before its fix) ----------------------
class _TickingClock:
    """A monotonic clock that moves on at every read, as real time does."""

    def __init__(self, start: float) -> None:
        self.t = start

    def monotonic(self) -> float:
        self.t += 0.0001
        return self.t


def test_a_hold_ending_while_a_submission_is_looked_at_does_not_fail_the_actor() -> None:
    """The hold was read twice (the guard, then the body): ending between the two
    raised AssertionError outside any handler, so the Submit went unanswered."""
    actor = object.__new__(ProviderActor)
    actor.scheduler = types.SimpleNamespace(clock=_TickingClock(99.9999))  # type: ignore[assignment]
    error = ProviderError("full", "p", code="ACTIVE_LIMIT", retryable=True)
    actor._refusal = (error, 100.00005)  # ends between the first read and a second one
    actor._hold = None
    told: list[Any] = []
    actor._tell = lambda ref, message: told.append(message)  # type: ignore[method-assign]
    actor._request = lambda *args: told.append("sent")  # type: ignore[method-assign]
    actor._run(Submit("j", 1, payload(1), object()), {})  # type: ignore[arg-type]
    assert len(told) == 1  # answered once: held, or sent


def refused_once(h: Harness, code: str, hint: float) -> Budgeted:
    """A provider actor whose first submission (job "a") was refused with ``code``."""
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    provider.faults["start_job"] = [
        ProviderError("full", "budgeted", code=code, retryable=True, retry_after=hint)
    ]
    h.submit("a", payload(1))
    h.inbox("a").wait_for(CallFailed)
    return provider


def test_a_held_refusal_tells_the_time_left_not_the_whole_hint(h: Harness) -> None:
    refused_once(h, "COOLDOWN_LIMIT", 300.0)
    h.advance(290.0)
    h.submit("b", payload(2))
    held = h.inbox("b").wait_for(CallFailed).error
    assert held.code == "COOLDOWN_LIMIT"
    assert held.retry_after == pytest.approx(10.0)  # what is left, not 300 from now


def test_a_cleanup_of_a_job_that_owned_nothing_does_not_end_a_slot_refusal(h: Harness) -> None:
    """Only a job of ours that ends with an item frees a slot; cancelling one that
    never got an item (waiting in line) cleared the hold, and the next submission
    was sent into the refusal."""
    provider = refused_once(h, "ACTIVE_LIMIT", 120.0)
    h.tell(Cleanup("x", payload(9), None, True))
    h.advance(1.0)
    h.submit("b", payload(2))
    assert h.inbox("b").wait_for(CallFailed).error.code == "ACTIVE_LIMIT"
    assert provider.log.count("start_job") == 1


def test_a_slot_refusal_without_a_hint_holds_briefly_then_longer_each_in_a_row(
    h: Harness,
) -> None:
    """Finding 13 of issue 10: a hint-less slot refusal held submissions a flat 30 s.
    Now 5 s, doubling with each refusal in a row up to 30 s, and from 5 s again once
    a submission goes through."""
    full = ProviderError("full", "budgeted", code="ACTIVE_LIMIT", retryable=True)
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    provider.faults["start_job"] = [full, full]

    def refused_then_held(job: str, n: int) -> float:
        """Submit ``job`` (refused), then one more at once: the time it is held."""
        h.submit(job, payload(n))
        h.advance(0.2)  # a creation token
        h.inbox(job).wait_for(CallFailed)
        h.submit(f"{job}-next", payload(n + 100))
        h.advance(0.2)
        left: float = h.inbox(f"{job}-next").wait_for(CallFailed).error.retry_after
        return left

    first = refused_then_held("a", 1)
    h.advance(first + 0.1)
    second = refused_then_held("b", 2)
    h.advance(second + 0.1)
    assert (first, second) == (pytest.approx(4.8, abs=0.01), pytest.approx(9.8, abs=0.01))
    assert provider.log.count("start_job") == 2  # the held ones were never sent
    request = h.submit("c", payload(3))
    h.advance(0.2)
    h.submitted("c", request)
    provider.faults["start_job"] = [full]
    assert refused_then_held("d", 4) == pytest.approx(4.8, abs=0.01)
