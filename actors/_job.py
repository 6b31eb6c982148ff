"""JobActor: one per job with work to do; owns the job and drives its state machine."""

from __future__ import annotations

import logging
import random
from typing import Any

import attrs
import pykka

from actors._base import ActorThreads
from actors._child import SupervisedActor
from actors._messages import (
    CallFailed,
    Cancel,
    CancelRemote,
    FetchLinks,
    FindExisting,
    Found,
    GetStatus,
    InjectCrash,
    JobChanged,
    Links,
    ProviderRestarted,
    Ref,
    Reply,
    RetryOp,
    SlotRefused,
    StallCheck,
    StatusUpdate,
    Submit,
    Submitted,
    Sync,
    Track,
    Untrack,
)
from actors._provider import ProviderHandle
from actors._scheduler import Scheduler, TimerHandle
from providers import (
    FileLinksResponse,
    Job,
    JobErrorInfo,
    JobStatus,
    JobStatusResponse,
    ProviderError,
    RetryPolicy,
    Transition,
    next_delay,
)
from providers._log import get_logger

__all__ = ["JobActor", "JobSettings"]

log = get_logger("debrid.actors.job")


@attrs.frozen
class JobSettings:
    """What every job actor of an engine shares."""

    retry_policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    #: Seconds a job may stay in a state without progress before it FAILS as STALLED.
    stall_timeouts: dict[JobStatus, float] = attrs.field(factory=dict)
    #: How long to wait before asking again for links that are not ready yet.
    links_retry_interval: float = 5.0
    rng: random.Random = attrs.field(factory=random.Random, eq=False)


