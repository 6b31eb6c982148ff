"""ProviderActor: one per registered provider; all of that provider's HTTP runs here.

The actor never sleeps and never waits on a token. Every call goes into its own
waiting line (``CallQueue``) and runs, one per turn of the mailbox, once its
buckets have tokens; when nothing can run, the scheduler wakes the actor at the
time the next token is due. A job whose call waits long is told so
(``BudgetWait``). What the actor knows of its jobs' remote items (owners, polls,
pending cleanups) lives in a ``ProviderBook`` that outlives the actor.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Set
from types import MappingProxyType
from typing import Any

import attrs
import pykka

from actors._base import replies_of
from actors._child import SupervisedActor
from actors._handle import ProviderHandle
from actors._messages import (
    ACCOUNT_REFUSALS,
    AUTH_REFUSALS,
    REFUSED,
    SUBMISSION_REFUSALS,
    AccountHeld,
    AccountNote,
    AccountResumed,
    Adopt,
    BudgetWait,
    CallFailed,
    ChildKind,
    Cleanup,
    CleanupKind,
    CleanupsChanged,
    DescribeProvider,
    FetchLinks,
    FindExisting,
    Found,
    GetStatus,
    InjectCrash,
    Links,
    LinksRefreshed,
    Op,
    PollTick,
    ProviderReport,
    Ref,
    RefreshLinks,
    Release,
    Released,
    Reply,
    Resolved,
    ResolveLink,
    SlotLimit,
    StatusUpdate,
    Submit,
    Submitted,
    TestConnection,
    Track,
    Wake,
    usable_hint,
)
from actors._provider_book import ProviderBook
from actors._provider_queue import CallQueue, Lane, QueuedCall, Waiting
from actors._replies import answer, fail
from actors._scheduler import Scheduler
from providers import (
    Call,
    EngineNotRunning,
    Job,
    JobFile,
    JobStatus,
    JobStatusResponse,
    LimiterClosed,
    Provider,
    ProviderError,
    RateLimiter,
    StartJobPayload,
    Telemetry,
)
from providers._log import get_logger
from providers._ratelimit import GrowingWait

__all__ = ["ProviderActor", "ProviderHandle"]

log = get_logger("debrid.actors.provider")

#: Polls in a row an item must be missing from before it is looked up alone.
_MISSES_BEFORE_CHECK = 3
#: A cleanup (delete or lookup) that keeps failing is tried this often, then given up.
_CLEANUP_TRIES = 5
#: Backoff between cleanup tries: doubling from the first delay up to the last.
#: The costs of a call to a provider without buckets.
_NO_COSTS: Mapping[str, int] = MappingProxyType({})
_CLEANUP_FIRST_DELAY = 5.0
_CLEANUP_MAX_DELAY = 300.0
#: A slot refusal that says nothing of when to come back answers submissions for
#: 5 s, doubling with each refusal in a row up to ``slot_retry_delay`` (30 s by
#: default), unless a job of ours ends first; a submission that goes through
#: starts again from 5 s.
_FIRST_REFUSAL_HOLD = 5.0
#: A 429 that says nothing of when to come back holds the buckets 2 s, doubling
#: with each one in a row up to a minute (a call that works starts again).
_FIRST_429_PAUSE = 2.0
_DEFAULT_429_PAUSE = 60.0
#: While the account refuses us, one probe (a poll, or one held call) goes out this
#: long after the last refusal, the gap doubling up to the cap: a few a minute.
_ACCOUNT_FIRST_GAP = 15.0
_ACCOUNT_MAX_GAP = 60.0
#: Once its jobs have given up (``account_fail_after``), a probe every ten minutes.
_ACCOUNT_EXPIRED_GAP = 600.0


# -- the actor's own messages and queued tasks ------------------------------------
@attrs.frozen
class _Pump:
    """Sent to self after each turn that left a call ready: run one call."""


@attrs.frozen
class _RetryCleanup:
    """Scheduled: queue a failed delete (``remote_id``) or lookup (``job_id``) again."""

    remote_id: str | None = None
    job_id: str | None = None


@attrs.frozen
class _AccountTimer:
    """Scheduled while the account refuses us: send one probe (a poll or one held
    call), or, with ``expire``, at the hold's ``fail_at``: its jobs give up."""

    generation: int
    expire: bool = False


@attrs.define
class _Hold:
    """The account refuses every call (``ACCOUNT_REFUSALS``): what waits for it.

    ``parked`` holds the job calls and cleanups not sent, in order; ``probe`` is
    the one sent to see whether the account works again; ``expired`` once
    ``account_fail_after`` passed and the waiting jobs were failed.
    """

    error: ProviderError
    note: AccountNote
    generation: int
    gap: float = _ACCOUNT_FIRST_GAP
    parked: list[Any] = attrs.field(factory=list)
    probe: Any = None
    probe_due: bool = False
    expired: bool = False
    #: Every job told ``AccountHeld``: each hears ``AccountResumed`` when it ends.
    told: set[Ref] = attrs.field(factory=set)
    deadline: Any = None


@attrs.frozen
class _Refresh:
    """Queued: ask again for the expired link of a completed job's file ``index``
    (one per turn); ``files`` as refreshed so far."""

    job: Job
    files: tuple[JobFile, ...]
    index: int


@attrs.frozen
class _Poll:
    """Queued: one ``list_statuses`` over every tracked id."""


@attrs.frozen
class _Check:
    """Queued: is ``remote_id``, missing from several polls, gone?"""

    remote_id: str


@attrs.frozen
class _Delete:
    """Queued: delete ``remote_id``, which no live job owns (a cleanup)."""

    remote_id: str


@attrs.frozen
class _Lookup:
    """Queued: find what ``job_id``'s unsure submission made, and delete it (a cleanup)."""

    job_id: str


#: ``_Hold.probe`` while the next poll is the probe.
_POLL_PROBE = _Poll()

_Request = Submit | FindExisting | FetchLinks | GetStatus | ResolveLink
_OPS: Mapping[type, Op] = {
    Submit: Op.SUBMIT,
    FindExisting: Op.FIND,
    FetchLinks: Op.LINKS,
    GetStatus: Op.STATUS,
    ResolveLink: Op.RESOLVE,
}


