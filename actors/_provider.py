"""ProviderActor: one per registered provider; all of that provider's HTTP runs here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pykka

from actors._child import SupervisedActor
from actors._messages import (
    CallFailed,
    CancelRemote,
    FetchLinks,
    FindExisting,
    Found,
    GetStatus,
    Links,
    PollTick,
    Ref,
    SlotLimit,
    StatusUpdate,
    Submit,
    Submitted,
    TestConnection,
    Track,
    Untrack,
)
from actors._scheduler import Scheduler
from providers import (
    JobStatus,
    JobStatusResponse,
    LimiterClosed,
    Provider,
    ProviderError,
    RateLimiter,
    StartJobPayload,
)
from providers._log import get_logger

__all__ = ["ProviderActor", "ProviderHandle"]

log = get_logger("debrid.actors.provider")


#: Polls in a row an item must be missing from before it is looked up alone.
_MISSES_BEFORE_CHECK = 3


class ProviderHandle:
    """A stable address for a provider actor that the supervisor may restart.

    Job actors hold the handle, not the actor: after a restart the supervisor
    points ``ref`` at the new actor (``None`` while it is down).
    """

    __slots__ = ("ref",)

    def __init__(self, ref: Ref | None) -> None:
        self.ref = ref

    def tell(self, message: Any) -> None:
        """Send to the current actor; ``ActorDeadError`` while it is down."""
        ref = self.ref
        if ref is None:
            raise pykka.ActorDeadError("provider actor is restarting")
        ref.tell(message)


class ProviderActor(SupervisedActor):
    """Owns one ``Provider`` object and serialises every call to it.

    Jobs ask it for submissions, links and cancels; it answers with messages.
    Once per ``poll_interval`` it refreshes every tracked remote job with a single
    ``list_statuses`` call and fans the results out to the job actors. A
    ``ProviderError`` goes back to the job that asked; any other exception is a
    crash: the asking job is told (so it can retry) and the actor dies, to be
    restarted by the supervisor.
    """

    def __init__(
        self,
        name: str,
        provider: Provider,
        supervisor: Ref,
        scheduler: Scheduler,
        poll_interval: float,
        tracked: dict[str, tuple[str, Ref]] | None = None,
        limiters: Mapping[str, RateLimiter] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.provider = provider
        self.supervisor = supervisor
        self.scheduler = scheduler
        self.poll_interval = poll_interval
        #: remote id -> (job id, job actor); survives a restart through the supervisor.
        self.tracked: dict[str, tuple[str, Ref]] = tracked if tracked is not None else {}
        self._generation = 0
        self._poll_scheduled = False
        self._last_limit: int | None = None
        self._reported = False
        #: Polls in a row that left a tracked id out.
        self._misses: dict[str, int] = {}
        self._submitted = False
        self.limiters = dict(limiters or {})
        # HTTP providers take a token per request themselves (one call may be
        # several requests); for the others the actor takes one per call.
        self._token_per_call = not getattr(provider, "limits_requests", False)

    def child_id(self) -> tuple[str, str]:
        """``("provider", name)``."""
        return "provider", self.name

    def begin(self) -> None:
        """Schedule the first poll if jobs are already tracked (after a restart)."""
        self._last_limit = self.provider.max_active
        if self.tracked:
            self._schedule_poll(0)

    def on_receive(self, message: Any) -> Any:
        """Dispatch one message."""
        match message:
            case Submit(job_id, payload, reply_to):
                self._call(job_id, "submit", reply_to, lambda: self._submit(payload))
            case FindExisting(job_id, payload, reply_to):
                self._call(
                    job_id, "find", reply_to, lambda: Found(self.provider.find_existing(payload))
                )
            case Track(job_id, remote_id, payload, reply_to):
                attach = getattr(self.provider, "attach", None)
                if callable(attach):
                    attach(remote_id, payload)
                self.tracked[remote_id] = (job_id, reply_to)
                if not self._poll_scheduled:
                    self._schedule_poll(self.poll_interval)
            case Untrack(remote_id):
                self.tracked.pop(remote_id, None)
            case PollTick(generation) if generation == self._generation:
                self._poll_scheduled = False
                self._poll()
            case PollTick():
                pass  # a superseded tick
            case GetStatus(job_id, remote_id, reply_to):
                self._call(
                    job_id,
                    "status",
                    reply_to,
                    lambda: StatusUpdate(self.provider.get_status(remote_id), sync=True),
                )
            case FetchLinks(job_id, remote_id, payload, reply_to):
                self._call(
                    job_id,
                    "links",
                    reply_to,
                    lambda: Links(self.provider.get_file_links(remote_id, payload)),
                )
            case CancelRemote(job_id, remote_id):
                self.tracked.pop(remote_id, None)
                try:
                    self._take_token()
                    self.provider.cancel(remote_id)
                except (ProviderError, LimiterClosed) as error:
                    # Best effort: the job is CANCELLED locally whatever the remote says.
                    log.warning(
                        "remote_cancel_failed",
                        job_id=job_id,
                        provider=self.name,
                        code=getattr(error, "code", "STOPPING"),
                    )
            case TestConnection():
                return self.provider.test_connection()
            case _:
                log.warning(
                    "unexpected_message", provider=self.name, message=type(message).__name__
                )
        self._report_limit()
        return None

    def on_stop(self) -> None:
        """Nothing to release: the provider object is closed by the engine."""

    # -- internals -------------------------------------------------------------
    def _submit(self, payload: StartJobPayload) -> Submitted:
        response = self.provider.start_job(payload)
        self._submitted = True
        if response.status is not JobStatus.COMPLETED:
            return Submitted(response)
        # Done at once (a cached item): fetch its links in the same turn, which
        # saves the job a round trip through this actor's mailbox.
        try:
            self._take_token()
            links = self.provider.get_file_links(response.remote_id, payload)
        except ProviderError:
            return Submitted(response)  # the job asks for them itself, with retries
        return Submitted(response, links)

    def _take_token(self) -> None:
        if self._token_per_call and "default" in self.limiters:
            self.limiters["default"].acquire()

    def _pause(self, error: ProviderError) -> None:
        """A 429 or a Retry-After holds back every job of this provider, not just one."""
        pause = error.retry_after
        if pause is None and error.http_status == 429:
            pause = 60.0
        if pause:
            for limiter in self.limiters.values():
                limiter.pause_for(pause)
            log.info("provider_paused", provider=self.name, seconds=pause, code=error.code)

    def _call(self, job_id: str, op: str, reply_to: Ref, fn: Any) -> None:
        try:
            self._take_token()
            reply = fn()
        except ProviderError as error:
            self._pause(error)
            log.info(
                "provider_call_failed",
                job_id=job_id,
                provider=self.name,
                op=op,
                code=error.code,
                retryable=error.retryable,
            )
            self._tell(reply_to, CallFailed(op, error))
            return
        except LimiterClosed:
            return  # the engine is stopping
        except Exception as exc:
            crash = ProviderError(
                f"provider crashed during {op}: {type(exc).__name__}",
                self.name,
                code="PROVIDER_CRASHED",
                retryable=True,
            )
            self._tell(reply_to, CallFailed(op, crash))
            raise
        self._tell(reply_to, reply)

    def _poll(self) -> None:
        # A job actor that is gone (crashed, finished while an Untrack was lost)
        # is not worth a place in every poll for the life of the process.
        for remote_id in [rid for rid, (_, ref) in self.tracked.items() if not ref.is_alive()]:
            del self.tracked[remote_id]
            self._misses.pop(remote_id, None)
        if not self.tracked:
            return
        try:
            self._take_token()
            statuses = self.provider.list_statuses(list(self.tracked))
        except ProviderError as error:
            self._pause(error)
            log.info("poll_failed", provider=self.name, code=error.code)
            self._schedule_poll(max(self.poll_interval, error.retry_after or 0.0))
            return
        except LimiterClosed:
            return
        for remote_id, response in statuses.items():
            entry = self.tracked.get(remote_id)
            if entry is None:
                continue
            if response.remote_id != remote_id:
                # The item moved (a queued item became a torrent): follow it.
                del self.tracked[remote_id]
                self.tracked[response.remote_id] = entry
            self._misses.pop(remote_id, None)
            self._tell(entry[1], StatusUpdate(response))
        self._check_missing([rid for rid in self.tracked if rid not in statuses])
        self._schedule_poll(self.poll_interval)

    def _check_missing(self, missing: list[str]) -> None:
        """Fail jobs whose remote item is gone (deleted on the website, purged).

        A list may lag behind (TorBox's is cached for minutes), so an item must be
        missing from several polls in a row, and then be confirmed NOT_FOUND
        by itself, before its job is told.
        """
        for remote_id in missing:
            misses = self._misses.get(remote_id, 0) + 1
            self._misses[remote_id] = misses
            if misses < _MISSES_BEFORE_CHECK:
                continue
            job_id, ref = self.tracked[remote_id]
            try:
                self._take_token()
                response = self.provider.get_status(remote_id)
            except ProviderError as error:
                if error.code != "NOT_FOUND":
                    continue  # could not tell this time: ask again next poll
                del self.tracked[remote_id]
                self._misses.pop(remote_id, None)
                log.warning(
                    "remote_job_gone", job_id=job_id, provider=self.name, remote_id=remote_id
                )
                response = JobStatusResponse(
                    remote_id,
                    JobStatus.FAILED,
                    error_code="REMOTE_GONE",
                    error_message="the provider no longer knows this job (deleted remotely?)",
                )
            self._misses.pop(remote_id, None)
            self._tell(ref, StatusUpdate(response))

    def _schedule_poll(self, delay: float) -> None:
        self._generation += 1
        self._poll_scheduled = True
        self.scheduler.schedule(delay, self.actor_ref, PollTick(self._generation))

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
            if isinstance(message, (StatusUpdate, Submitted, Found, Links, CallFailed)):
                log.debug("reply_target_gone", provider=self.name, message=type(message).__name__)