class JobActor(SupervisedActor):
    """Drives one job from its stored state to a terminal one.

    ``fresh`` says that nothing has been sent for this attempt yet, so the job
    may submit at once; otherwise (recovery, restart after a crash, a retry of
    a failed submission) it first asks the provider whether the remote job
    already exists, so that no job is ever submitted twice.
    """

    def __init__(
        self,
        job: Job,
        *,
        provider: ProviderHandle,
        supervisor: Ref,
        scheduler: Scheduler,
        settings: JobSettings,
        fresh: bool,
        threads: ActorThreads | None = None,
    ) -> None:
        super().__init__()
        self.threads = threads
        self.job = job
        self.provider = provider
        self.supervisor = supervisor
        self.scheduler = scheduler
        self.settings = settings
        self.clock = scheduler.clock
        self.fresh = fresh
        self.retries = 0
        self.in_flight: str | None = None
        self.cancelled_while_in_flight = False
        self.links_requested = False
        self.last_progress_at = self.clock.monotonic()
        self.pending_syncs: list[Reply] = []
        self.done = False
        self.tracking = False
        #: Steps taken but not yet sent to the supervisor (see ``_defer``).
        self.unsaved: list[Transition] = []
        self.prefetched: FileLinksResponse | None = None
        self.stall_timer: TimerHandle | None = None
        self.deferred = False

    # -- lifecycle ---------------------------------------------------------------
    def child_id(self) -> tuple[str, str]:
        """``("job", job id)``."""
        return "job", self.job.id

    def begin(self) -> None:
        """Kick off from the stored state."""
        self._begin()

    def on_receive(self, message: Any) -> None:
        """Dispatch one message."""
        if self.done:
            # A Cancel or Sync that reaches a finished actor is answered by the
            # supervisor, which keeps every request it forwards until answered.
            return
        match message:
            case Submitted(response, links):
                self.in_flight = None
                self.retries = 0
                self.prefetched = links
                self._attach(response)
            case Found(response) if response is not None:
                self.in_flight = None
                self.retries = 0
                self._attach(response)
            case Found(None):
                self.in_flight = None
                if self.cancelled_while_in_flight:
                    self._stop_now()
                else:
                    self._send("submit")
            case StatusUpdate(response, sync):
                if sync:
                    self.in_flight = None
                self._apply(response)
                if sync:
                    self._flush_syncs()
            case Links(response):
                self.in_flight = None
                self._links(response)
            case CallFailed(op, error):
                self._failed(op, error)
            case RetryOp(op):
                self._send(op)
            case StallCheck(since):
                self._stall_check(since)
            case Cancel(reply):
                self._cancel(reply)
            case Sync(reply):
                self._sync(reply)
            case ProviderRestarted():
                self._resend()
            case InjectCrash():
                raise RuntimeError(f"injected crash in job actor {self.job.id}")
            case _:
                log.warning(
                    "unexpected_message",
                    job_id=self.job.id,
                    provider=self.job.provider,
                    message=type(message).__name__,
                )

    # -- steps -------------------------------------------------------------------
    def _begin(self) -> None:
        self._schedule_stall_check()
        if self.job.remote_id is not None:
            self._track()
        elif self.fresh:
            self._send("submit")
        else:
            self._send("find")

    def _send(self, op: str) -> None:
        job = self.job
        self.in_flight = op
        if op == "submit":
            self._tell(self.provider, Submit(job.id, job.payload, self.actor_ref))
        elif op == "find":
            self._tell(self.provider, FindExisting(job.id, job.payload, self.actor_ref))
        elif op == "links" and job.remote_id is not None:
            self._tell(
                self.provider, FetchLinks(job.id, job.remote_id, job.payload, self.actor_ref)
            )
        elif op == "status" and job.remote_id is not None:
            self._tell(self.provider, GetStatus(job.id, job.remote_id, self.actor_ref))
        else:
            self.in_flight = None

    def _resend(self) -> None:
        # A Track lost with the old provider actor would mean never being polled.
        if self.job.remote_id is not None and self.tracking:
            self._track()
        op = self.in_flight
        if op in ("submit", "find", "links", "status"):
            self._send("find" if op == "submit" else op)

    def _attach(self, response: JobStatusResponse) -> None:
        if self.cancelled_while_in_flight:
            # Cancelled while the submission was on its way: delete what it made.
            self._tell(self.provider, CancelRemote(self.job.id, response.remote_id))
            self._stop_now()
            return
        # The remote id goes into the job with the rest of this status (_apply).
        log.info(
            "job_submitted",
            job_id=self.job.id,
            provider=self.job.provider,
            remote_id=response.remote_id,
        )
        self._apply(response, force_save=True)
        if response.status is not JobStatus.COMPLETED and not self.job.terminal:
            # (Done at once, a cached item has nothing to poll, only links to fetch.)
            self._track()

    def _track(self) -> None:
        assert self.job.remote_id is not None
        self.tracking = True
        self._tell(
            self.provider, Track(self.job.id, self.job.remote_id, self.job.payload, self.actor_ref)
        )

    def _apply(self, response: JobStatusResponse, *, force_save: bool = False) -> None:
        job = self.job
        if job.terminal:
            return
        changes: dict[str, Any] = {}
        if response.remote_id != job.remote_id:
            changes["remote_id"] = response.remote_id
        if response.files and response.files != job.files and not self.links_requested:
            changes["files"] = response.files
        target = response.status
        if target is JobStatus.FAILED:
            self._fail(
                response.error_code or "REMOTE_FAILED",
                response.error_message or "the provider reports the job failed",
                **changes,
            )
            return
        if target is JobStatus.CANCELLED:
            self._finish(JobStatus.CANCELLED, progress=job.progress, **changes)
            return
        remote_done = target is JobStatus.COMPLETED
        if remote_done and self._finish_prefetched(changes):
            return
        if remote_done:
            target = JobStatus.DOWNLOADING
        progress = 100.0 if remote_done else max(0.0, min(100.0, response.progress))
        transitions: list[Transition] = []
        if target.rank > job.status.rank:
            if abs(progress - job.progress) >= 0.05:
                changes["progress"] = progress
            job, transitions = job.advance(target, self.clock.time_ms(), **changes)
            changes = {}
        elif target.rank < job.status.rank:
            log.info(
                "stale_update_ignored",
                job_id=job.id,
                provider=job.provider,
                status=job.status.value,
                reported=target.value,
            )
        same_state = target.rank == job.status.rank and not transitions
        if same_state and abs(progress - job.progress) >= 0.05:
            changes["progress"] = progress
        if changes:
            job = job.evolve(updated_at=self.clock.time_ms(), **changes)
        fetch_links = remote_done and not self.links_requested and self.in_flight != "links"
        if transitions or changes or force_save:
            if transitions or "progress" in changes:
                self.last_progress_at = self.clock.monotonic()
            if fetch_links:
                # The links usually come back at once: write this step together with
                # COMPLETED (one message, one row) unless they do not (see _defer).
                self._defer(job, transitions)
            else:
                self._save(job, transitions)
        if fetch_links:
            self.links_requested = True
            prefetched, self.prefetched = self.prefetched, None
            if prefetched is not None:
                self._links(prefetched)
            else:
                self._send("links")
        if transitions and not self.job.terminal:
            self._schedule_stall_check()

    def _finish_prefetched(self, changes: dict[str, Any]) -> bool:
        """Done at once with its links already here (a cached item): straight to COMPLETED.

        One copy of the job and one change for the supervisor, where the general
        path makes two of each. False when the links are not here (or not ready).
        """
        ready = self.prefetched
        if ready is None or not ready.ready or self.links_requested:
            return False
        self.prefetched = None
        self.links_requested = True
        remote = {"remote_id": changes["remote_id"]} if "remote_id" in changes else {}
        self._finish(JobStatus.COMPLETED, progress=100.0, files=ready.files, **remote)
        return True

    def _links(self, response: Any) -> None:
        if not response.ready:
            # Not progress: links that never come must still end in STALLED.
            self._save_deferred()
            self.scheduler.schedule(
                self.settings.links_retry_interval, self.actor_ref, RetryOp("links")
            )
            self.in_flight = "links-wait"
            return
        self._finish(JobStatus.COMPLETED, progress=100.0, files=response.files)

    def _failed(self, op: str, error: ProviderError) -> None:
        self.in_flight = None
        self._save_deferred()
        if op == "status":
            # A caller asked for the status now: tell it why not, rather than
            # retrying behind its back (the regular poll goes on anyway).
            for reply in self.pending_syncs:
                reply.set_exception(exc_info=(type(error), error, None))
            self.pending_syncs.clear()
            return
        job = self.job
        if self.cancelled_while_in_flight:
            self._stop_now()
            return
        if error.code == "ACTIVE_LIMIT" and op == "submit":
            log.info("slot_refused", job_id=job.id, provider=job.provider)
            self._tell(self.supervisor, SlotRefused(job.id, job.provider, error.retry_after))
            self._stop_now()
            return
        delay = next_delay(self.retries, error, self.settings.retry_policy, self.settings.rng)
        if delay is None:
            self._fail(error.code, error.message)
            return
        self.retries += 1
        log.info(
            "retry_scheduled",
            job_id=job.id,
            provider=job.provider,
            op=op,
            code=error.code,
            attempt=self.retries,
            delay=round(delay, 3),
        )
        # A submission that failed in an ambiguous way may still have reached the
        # provider: look for it before sending it again.
        next_op = "find" if op in ("submit", "find") else op
        self.in_flight = f"{next_op}-wait"
        self.scheduler.schedule(delay, self.actor_ref, RetryOp(next_op))

    def _stall_check(self, since: float) -> None:
        if self.job.terminal:
            return
        limit = self.settings.stall_timeouts.get(self.job.status)
        if limit is None:
            return
        if self.last_progress_at > since:
            self._schedule_stall_check()
            return
        if self.clock.monotonic() - self.last_progress_at >= limit:
            self._fail("STALLED", f"no progress for {limit:g}s in {self.job.status.value}")
        else:
            self._schedule_stall_check()  # woken a hair early: look again at the deadline

    def _schedule_stall_check(self) -> None:
        # One pending check per job: a new one replaces the last, so a long-running
        # daemon does not pile up hours of stale timers.
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None
        limit = self.settings.stall_timeouts.get(self.job.status)
        if limit is not None and not self.job.terminal:
            since = self.last_progress_at
            delay = max(0.0, since + limit - self.clock.monotonic())
            self.stall_timer = self.scheduler.schedule(delay, self.actor_ref, StallCheck(since))

    def _cancel(self, reply: Reply) -> None:
        job = self.job
        remote_id = job.remote_id
        # With a submission on its way, stay to delete whatever it creates.
        linger = self.in_flight in ("submit", "find")
        self.cancelled_while_in_flight = linger
        self._finish(JobStatus.CANCELLED, reply=reply, linger=linger)
        if remote_id is not None:
            self._tell(self.provider, CancelRemote(job.id, remote_id))

    def _sync(self, reply: Reply) -> None:
        if self.job.remote_id is None or self.in_flight is not None:
            self._save(self.job, [], (reply,))
            return
        self.pending_syncs.append(reply)
        self._send("status")

    def _flush_syncs(self) -> None:
        if self.pending_syncs:
            self._save(self.job, [], tuple(self.pending_syncs))
            self.pending_syncs.clear()

    # -- endings -----------------------------------------------------------------
    def _fail(self, code: str, message: str, **changes: Any) -> None:
        log.info("job_failed", job_id=self.job.id, provider=self.job.provider, code=code)
        self._finish(JobStatus.FAILED, error=JobErrorInfo(code, message), **changes)

    def _finish(
        self,
        status: JobStatus,
        *,
        reply: Reply | None = None,
        linger: bool = False,
        **changes: Any,
    ) -> None:
        job, transitions = self.job.advance(status, self.clock.time_ms(), **changes)
        # Waiting syncs are answered by the same (last) change.
        replies = (*((reply,) if reply is not None else ()), *self.pending_syncs)
        self.pending_syncs.clear()
        self._save(job, transitions, replies, finished=True, linger=linger)
        if self.stall_timer is not None:
            self.stall_timer.cancel()
        if job.remote_id is not None and self.tracking:
            self._tell(self.provider, Untrack(job.remote_id))
        self.done = not linger
        if not linger:
            self.stop()

    def _stop_now(self) -> None:
        self.done = True
        self.stop()

    def _defer(self, job: Job, transitions: list[Transition]) -> None:
        self._log_transitions(job, transitions)
        self.job = job
        self.unsaved.extend(transitions)
        self.deferred = True

    def _save_deferred(self) -> None:
        if self.deferred:
            self._save(self.job, [])

    def _log_transitions(self, job: Job, transitions: list[Transition]) -> None:
        if not transitions or not log.enabled(logging.INFO):
            return
        for step in transitions:
            log.info(
                "job_transition",
                job_id=job.id,
                provider=job.provider,
                from_=step.from_status.value if step.from_status else None,
                to=step.to_status.value,
            )

    def _save(
        self,
        job: Job,
        transitions: list[Transition],
        replies: tuple[Reply, ...] = (),
        *,
        finished: bool = False,
        linger: bool = False,
    ) -> None:
        self._log_transitions(job, transitions)
        self.job = job
        steps = (*self.unsaved, *transitions)
        self.unsaved.clear()
        self.deferred = False
        self._tell(self.supervisor, JobChanged(job, steps, replies, finished, linger))

    def _tell(self, ref: Ref | ProviderHandle, message: Any) -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            if ref is self.provider and isinstance(
                message, (Submit, FindExisting, FetchLinks, GetStatus)
            ):
                # The provider actor is being restarted; ProviderRestarted will
                # make us send it again.
                return
            log.debug(
                "tell_target_gone",
                job_id=self.job.id,
                provider=self.job.provider,
                message=type(message).__name__,
            )