class ProviderActor(SupervisedActor):
    """Owns one ``Provider`` object and serialises every call to it, without ever blocking.

    Jobs ask it for submissions, lookups, links and statuses; it answers with
    messages naming each request's id. Once per ``poll_interval`` it refreshes
    every tracked remote job with a single ``list_statuses`` call and sends each
    result to every job that owns the item. A ``ProviderError`` goes back to the
    job that asked; any other exception is a crash: the asking job is told (so
    it can retry) and the actor dies, to be restarted by the supervisor with the
    same ``book``, whose pending cleanups the new actor queues again. A queued
    call whose job actor died before its turn is dropped, never run (the job's
    successor asks again itself). When the actor stops or dies, every request
    it still holds that carries a ``reply`` gets ``EngineNotRunning``.

    A cleanup deletes an item only when, at the moment the delete runs, no live
    job owns it and no completed job released it; an unsure cleanup's lookup
    never finds such an item either.

    The provider is bound by the supervisor (``ProviderContext(blocking=False)``
    for HTTP providers, which then take their own tokens without waiting); for a
    provider that does not limit its requests itself (the mock), the actor takes
    the tokens of each call from ``limiters``. ``max_pause`` caps any pause a
    provider asks for (a Retry-After); ``budget_notice_after`` is the shortest
    wait worth a ``BudgetWait`` to the job.
    """

    def __init__(
        self,
        name: str,
        provider: Provider,
        *,
        supervisor: Ref,
        scheduler: Scheduler,
        poll_interval: float,
        book: ProviderBook,
        limiters: Mapping[str, RateLimiter] | None = None,
        max_pause: float = 3600.0,
        budget_notice_after: float = 1.0,
        account_fail_after: float = 24 * 3600.0,
        slot_retry_delay: float = 30.0,
        telemetry: Telemetry | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.provider = provider
        self.supervisor = supervisor
        self.scheduler = scheduler
        self.poll_interval = poll_interval
        self.book = book
        self.limiters: dict[str, RateLimiter] = dict(limiters or {})
        self.max_pause = max_pause
        self.budget_notice_after = budget_notice_after
        self.account_fail_after = account_fail_after
        self.slot_retry_delay = slot_retry_delay
        self._queue = CallQueue(self.limiters)
        # HTTP providers take a token per request themselves (one call may be
        # several requests); for the others the actor takes them per call.
        self._token_per_call = not getattr(provider, "limits_requests", False)
        self._find_takes_exclude = _takes_exclude(provider)
        budgets = getattr(provider, "budgets", None)
        self._budgets: Callable[[Call, StartJobPayload | None], Mapping[str, int]] | None = (
            budgets if callable(budgets) else None
        )
        self._pump_pending = False
        self._wake_generation = 0
        self._wake_due: float | None = None
        self._poll_generation = 0
        self._poll_scheduled = False
        self._poll_queued = False
        self._checks_queued: set[str] = set()
        self._deletes_queued: set[str] = set()
        self._lookups_queued: set[str] = set()
        self._last_limit: int | None = None
        self._reported = False
        self._submitted = False
        self._last_error: str | None = None
        #: The last slot refusal or cooldown and until when (clock monotonic) it
        #: answers every submission unsent (see ``_refuse_submissions``).
        self._refusal: tuple[ProviderError, float] | None = None
        #: Hint-less refusals and rate limits in a row, for their growing waits.
        self._refusal_waits = GrowingWait(_FIRST_REFUSAL_HOLD, slot_retry_delay)
        self._rate_waits = GrowingWait(_FIRST_429_PAUSE, _DEFAULT_429_PAUSE)
        #: Syncs waiting for the refresh of their completed job's links, by job id.
        self._refreshing: dict[str, list[Reply]] = {}
        #: Set while the account refuses us as a whole (see ``_account_refused``).
        self._hold: _Hold | None = None
        self._hold_generation = 0
        #: A hold is on, or an earlier actor's hold left its start in the book: the
        #: next call that works clears it (``_account_works``).
        self._account_dirty = False

    # -- life cycle ------------------------------------------------------------
    def child_id(self) -> tuple[ChildKind, str]:
        """``(ChildKind.PROVIDER, name)``."""
        return ChildKind.PROVIDER, self.name

    def begin(self) -> None:
        """Queue the cleanups a dead predecessor left, and poll what is tracked."""
        self._last_limit = self.provider.max_active
        self._account_dirty = self.book.account_since is not None
        self._queue_cleanups(
            [_Delete(rid) for rid in self.book.deletes] + [_Lookup(j) for j in self.book.lookups]
        )
        if self.book.tracked:
            self._schedule_poll(0)
        self._arrange()

    def on_stop(self) -> None:
        """Answer every request still waiting with ``EngineNotRunning``."""
        self._wind_up()

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Answer waiting requests, then tell the supervisor (which restarts us)."""
        self._wind_up()
        super().on_failure(exc_type, exc, tb)

    def _actor_loop_teardown(self) -> None:
        """Answer what reached the mailbox after the wind-up, then end as Pykka does.

        Only a tell that raced the stop gets here; the book is not written any
        more (the supervisor may have started our successor on it).
        """
        self._drain_inbox(keep=False)
        super()._actor_loop_teardown()

    # -- messages --------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        """Dispatch one message; then run what is ready, and report what changed."""
        queue = self._queue
        if not self.limiters and not queue.live and type(message) in _OPS:
            # No bucket to wait for and nothing in line: what ``_enqueue`` would
            # decide, without making a queued call of it (the mock's every request).
            if message.reply_to.is_alive() or not self._asker_gone(message):
                self._run(message, _NO_COSTS)
        else:
            self._dispatch(message)
        self._report_limit()
        if queue.live and not self._pump_pending:
            self._arrange()
        book = self.book
        if book.deletes.changed or book.lookups.changed or book.to_settle:
            self._report_cleanups()
        return None

    def _dispatch(self, message: Any) -> None:
        """Handle one message; at most one provider call runs for it."""
        match message:
            case _Pump():
                self._pump_pending = False
                self._run_next()
            case Submit(job_id=job_id, payload=payload):
                self._enqueue(message, Lane.SUBMIT, Call.SUBMIT, payload, job_id)
            case FindExisting(job_id=job_id, payload=payload):
                self._enqueue(message, Lane.SUBMIT, Call.FIND, payload, job_id)
            case FetchLinks(job_id=job_id, payload=payload) | ResolveLink(
                job_id=job_id, payload=payload
            ):
                self._enqueue(message, Lane.LINKS, Call.LINKS, payload, job_id)
            case GetStatus(job_id=job_id):
                self._enqueue(message, Lane.STATUS, Call.STATUS, None, job_id)
            case TestConnection():
                self._enqueue(message, Lane.CANCEL, Call.TEST, None, None)
            case RefreshLinks(job, reply):
                self._refresh_links(job, reply)
            case Track():
                self._track(message)
            case Release() | Released():
                self._keep(message)
                self._slot_freed()
            case Adopt():
                self._queue_cleanups(self._keep(message))
            case Cleanup():
                self._job_ended(message)
            case PollTick(generation) if generation == self._poll_generation:
                self._poll_scheduled = False
                if not self._poll_queued:
                    self._poll_queued = True
                    self._queue.push(_Poll(), Lane.STATUS, self._costs(Call.POLL, None))
            case Wake(generation) if generation == self._wake_generation:
                self._wake_due = None
            case PollTick() | Wake():
                pass  # superseded
            case _AccountTimer(generation, expire=True):
                self._account_expired(generation)
            case _AccountTimer(generation):
                self._probe(generation)
            case _RetryCleanup(remote_id, job_id):
                if remote_id is not None and remote_id in self.book.deletes:
                    self._queue_delete(remote_id)
                if job_id is not None and job_id in self.book.lookups:
                    self._queue_lookup(job_id)
            case DescribeProvider(reply):
                answer(reply, self._describe())
            case InjectCrash():
                raise RuntimeError(f"injected crash in provider actor {self.name}")
            case _:
                log.warning(
                    "unexpected_message", provider=self.name, message=type(message).__name__
                )

    def _track(self, message: Track) -> None:
        self._keep(message)
        hold = self._hold
        if hold is not None and hold.expired:
            failed = self._account_failure(hold, message.remote_id)
            self._tell(message.reply_to, StatusUpdate(failed))
        elif hold is not None:
            hold.told.add(message.reply_to)
            self._tell(message.reply_to, AccountHeld(hold.note))
        elif not (self._poll_scheduled or self._poll_queued):
            self._schedule_poll(self.poll_interval)

    def _job_ended(self, message: Cleanup) -> None:
        """A job finished: its calls still waiting go unanswered, what it leaves
        remotely is cleaned up, and if it had an item, a slot of the account frees."""
        job_id = message.job_id
        freed = message.remote_id is not None or bool(self.book.jobs.get(job_id))
        withdrawn = self._queue.withdraw(job_id)
        hold = self._hold
        if hold is not None:
            hold.parked = [m for m in hold.parked if getattr(m, "job_id", None) != job_id
                           or not isinstance(m, _Request)]
        if withdrawn:
            log.info("calls_withdrawn", job_id=job_id, provider=self.name, count=len(withdrawn))
        self._queue_cleanups(self._keep(message))
        if freed:
            self._slot_freed()

    def _report_cleanups(self) -> None:
        """Tell the supervisor how the owed cleanups changed, for its next commit."""
        changes = self.book.owed_changes()
        if changes is not None:
            self._tell(self.supervisor, CleanupsChanged(self.name, *changes))

    # -- the waiting line ------------------------------------------------------
    def _enqueue(
        self,
        message: Any,
        lane: Lane,
        call: Call,
        payload: StartJobPayload | None,
        job_id: str | None,
    ) -> None:
        costs = self._costs(call, payload)
        now = self._queue.run_now(message, lane, costs, job_id)
        # The line is empty and the tokens are there, so nothing queued could go
        # first. A call that costs tokens still waits while messages are in the
        # mailbox (a cancel there is served first and may want the same token); one
        # that costs none takes nothing from them and runs in mailbox order.
        if now is not None and (not now.costs or self.actor_inbox.empty()):
            if not self._asker_gone(message):
                self._run(message, now.costs)
            return
        queued = self._queue.push(message, lane, costs, job_id)
        if job_id is None:
            return
        estimate = self._queue.estimate(queued)
        if estimate is not None and estimate[1] > 0 and estimate[1] >= self.budget_notice_after:
            self._notify(queued, *estimate)

    def _costs(self, call: Call, payload: StartJobPayload | None) -> Mapping[str, int]:
        if not self.limiters:
            return _NO_COSTS  # no bucket to take from, whatever the call
        budgets = self._budgets
        if budgets is not None:
            costs: Mapping[str, int] = budgets(call, payload)
            return costs
        return {"default": 1} if "default" in self.limiters else {}

    def _arrange(self) -> None:
        """Run ready calls while nothing waits in the mailbox; else pump, or wait for a Wake.

        With an empty mailbox there is nothing a call could be served after, so
        it runs now; once a message is waiting (a Cleanup, a poll), the next call
        waits for the mailbox's next turn, so that message is put in line first.
        Saves a message through the mailbox per call on a busy engine.
        """
        while not self._pump_pending and self._queue.live:
            selection = self._queue.select()
            self._notify_waiting(selection.waiting)
            if selection.ready is None:
                if selection.waiting:
                    self._schedule_wake(min(waiting.delay for waiting in selection.waiting))
                return
            if not self.actor_inbox.empty():
                self._pump_pending = True
                self.actor_ref.tell(_Pump())
                return
            self._run_selected(selection.ready)
            self._report_limit()

    def _run_next(self) -> None:
        selection = self._queue.select()
        self._notify_waiting(selection.waiting)
        if selection.ready is not None:
            self._run_selected(selection.ready)

    def _run_selected(self, call: QueuedCall) -> None:
        self._queue.pop(call)
        if self._asker_gone(call.message):
            return
        self._run(call.message, call.costs)

    def _asker_gone(self, message: Any) -> bool:
        """True (and logged) when the job actor that asked for ``message`` is dead.

        Its answer would go nowhere, and a crashed job's successor asks again
        itself, a submission as a lookup first: running the dead one's Submit
        after that lookup found nothing would make a second remote item. Calls
        without an asker (cleanups, polls, TestConnection) always run.
        """
        if not isinstance(message, _Request) or message.reply_to.is_alive():
            return False
        log.info(
            "call_dropped_dead_asker",
            job_id=message.job_id,
            provider=self.name,
            op=_OPS[type(message)].value,
            request_id=message.request_id,
        )
        return True

    def _schedule_wake(self, delay: float) -> None:
        due = self.scheduler.clock.monotonic() + delay
        if self._wake_due is not None and self._wake_due <= due:
            return  # the Wake on its way comes first; it looks again then
        self._wake_generation += 1
        self._wake_due = due
        self.scheduler.schedule(delay, self.actor_ref, Wake(self._wake_generation))

    def _notify_waiting(self, waiting: tuple[Waiting, ...]) -> None:
        for head in waiting:
            if head.delay > 0 and head.delay >= self.budget_notice_after:
                self._notify(head.call, head.budget, head.delay)

    def _notify(self, call: QueuedCall, budget: str, delay: float) -> None:
        """Tell the job once that its call waits for ``budget`` until about now + ``delay``."""
        message = call.message
        if call.notified or not isinstance(message, _Request):
            return
        call.notified = True
        self.telemetry.budget_wait(self.name, budget)
        until = self.scheduler.clock.time() + delay
        log.info(
            "budget_wait",
            job_id=message.job_id,
            provider=self.name,
            budget=budget,
            seconds=round(delay, 3),
        )
        self._tell(
            message.reply_to, BudgetWait(message.request_id, _OPS[type(message)], budget, until)
        )

    def _take(self, costs: Mapping[str, int]) -> None:
        if self._token_per_call:
            for name, cost in costs.items():
                limiter = self.limiters.get(name)
                if limiter is not None and cost > 0:
                    limiter.take(cost)

    # -- running one call --------------------------------------------------------
    def _run(self, message: Any, costs: Mapping[str, int]) -> None:
        hold = self._hold
        if hold is not None:
            if message is hold.probe or type(message) is _Poll:
                self._run_probe(hold, message, costs)
                return
            if self._held_back(hold, message):
                return
        self._run_call(message, costs)

    def _run_call(self, message: Any, costs: Mapping[str, int]) -> None:
        match message:
            case Submit(job_id, request_id, payload, reply_to):
                held = self._held_refusal()  # read once: it may end at any moment
                if held is not None:
                    self._tell(reply_to, CallFailed(request_id, Op.SUBMIT, held))
                    return
                self._request(
                    costs, message, Op.SUBMIT, self._submit, job_id, request_id, payload
                )
            case FindExisting(job_id, request_id, payload):
                self._request(costs, message, Op.FIND, self._find_for, job_id, request_id, payload)
            case FetchLinks(_, request_id, remote_id, payload):
                self._request(costs, message, Op.LINKS, self._links, request_id, remote_id, payload)
            case GetStatus(_, request_id, remote_id):
                self._request(costs, message, Op.STATUS, self._status_reply, request_id, remote_id)
            case ResolveLink():
                self._request(costs, message, Op.RESOLVE, self._resolve, message)
            case TestConnection(reply):
                self._test(costs, reply)
            case _Poll():
                self._poll(costs)
            case _Refresh():
                self._refresh(costs, message)
            case _Check(remote_id):
                self._check(costs, remote_id)
            case _Delete(remote_id):
                self._delete(costs, remote_id)
            case _Lookup(job_id):
                self._lookup(costs, job_id)

    def _request(
        self, costs: Mapping[str, int], message: _Request, op: Op, fn: Callable[..., Any],
        *args: Any,
    ) -> None:
        job_id, request_id, reply_to = message.job_id, message.request_id, message.reply_to
        try:
            if costs:
                self._take(costs)
            reply = fn(*args)
        except ProviderError as error:
            self._failed(error, costs)
            if error.code in ACCOUNT_REFUSALS and self._account_refused(error, message):
                return
            log.info(
                "provider_call_failed",
                job_id=job_id,
                provider=self.name,
                op=op.value,
                code=error.code,
                retryable=error.retryable,
            )
            if op is Op.SUBMIT and error.retryable and error.code not in REFUSED:
                # A timeout or a 5xx may come after the service made the item.
                self.book.unsure.add(job_id)
            if op is Op.SUBMIT and error.code in SUBMISSION_REFUSALS:
                # The refused job hears how long the hold lasts, so the supervisor
                # holds admission as long (not its whole slot_retry_delay).
                error = self._refuse_submissions(error)
            self._tell(reply_to, CallFailed(request_id, op, error))
            return
        except LimiterClosed:
            return  # the engine is stopping
        except Exception as exc:
            if op is Op.SUBMIT:
                self.book.unsure.add(job_id)
            self._tell(reply_to, CallFailed(request_id, op, self._crash(op.value, exc)))
            raise
        self._tell(reply_to, reply)
        if self._account_dirty:
            self._account_works()
        self._rate_waits.settle(costs)

    def _refuse_submissions(self, error: ProviderError) -> ProviderError:
        """The account refused a submission for slots or a cooldown: the submissions
        waiting in line behind it, and those that come until the hint passes (or, after
        a slot refusal, until a job of ours ends), get the same answer without being
        sent; each would be refused too, and on TorBox spend a token of its creation
        budget. Their jobs go back to the supervisor's line, which holds submissions
        as long; polls, links and cancels go on."""
        hint = usable_hint(error.retry_after)
        hold = min(hint, self.max_pause) if hint is not None else self._refusal_waits.next()
        self._refusal = (error, self.scheduler.clock.monotonic() + hold)
        error = self._with_hint(error, hold)
        waiting = [call for call in self._queue if type(call.message) is Submit]
        for call in waiting:
            self._queue.pop(call)
            message = call.message
            self._tell(message.reply_to, CallFailed(message.request_id, Op.SUBMIT, error))
        if waiting:
            log.info(
                "submissions_refused_in_line",
                provider=self.name,
                code=error.code,
                count=len(waiting),
            )
        return error

    @staticmethod
    def _with_hint(error: ProviderError, seconds: float) -> ProviderError:
        return ProviderError(
            error.message, error.provider, code=error.code, http_status=error.http_status,
            retryable=error.retryable, retry_after=seconds,
        )

    def _held_refusal(self) -> ProviderError | None:
        """The refusal that answers submissions now, if one still holds, its hint
        cut to the time left (the supervisor pauses admission for that long)."""
        held = self._refusal
        if held is None:
            return None
        error, until = held
        left = until - self.scheduler.clock.monotonic()
        if left <= 0:
            self._refusal = None
            return None
        return self._with_hint(error, left)

    def _slot_freed(self) -> None:
        """A job of ours ended (released or cleaned up): a slot refusal may not hold
        any more; a cooldown still does (it was never about slots)."""
        held = self._refusal
        if held is not None and not SUBMISSION_REFUSALS[held[0].code]:
            self._refusal = None

    def _submit(self, job_id: str, request_id: int, payload: StartJobPayload) -> Submitted:
        response = self.provider.start_job(payload)
        self._submitted = True
        self._refusal_waits.settle()
        # Owned before the job hears of it: a lookup served next cannot hand it out.
        self.book.own(job_id, response.remote_id)
        if response.status is not JobStatus.COMPLETED:
            return Submitted(request_id, response)
        # Done at once (a cached item): fetch its links in the same turn, which
        # saves the job a round trip through the waiting line.
        try:
            if self.limiters:
                self._take(self._costs(Call.LINKS, payload))
            links = self.provider.get_file_links(response.remote_id, payload)
        except ProviderError as error:
            self._failed(error, self._costs(Call.LINKS, payload))
            return Submitted(request_id, response)  # the job asks for them itself
        return Submitted(request_id, response, links)

    def _links(self, request_id: int, remote_id: str, payload: StartJobPayload) -> Links:
        return Links(request_id, self.provider.get_file_links(remote_id, payload))

    def _resolve(self, message: ResolveLink) -> Resolved:
        """A direct URL for one file of a local download; a URL that failed is
        forgotten first (``forget_download_url`` is optional: a provider without it
        never caches what it hands out)."""
        attach = getattr(self.provider, "attach", None)
        if callable(attach):
            attach(message.remote_id, message.payload)  # what a restart forgot: the source
        if message.failed_url is not None:
            forget = getattr(self.provider, "forget_download_url", None)
            if callable(forget):
                forget(message.remote_id, message.file, message.failed_url)
        url = self.provider.resolve_download_url(message.remote_id, message.file)
        return Resolved(message.request_id, message.file.id, url)

    def _status_reply(self, request_id: int, remote_id: str) -> StatusUpdate:
        return StatusUpdate(self._status_of(remote_id), request_id)

    def _find_for(self, job_id: str, request_id: int, payload: StartJobPayload) -> Found:
        found = self._find(payload, self.book.owned_by_others(job_id))
        if found is not None:
            self.book.own(job_id, found.remote_id)
        return Found(request_id, found)

    def _find(self, payload: StartJobPayload, exclude: Set[str]) -> JobStatusResponse | None:
        """``find_existing`` never giving an item of ``exclude``."""
        if self._find_takes_exclude:
            found = self.provider.find_existing(payload, exclude=exclude)
        else:
            found = self.provider.find_existing(payload)
        return None if found is None or found.remote_id in exclude else found

    def _status_of(self, remote_id: str) -> JobStatusResponse:
        response = self.provider.get_status(remote_id)
        if response.remote_id != remote_id:
            self.book.move(remote_id, response.remote_id)
        return response

    def _test(self, costs: Mapping[str, int], reply: Reply) -> None:
        try:
            self._take(costs)
            result = self.provider.test_connection()
        except ProviderError as error:
            self._failed(error, costs)
            fail(reply, error)
            return
        except LimiterClosed:
            fail(reply, EngineNotRunning("the engine is stopping"))
            return
        except Exception as exc:
            fail(reply, self._crash("test_connection", exc))
            raise
        answer(reply, result)
        if result.ok and self._hold is not None:
            # The user's own check: held calls go out now. The hold's start stays
            # until one of them works (a check may pass where calls are refused).
            self._account_works(settled=False)

    def _refresh_links(self, job: Job, reply: Reply) -> None:
        """A completed job's links, before the supervisor answers a sync: those that
        expired are asked again, one per turn (``_Refresh``); none, and it answers
        now. Syncs of a job whose refresh is under way wait for that one."""
        waiting = self._refreshing.get(job.id)
        if waiting is not None:
            waiting.append(reply)
            return
        try:
            index = self._next_expired(job, job.files, 0)
        except Exception as exc:  # noqa: BLE001 - a provider's own check, not a request
            fail(reply, self._crash("link_expired", exc))
            return
        if index is None:
            self._links_refreshed(job, None, (reply,))
            return
        attach = getattr(self.provider, "attach", None)
        if callable(attach) and job.remote_id is not None:
            attach(job.remote_id, job.payload)  # what a restart forgot: the job's source
        self._refreshing[job.id] = [reply]
        task = _Refresh(job, job.files, index)
        self._queue.push(task, Lane.LINKS, self._costs(Call.LINKS, job.payload))

    def _next_expired(self, job: Job, files: tuple[JobFile, ...], start: int) -> int | None:
        """The index of the first file from ``start`` whose link expired, if any.
        (``link_expired`` is optional: a provider without it hands out permalinks.)"""
        expired = getattr(self.provider, "link_expired", None)
        if not callable(expired):
            return None
        remote_id, issued = job.remote_id or "", job.updated_at / 1000
        for index in range(start, len(files)):
            if files[index].link and expired(remote_id, files[index], issued):
                return index
        return None

    def _refresh(self, costs: Mapping[str, int], task: _Refresh) -> None:
        """Ask again for the expired link at ``task.index``; the next waits its turn.

        A failure ends the refresh with what it got so far (the sync answers the job
        as stored, with the links refreshed before it): a dead or missing link is
        the provider's to report when it is fetched, not a reason to refuse a status.
        """
        job = task.job
        files = list(task.files)
        try:
            self._take(costs)
            file = files[task.index]
            link = self.provider.resolve_download_url(job.remote_id or "", file)
            files[task.index] = attrs.evolve(file, link=link)
            following = self._next_expired(job, tuple(files), task.index + 1)
        except ProviderError as error:
            self._failed(error, costs)
            log.info("links_refresh_failed", job_id=job.id, provider=self.name, code=error.code)
            following = None
        except LimiterClosed:
            for reply in self._refreshing.pop(job.id, []):
                fail(reply, self._stopping())
            return
        except Exception as exc:
            crash = self._crash("refresh_links", exc)
            for reply in self._refreshing.pop(job.id, []):
                fail(reply, crash)
            raise
        if following is not None:
            self._queue.push(_Refresh(job, tuple(files), following), Lane.LINKS, costs)
            return
        changed = tuple(files) != job.files
        replies = tuple(self._refreshing.pop(job.id, []))
        self._links_refreshed(job, tuple(files) if changed else None, replies)

    def _links_refreshed(
        self, job: Job, files: tuple[JobFile, ...] | None, replies: tuple[Reply, ...]
    ) -> None:
        """To the supervisor, which commits the new links and answers ``replies``."""
        try:
            self.supervisor.tell(LinksRefreshed(job.id, job.remote_id, files, replies))
        except pykka.ActorDeadError:
            for reply in replies:
                fail(reply, self._stopping())

    # -- the account as a state ---------------------------------------------------
    def _account_refused(self, error: ProviderError, item: Any) -> bool:
        """The account refused ``error`` (a bad key, a lock, premium gone): hold.

        On the first refusal every job call waiting in line, and each that comes
        until the account works again, is held back unsent (``_held_back``) and
        its job told (``AccountHeld``: it waits, without a stall timer); so is
        every job that only waits for polls. One probe (a poll while anything is
        tracked, else the oldest held call) goes out after a gap that doubles
        from 15 s to 60 s; the first call that succeeds ends the hold
        (``_account_works``). Past ``account_fail_after`` the waiting jobs fail
        with the account's code (``_account_expired``). Returns True when
        ``item`` (a job call or cleanup, or None for a poll) was held back.
        """
        hold = self._hold
        if hold is None:
            clock = self.scheduler.clock
            now = clock.monotonic()
            since = self.book.account_since or (now, clock.time())
            self.book.account_since = since
            note = AccountNote(
                error.code, error.message, since[1], since[1] + self.account_fail_after,
                error.code in AUTH_REFUSALS,
            )
            self._hold_generation += 1
            hold = self._hold = _Hold(error, note, self._hold_generation)
            self._account_dirty = True
            log.warning(
                "account_refused", provider=self.name, code=error.code,
                tracked=len(self.book.tracked),
            )
            waiting = [call for call in self._queue if _holdable(call.message)]
            for call in waiting:
                self._queue.pop(call)
                self._held_back(hold, call.message)
            for pollers in self.book.tracked.values():
                for ref in pollers.values():
                    hold.told.add(ref)
                    self._tell(ref, AccountHeld(note))
            deadline = max(0.0, since[0] + self.account_fail_after - now)
            hold.deadline = self.scheduler.schedule(
                deadline, self.actor_ref, _AccountTimer(hold.generation, expire=True)
            )
        parked = False
        if item is not None:
            if item is hold.probe and not (hold.expired and isinstance(item, _Request)):
                hold.parked.insert(0, item)  # still the oldest: the next probe again
                parked = True
            else:
                parked = self._held_back(hold, item)
        if hold.probe is None:
            self._schedule_probe(hold)
        return parked

    def _held_back(self, hold: _Hold, message: Any) -> bool:
        """Hold ``message`` back while the account refuses us; False for what still
        runs (polls, checks, ``test_connection``: each one a probe of its own).

        A status request answers at once with the refusal (a caller waits on a
        sync); once the waiting jobs gave up, any job call does.
        """
        if isinstance(message, GetStatus) or (hold.expired and isinstance(message, _Request)):
            op = _OPS[type(message)]
            self._tell(message.reply_to, CallFailed(message.request_id, op, self._account_error(
                hold, final=hold.expired)))
            return True
        if isinstance(message, _Request):
            hold.parked.append(message)
            op = _OPS[type(message)]
            hold.told.add(message.reply_to)
            self._tell(message.reply_to, AccountHeld(hold.note, message.request_id, op))
            return True
        if isinstance(message, _Delete | _Lookup):
            hold.parked.append(message)
            return True
        return False

    def _schedule_probe(self, hold: _Hold) -> None:
        if hold.probe_due:
            return
        hold.probe_due = True
        delay = hold.gap
        cap = _ACCOUNT_EXPIRED_GAP if hold.expired else _ACCOUNT_MAX_GAP
        hold.gap = min(cap, hold.gap * 2)
        self.scheduler.schedule(delay, self.actor_ref, _AccountTimer(hold.generation))

    def _probe(self, generation: int) -> None:
        """Send one call to see whether the account works again."""
        hold = self._hold
        if hold is None or hold.generation != generation:
            return
        hold.probe_due = False
        if hold.probe is not None and self._in_line(hold.probe):
            self._schedule_probe(hold)  # the last one still waits for its tokens
            return
        # (A probe that left the line unrun, withdrawn or its job gone, is replaced.)
        hold.probe = None
        if self.book.tracked:
            # Polls are the probes while anything is tracked: the one in line, or a new one.
            hold.probe = _POLL_PROBE
            self._poll_generation += 1  # no scheduled poll besides
            self._poll_scheduled = False
            if not self._poll_queued:
                self._poll_queued = True
                self._queue.push(_Poll(), Lane.STATUS, self._costs(Call.POLL, None))
            self._schedule_probe(hold)  # the next one, unless this one ends the hold
            return
        while hold.parked:
            item = hold.parked.pop(0)
            if isinstance(item, _Request) and self._asker_gone(item):
                continue
            hold.probe = item
            self._requeue(item)
            self._schedule_probe(hold)
            return
        # Nothing waits for the account any more: the next call tells how it is.
        log.info("account_hold_dropped", provider=self.name, code=hold.note.code)
        self._account_works(settled=False)

    def _in_line(self, probe: Any) -> bool:
        """True while ``probe`` still waits in the line (a poll probe: while a poll does)."""
        if probe is _POLL_PROBE:
            return self._poll_queued
        return any(call.message is probe for call in self._queue)

    def _run_probe(self, hold: _Hold, message: Any, costs: Mapping[str, int]) -> None:
        """Run a probe (a poll or the held call sent to see); unless it ended the
        hold, the next one goes out after the gap."""
        self._run_call(message, costs)
        if self._hold is not hold:
            return
        if hold.probe is message or (hold.probe is _POLL_PROBE and type(message) is _Poll):
            hold.probe = None
        if hold.probe is None:
            self._schedule_probe(hold)

    def _requeue(self, item: Any) -> None:
        """Put a held call or cleanup back in line (never run in this turn)."""
        match item:
            case _Delete() | _Lookup():
                call = Call.CANCEL if isinstance(item, _Delete) else Call.FIND
                payload = None
                if isinstance(item, _Lookup) and item.job_id in self.book.lookups:
                    payload = self.book.lookups[item.job_id].payload
                self._queue.push(item, Lane.CANCEL, self._costs(call, payload))
            case Submit(job_id=job_id, payload=payload):
                self._queue.push(item, Lane.SUBMIT, self._costs(Call.SUBMIT, payload), job_id)
            case FindExisting(job_id=job_id, payload=payload):
                self._queue.push(item, Lane.SUBMIT, self._costs(Call.FIND, payload), job_id)
            case FetchLinks(job_id=job_id, payload=payload) | ResolveLink(
                job_id=job_id, payload=payload
            ):
                self._queue.push(item, Lane.LINKS, self._costs(Call.LINKS, payload), job_id)
            case GetStatus(job_id=job_id):
                self._queue.push(item, Lane.STATUS, self._costs(Call.STATUS, None), job_id)

    def _account_works(self, *, settled: bool = True) -> None:
        """A call went through (``settled``), or the hold is given up: it ends, every
        job told to wait hears it may go on, what it held goes back in line.

        Only a call that worked clears the hold's start from the book: a passing
        ``test_connection``, or a hold with nothing left to wait, leaves it, so that
        a refusal that comes back keeps its deadline."""
        if settled:
            self.book.account_since = None
            self._account_dirty = False
        hold = self._hold
        if hold is None:
            return
        self._hold = None
        if hold.deadline is not None:
            hold.deadline.cancel()
        if settled:
            log.info(
                "account_works_again", provider=self.name, code=hold.note.code,
                held=len(hold.parked),
            )
        resumed = AccountResumed()
        for ref in hold.told:
            self._tell(ref, resumed)
        for item in hold.parked:
            self._requeue(item)
        if self.book.tracked and not (self._poll_scheduled or self._poll_queued):
            self._schedule_poll(0)

    def _account_expired(self, generation: int) -> None:
        """``account_fail_after`` passed with the account still refusing: the jobs
        that wait for it fail with its code; cleanups still wait (it may come back)."""
        hold = self._hold
        if hold is None or hold.generation != generation or hold.expired:
            return
        hold.expired = True
        error = self._account_error(hold, final=True)
        requests = [item for item in hold.parked if isinstance(item, _Request)]
        hold.parked = [item for item in hold.parked if not isinstance(item, _Request)]
        probe = hold.probe
        if isinstance(probe, _Request):  # in line still, waiting for its tokens
            for call in [call for call in self._queue if call.message is probe]:
                self._queue.pop(call)
            hold.probe = None
            requests.append(probe)
        log.warning(
            "account_jobs_given_up", provider=self.name, code=error.code,
            held=len(requests), tracked=len(self.book.tracked),
        )
        for item in requests:
            self._tell(item.reply_to, CallFailed(item.request_id, _OPS[type(item)], error))
        for remote_id in list(self.book.tracked):
            self._fan_out(remote_id, StatusUpdate(self._account_failure(hold, remote_id)))

    def _account_failure(self, hold: _Hold, remote_id: str) -> JobStatusResponse:
        """What a job that only waits for polls hears once the account's time is up."""
        error = self._account_error(hold, final=True)
        return JobStatusResponse(
            remote_id, JobStatus.FAILED, error_code=error.code, error_message=error.message
        )

    def _account_error(self, hold: _Hold, *, final: bool) -> ProviderError:
        """The refusal as a job hears it: retryable while the hold lasts, final after."""
        error = hold.error
        message = error.message
        if final:
            span = _span(self.account_fail_after)
            message = f"{message} (the account refused every call for {span})"
        return ProviderError(
            message, error.provider, code=error.code, http_status=error.http_status,
            retryable=not final,
        )

    # -- polling -----------------------------------------------------------------
    def _schedule_poll(self, delay: float) -> None:
        self._poll_generation += 1
        self._poll_scheduled = True
        self.scheduler.schedule(delay, self.actor_ref, PollTick(self._poll_generation))

    def _poll(self, costs: Mapping[str, int]) -> None:
        self._poll_queued = False
        # A job actor that is gone (crashed, or finished while its Release was
        # lost) is not worth a place in every poll for the life of the process.
        for remote_id, pollers in list(self.book.tracked.items()):
            for job_id in [job for job, ref in pollers.items() if not ref.is_alive()]:
                self.book.untrack(job_id, remote_id)
        if not self.book.tracked:
            return
        remote_ids = list(self.book.tracked)
        try:
            self._take(costs)
            statuses = self.provider.list_statuses(remote_ids)
        except ProviderError as error:
            pause = self._failed(error, costs)
            log.info("poll_failed", provider=self.name, code=error.code)
            if error.code in ACCOUNT_REFUSALS:
                self._account_refused(error, None)  # its probes poll again
            else:
                self._schedule_poll(max(self._poll_gap(costs), pause))
            return
        except LimiterClosed:
            return
        for remote_id, response in statuses.items():
            if remote_id not in self.book.tracked:
                continue
            if response.remote_id != remote_id:
                # The item moved (a queued item became a torrent): follow it.
                self.book.move(remote_id, response.remote_id)
            self.book.misses.pop(response.remote_id, None)
            self._fan_out(response.remote_id, StatusUpdate(response))
        for remote_id in remote_ids:
            if remote_id in statuses or remote_id not in self.book.tracked:
                continue
            misses = self.book.misses.get(remote_id, 0) + 1
            self.book.misses[remote_id] = misses
            if misses >= _MISSES_BEFORE_CHECK and remote_id not in self._checks_queued:
                self._checks_queued.add(remote_id)
                self._queue.push(_Check(remote_id), Lane.STATUS, self._costs(Call.STATUS, None))
        self._schedule_poll(self._poll_gap(costs))
        self._rate_waits.settle(costs)
        if self._account_dirty:
            self._account_works()  # (after the next poll is scheduled: no second one)

    def _poll_gap(self, costs: Mapping[str, int]) -> float:
        """The poll interval, or longer when polls would take half a bucket's rate or more.

        Polls come before links and submissions, and come back for ever: polling
        faster than a budget refills (0.2 s against Real-Debrid's 4/s) would starve
        every call below them. At most half the rate, the rest always get a turn.
        """
        gap = self.poll_interval
        for name, cost in costs.items():
            limiter = self.limiters.get(name)
            if limiter is not None:
                gap = max(gap, 2 * cost / limiter.rate)
        return gap

    def _check(self, costs: Mapping[str, int], remote_id: str) -> None:
        """Fail the jobs of an item that is gone (deleted on the website, purged).

        A list may lag behind (TorBox's is cached for minutes), so an item must be
        missing from several polls in a row, and then be confirmed NOT_FOUND by
        itself, before its jobs are told.
        """
        self._checks_queued.discard(remote_id)
        if remote_id not in self.book.tracked:
            return
        try:
            self._take(costs)
            response = self._status_of(remote_id)
        except ProviderError as error:
            if error.code != "NOT_FOUND":
                self._failed(error, costs)
                return  # could not tell this time: asked again after the next poll
            log.warning("remote_job_gone", provider=self.name, remote_id=remote_id)
            gone = StatusUpdate(
                JobStatusResponse(
                    remote_id,
                    JobStatus.FAILED,
                    error_code="REMOTE_GONE",
                    error_message="the provider no longer knows this job (deleted remotely?)",
                )
            )
            self._fan_out(remote_id, gone)
            self.book.forget_remote(remote_id)
            return
        except LimiterClosed:
            return
        self.book.misses.pop(response.remote_id, None)
        self._fan_out(response.remote_id, StatusUpdate(response))

    def _fan_out(self, remote_id: str, message: StatusUpdate) -> None:
        for ref in list(self.book.tracked.get(remote_id, {}).values()):
            self._tell(ref, message)

    # -- cleanups ----------------------------------------------------------------
    def _keep(
        self, message: Track | Release | Released | Cleanup | Adopt
    ) -> list[_Delete | _Lookup]:
        """Write what ``message`` says into the book (``ProviderBook.keep``); no provider
        call, nothing queued. Returns the cleanups it added, for the caller to queue.

        Also used for these messages still in the mailbox of a dying actor, so a
        crash loses no ownership and no cleanup: the next incarnation has them.
        """
        if isinstance(message, Track):
            attach = getattr(self.provider, "attach", None)
            if callable(attach):
                attach(message.remote_id, message.payload)
        return [
            _Delete(key) if kind is CleanupKind.DELETE else _Lookup(key)
            for kind, key in self.book.keep(message)
        ]

    def _queue_cleanups(self, tasks: list[_Delete | _Lookup]) -> None:
        for task in tasks:
            match task:
                case _Delete(remote_id) if remote_id in self.book.deletes:
                    self._queue_delete(remote_id)
                case _Lookup(job_id) if job_id in self.book.lookups:
                    self._queue_lookup(job_id)

    def _queue_delete(self, remote_id: str) -> None:
        if remote_id not in self._deletes_queued:
            self._deletes_queued.add(remote_id)
            self._queue.push(_Delete(remote_id), Lane.CANCEL, self._costs(Call.CANCEL, None))

    def _queue_lookup(self, job_id: str) -> None:
        pending = self.book.lookups[job_id]
        if job_id not in self._lookups_queued:
            self._lookups_queued.add(job_id)
            costs = self._costs(Call.FIND, pending.payload)
            self._queue.push(_Lookup(job_id), Lane.CANCEL, costs)

    def _delete(self, costs: Mapping[str, int], remote_id: str) -> None:
        self._deletes_queued.discard(remote_id)
        if remote_id not in self.book.deletes:
            return
        if self.book.in_use(remote_id):
            # Owned again meanwhile (a duplicate's answer), or by a job that completed.
            del self.book.deletes[remote_id]
            log.info("remote_kept", provider=self.name, remote_id=remote_id)
            return
        try:
            self._take(costs)
            response = self.provider.cancel(remote_id)
        except ProviderError as error:
            if error.code != "NOT_FOUND":
                self._cleanup_failed(error, costs, remote_id=remote_id)
                return
            gone = True
        except LimiterClosed:
            return
        except Exception:
            self._cleanup_crashed(remote_id=remote_id)
            raise
        else:
            gone = response.already_gone
        del self.book.deletes[remote_id]
        self.book.forget_remote(remote_id)
        log.info("remote_deleted", provider=self.name, remote_id=remote_id, already_gone=gone)
        if self._account_dirty:
            self._account_works()

    def _lookup(self, costs: Mapping[str, int], job_id: str) -> None:
        self._lookups_queued.discard(job_id)
        pending = self.book.lookups.get(job_id)
        if pending is None:
            return
        try:
            self._take(costs)
            # Never an item a live job owns (this job id's included: what it owns
            # now is a later attempt's) nor one a completed job released.
            found = self._find(pending.payload, self.book.kept_from_cleanups())
        except ProviderError as error:
            self._cleanup_failed(error, costs, job_id=job_id)
            return
        except LimiterClosed:
            return
        except Exception:
            self._cleanup_crashed(job_id=job_id)
            raise
        del self.book.lookups[job_id]
        if self._account_dirty:
            self._account_works()
        if found is None:
            log.info("cleanup_found_nothing", job_id=job_id, provider=self.name)
            return
        log.info("cleanup_found", job_id=job_id, provider=self.name, remote_id=found.remote_id)
        self.book.deletes.setdefault(found.remote_id, 0)
        self._queue_delete(found.remote_id)

    def _cleanup_failed(
        self,
        error: ProviderError,
        costs: Mapping[str, int],
        *,
        remote_id: str | None = None,
        job_id: str | None = None,
    ) -> None:
        pause = self._failed(error, costs)
        if error.code in ACCOUNT_REFUSALS:
            # Not the item's fault: it waits for the account, its tries uncounted.
            task = _Delete(remote_id) if remote_id is not None else _Lookup(job_id or "")
            if self._account_refused(error, task):
                return
        tries = self._count_try(remote_id=remote_id, job_id=job_id)
        if not error.retryable or tries >= _CLEANUP_TRIES:
            self._give_up(remote_id=remote_id, job_id=job_id)
            log.warning(
                "remote_cleanup_abandoned",
                provider=self.name,
                remote_id=remote_id,
                job_id=job_id,
                code=error.code,
                tries=tries,
            )
            return
        delay = max(min(_CLEANUP_MAX_DELAY, _CLEANUP_FIRST_DELAY * 2 ** (tries - 1)), pause)
        log.info(
            "remote_cleanup_retry",
            provider=self.name,
            remote_id=remote_id,
            job_id=job_id,
            code=error.code,
            seconds=delay,
        )
        self.scheduler.schedule(delay, self.actor_ref, _RetryCleanup(remote_id, job_id))

    def _cleanup_crashed(self, *, remote_id: str | None = None, job_id: str | None = None) -> None:
        # Counted before the actor dies: a cleanup that always crashes the provider
        # must not crash every incarnation after it for ever.
        if self._count_try(remote_id=remote_id, job_id=job_id) >= _CLEANUP_TRIES:
            self._give_up(remote_id=remote_id, job_id=job_id)

    def _count_try(self, *, remote_id: str | None, job_id: str | None) -> int:
        if remote_id is not None:
            self.book.deletes[remote_id] += 1
            return self.book.deletes[remote_id]
        assert job_id is not None
        self.book.lookups[job_id].attempts += 1
        return self.book.lookups[job_id].attempts

    def _give_up(self, *, remote_id: str | None, job_id: str | None) -> None:
        if remote_id is not None:
            self.book.deletes.pop(remote_id, None)
        if job_id is not None:
            self.book.lookups.pop(job_id, None)

    # -- errors ------------------------------------------------------------------
    def _failed(self, error: ProviderError, costs: Mapping[str, int]) -> float:
        """Note ``error``; returns how long the provider asks this call to wait.

        Three kinds of waiting are kept apart. A rate limit (a 429, or a
        ``RATE_LIMITED`` code) holds back the buckets the refused call needed,
        and only those: an HTTP provider's ``ProviderHttp`` paused them already
        as the answer came, the actor pauses them for a provider that takes its
        tokens per call (the mock). A slot refusal or a cooldown (ACTIVE_LIMIT,
        SEEDING_LIMIT, COOLDOWN_LIMIT) pauses no bucket at all: it concerns
        submissions, which the supervisor holds back (``SlotRefused``), while
        polls, links and cancels go on. Any other hint only spaces this call's
        own retry. Every hint is cut to ``max_pause``, and the cut is logged.
        """
        self._last_error = f"{error.code}: {error.message}"
        rate_limited = error.http_status == 429 or error.code == "RATE_LIMITED"
        pause = error.retry_after
        if pause is None and rate_limited:
            # Counted per set of buckets: calls on other buckets that go through
            # meanwhile do not end the count of a limit they do not touch.
            pause = self._rate_waits.next(costs)
        if pause is None or math.isnan(pause) or pause <= 0:
            return 0.0
        applied = min(pause, self.max_pause)  # an infinite hint too
        if applied < pause:
            log.warning(
                "retry_after_capped",
                provider=self.name,
                requested=pause,
                seconds=applied,
                code=error.code,
            )
        if rate_limited and self._token_per_call:
            for name in costs:
                limiter = self.limiters.get(name)
                if limiter is not None:
                    limiter.pause_for(applied, f"{error.code}: {error.message}")
            log.info(
                "provider_paused",
                provider=self.name,
                seconds=applied,
                code=error.code,
                buckets=sorted(costs),
            )
        return applied

    def _crash(self, what: str, exc: BaseException) -> ProviderError:
        self._last_error = f"PROVIDER_CRASHED: {type(exc).__name__}"
        return ProviderError(
            f"provider crashed during {what}: {type(exc).__name__}",
            self.name,
            code="PROVIDER_CRASHED",
            retryable=True,
        )

    def _wind_up(self) -> None:
        """Answer every waiting request; keep what the mailbox says of owners and cleanups."""
        stopping = self._stopping()
        for call in self._queue.drain():
            for reply in replies_of(call.message):
                fail(reply, stopping)
        for replies in self._refreshing.values():
            for reply in replies:
                fail(reply, stopping)
        self._refreshing.clear()
        # And those still in the mailbox, which Pykka would drop unanswered.
        self._drain_inbox(keep=True)
        self._report_cleanups()

    def _drain_inbox(self, *, keep: bool) -> None:
        """Answer every reply the mailbox holds with ``EngineNotRunning``; with ``keep``,
        write what its messages say of owners and cleanups into the book, for the
        next incarnation. Asks are put back, for Pykka to answer."""
        stopping = self._stopping()
        asks = []
        while not self.actor_inbox.empty():  # only this thread takes from it
            envelope = self.actor_inbox.get()
            message = envelope.message
            for reply in replies_of(message):
                fail(reply, stopping)
            if isinstance(message, Track | Release | Released | Cleanup | Adopt):
                if keep:
                    self._keep(message)
                else:
                    log.warning(
                        "message_lost_at_stop", provider=self.name, message=type(message).__name__
                    )
            if envelope.reply_to is not None:
                asks.append(envelope)
        for envelope in asks:
            self.actor_inbox.put(envelope)

    def _stopping(self) -> EngineNotRunning:
        return EngineNotRunning(f"provider {self.name!r} stopped")

    # -- reports -----------------------------------------------------------------
    def _describe(self) -> ProviderReport:
        clock = self.scheduler.clock
        offset = clock.time() - clock.monotonic()
        waiting: dict[str, float] = {}
        if self._queue:
            for head in self._queue.select().waiting:
                until = clock.time() + head.delay
                waiting[head.budget] = min(waiting.get(head.budget, until), until)
        paused: dict[str, float] = {}
        why: dict[str, str] = {}
        for name, limiter in self.limiters.items():
            pause_end = limiter.paused_until
            if pause_end is not None:
                paused[name] = pause_end + offset
                why[name] = limiter.pause_reason or "paused"
        return ProviderReport(
            name=self.name,
            queued=self._queue.counts(),
            waiting_for=waiting,
            paused_until=paused,
            pause_reasons=why,
            tracked=len(self.book.tracked),
            slot_limit=self.provider.max_active,
            last_error=self._last_error,
            account=self._hold.note if self._hold is not None else None,
            submissions_held=self._submissions_held(offset),
        )

    def _submissions_held(self, offset: float) -> tuple[str, float] | None:
        held = self._refusal
        if held is None or held[1] <= self.scheduler.clock.monotonic():
            return None
        return held[0].code, held[1] + offset

    def _report_limit(self) -> None:
        limit = self.provider.max_active
        first = not self._reported and (limit is not None or self._submitted)
        if limit != self._last_limit or first:
            # The first report after a submission always goes out: it ends the
            # supervisor's provisional limit, even when the provider learnt none.
            self._reported = True
            self._last_limit = limit
            self._tell(self.supervisor, SlotLimit(self.name, limit))

    def _tell(self, ref: Ref, message: Any) -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            log.debug("reply_target_gone", provider=self.name, message=type(message).__name__)


def _span(seconds: float) -> str:
    """``seconds`` for a person: ``45 s``, ``10 min``, ``24 h``."""
    if seconds >= 3600:
        return f"{round(seconds / 3600, 1):g} h"
    if seconds >= 60:
        return f"{round(seconds / 60, 1):g} min"
    return f"{round(seconds, 1):g} s"


def _holdable(message: Any) -> bool:
    """A queued call that waits for the account while it refuses us."""
    return isinstance(message, _Request | _Delete | _Lookup)


def _takes_exclude(provider: Provider) -> bool:
    """Whether ``provider.find_existing`` takes ``exclude`` (older providers may not)."""
    try:
        parameters = inspect.signature(provider.find_existing).parameters
    except (TypeError, ValueError):
        return False
    return "exclude" in parameters or any(
        parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()
    )
