"""SupervisorActor: the only writer of the job store and the parent of every actor."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pykka

from actors._base import ActorThreads, EngineActor
from actors._events import JobEvent, Publish
from actors._job import JobActor, JobSettings
from actors._messages import (
    AdmitTick,
    Cancel,
    CancelJob,
    CancelRemote,
    ChildFailed,
    ClearCompleted,
    CreateJob,
    Flush,
    InjectCrash,
    JobChanged,
    ProviderRestarted,
    Ready,
    Ref,
    Reply,
    RestartProvider,
    RetryJob,
    SlotLimit,
    SlotRefused,
    Sync,
    SyncJob,
    Untrack,
)
from actors._provider import ProviderActor, ProviderHandle
from actors._scheduler import Scheduler
from persistence import JobStore
from providers import (
    InvalidTransition,
    Job,
    JobErrorInfo,
    JobNotFound,
    JobStatus,
    Provider,
    ProviderContext,
    RateLimiter,
    SecretStore,
    StoreError,
    Transition,
    UnknownProvider,
    ValidationError,
)
from providers._log import get_logger

__all__ = ["SupervisorActor", "SupervisorSettings"]

log = get_logger("debrid.actors.supervisor")


@attrs.frozen
class SupervisorSettings:
    """Engine-wide knobs the supervisor applies."""

    job: JobSettings = attrs.field(factory=JobSettings)
    #: OTP-style restart intensity: at most ``max_restarts`` in ``restart_window`` seconds.
    max_restarts: int = 3
    restart_window: float = 30.0
    #: Poll interval per provider name (seconds); ``default_poll_interval`` otherwise.
    poll_intervals: Mapping[str, float] = attrs.field(factory=dict)
    default_poll_interval: float = 2.0
    #: Job actors alive at once, over every provider (None: no cap).
    max_job_actors: int | None = 2000
    #: How long a job refused for lack of slots waits before it is offered again.
    slot_retry_delay: float = 30.0


@attrs.define
class _Pending:
    job: Job
    transitions: tuple[Transition, ...]
    replies: tuple[Reply, ...]
    created: bool = False


class SupervisorActor(EngineActor):
    """Owns the store, the rate limiters and every other actor (one_for_one).

    Changes arrive as messages; the first one of a mailbox drain sends the actor a
    ``Flush`` to itself, which arrives after everything already queued, and writes
    the whole batch in one transaction. Only then are the events published and the
    waiting callers answered, so nothing announced is ever lost by a crash.
    """

    def __init__(
        self,
        *,
        store: JobStore,
        providers: Mapping[str, Provider],
        scheduler: Scheduler,
        bus: Ref,
        settings: SupervisorSettings,
        secrets: SecretStore,
        handles: dict[str, ProviderHandle] | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.providers = dict(providers)
        self.scheduler = scheduler
        self.clock = scheduler.clock
        self.bus = bus
        self.settings = settings
        self.secrets = secrets
        self.limiters: dict[str, dict[str, RateLimiter]] = {}
        #: Shared with the Engine, which asks provider actors directly (test_connection).
        self.provider_refs: dict[str, ProviderHandle] = handles if handles is not None else {}
        self.admission_paused: dict[str, float] = {}
        self.tracked: dict[str, dict[str, tuple[str, Ref]]] = {}
        self.slot_limits: dict[str, int | None] = {}
        self.active: dict[str, set[str]] = {name: set() for name in self.providers}
        self.actors: dict[str, Ref] = {}
        self.waiting: dict[str, list[tuple[int, int, int, str]]] = {n: [] for n in self.providers}
        self.waiting_ids: set[str] = set()
        self._order = itertools.count()
        self.restarts: dict[str, deque[float]] = {}
        self.pending: list[_Pending] = []
        self.pending_ids: set[str] = set()
        self.write_failures = 0
        #: Engine requests forwarded to job actors and not answered yet.
        self.outstanding: dict[str, list[Any]] = {}
        #: Finished jobs whose actor still waits for a submission's answer.
        self.lingering: dict[str, Ref] = {}
        #: Answers that wait for the next commit, with what they answer.
        self.replies: list[tuple[Reply, Any]] = []
        self.flush_scheduled = False
        self.to_spawn: list[tuple[Job, bool]] = []
        self.commits = 0
        self.start_error: Exception | None = None
        #: Reusable threads for the job actors (see ActorThreads), closed on stop.
        self.job_threads = ActorThreads()

    # -- lifecycle ---------------------------------------------------------------
    def on_start(self) -> None:
        """Start a provider actor per provider, then bring back every unfinished job."""
        try:
            self._start()
        except Exception as error:
            # Kept for the Engine's Ready request, which raises it in the caller.
            self.start_error = error
            log.exception("supervisor_start_failed")

    def _start(self) -> None:
        for name, provider in self.providers.items():
            limiters = {
                bucket: RateLimiter(spec.rate, spec.burst, self.clock, name=f"{name}.{bucket}")
                for bucket, spec in provider.rate_limits().items()
            }
            self.limiters[name] = limiters
            provider.bind(
                ProviderContext(clock=self.clock, limiters=limiters, secrets=self.secrets)
            )
            limit = provider.max_active
            if limit is None and getattr(provider, "slots_learnt_lazily", False):
                limit = 1  # provisional, until the provider actor reports what it learnt
            self.slot_limits[name] = limit
            self.tracked[name] = {}
            self._start_provider(name)
        recovered = self.store.non_terminal()
        for job in recovered:
            if job.provider not in self.providers:
                log.warning("job_provider_missing", job_id=job.id, provider=job.provider)
                continue
            self._enqueue(job)
        if recovered:
            log.info("jobs_recovered", count=len(recovered))
        for name in self.providers:
            self._admit(name)
        self._request_flush()

    def on_stop(self) -> None:
        """Stop every child, then write what is still pending."""
        for limiters in self.limiters.values():
            for limiter in limiters.values():
                limiter.close()
        refs = [r for r in self.actors.values() if r is not _PLACEHOLDER]
        refs += list(self.lingering.values())
        refs += [h.ref for h in self.provider_refs.values() if h.ref is not None]
        futures = []
        for ref in refs:
            try:
                futures.append(ref.stop(block=False))
            except pykka.ActorDeadError:
                continue
        # One deadline for all: a provider stuck in a slow HTTP call must not make
        # stop() take ten seconds per actor.
        deadline = time.monotonic() + 10.0
        for future in futures:
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except (pykka.Timeout, pykka.ActorDeadError):
                continue
        self.to_spawn.clear()  # stopping: write what is pending, start nothing new
        self._flush()
        self.job_threads.close(max(0.0, deadline - time.monotonic()))

    def on_receive(self, message: Any) -> Any:
        """Dispatch one message; a store that fails to answer delays it, never kills us."""
        try:
            self._dispatch(message)
        except StoreError as error:
            # A read failed (PostgreSQL dropped the connection, SQLite is locked):
            # handle the same message again shortly rather than lose it.
            log.error("store_read_failed", error=str(error), message=type(message).__name__)
            self.scheduler.schedule(1.0, self.actor_ref, message)

    def _dispatch(self, message: Any) -> None:
        match message:
            case JobChanged(job, transitions, replies, finished, linger):
                self._write(job, tuple(transitions), replies)
                if replies:
                    self._answered_by_actor(job.id, replies)
                if finished:
                    self._finished(job, linger=linger)
            case Flush():
                self.flush_scheduled = False
                self._flush()
            case CreateJob(jobs, reply):
                self._create(jobs, reply)
            case SlotRefused(job_id, provider, retry_after):
                self._slot_refused(job_id, provider, retry_after)
            case ChildFailed("job", job_id, error, trace, urn):
                self._job_crashed(job_id, error, trace, urn)
            case ChildFailed(_, name, error, trace, _):
                self._provider_crashed(name, error, trace)
            case RestartProvider(name):
                self._start_provider(name)
            case SlotLimit(provider, limit):
                self.slot_limits[provider] = limit
                self._admit(provider)
            case AdmitTick(provider):
                if self.admission_paused.pop(provider, None) is not None:
                    # The pause after a refusal is over: trust the provider's own
                    # figure again (the refusal may have been another client's doing).
                    known = self.providers[provider].max_active
                    if known is not None:
                        self.slot_limits[provider] = known
                self._admit(provider)
            case CancelJob(job_id, reply):
                self._cancel(job_id, reply)
            case RetryJob(job_id, reply):
                self._retry(job_id, reply)
            case SyncJob(job_id, reply):
                self._sync(job_id, reply)
            case ClearCompleted(reply):
                self._clear(reply)
            case Ready(reply) if self.start_error is not None:
                reply.set_exception(exc_info=_exc(self.start_error))
            case Ready(reply):
                reply.set(True)
            case InjectCrash():
                raise RuntimeError("injected crash in the supervisor")
            case _:
                log.warning("unexpected_message", message=type(message).__name__)

    # -- writing -------------------------------------------------------------------
    def _write(
        self,
        job: Job,
        transitions: tuple[Transition, ...],
        replies: tuple[Reply, ...] | Reply | None,
        *,
        created: bool = False,
    ) -> None:
        if replies is None:
            replies = ()
        elif not isinstance(replies, tuple):
            replies = (replies,)
        self.pending.append(_Pending(job, transitions, replies, created))
        self.pending_ids.add(job.id)
        self._request_flush()

    def _request_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.actor_ref.tell(Flush())

    def _flush(self) -> None:
        if self.pending:
            batch = self.pending
            try:
                self.store.save_batch([(p.job, p.transitions) for p in batch])
            except (StoreError, ValidationError) as error:
                self.write_failures += 1
                log.error(
                    "store_write_failed",
                    error=str(error),
                    pending=len(batch),
                    attempt=self.write_failures,
                )
                if self.write_failures < _ISOLATE_AFTER:
                    # Keep everything and try again: losing a change is worse than waiting.
                    self.scheduler.schedule(1.0, self.actor_ref, Flush())
                    return
                # Still failing: perhaps one change cannot be stored at all. Write
                # them one by one so that it alone is left out, not the whole engine.
                batch = self._isolate(batch)
                if self.pending:
                    self.scheduler.schedule(1.0, self.actor_ref, Flush())
                    return
            self.write_failures = 0
            self.pending = []
            self.pending_ids.clear()
            self.commits += 1
            self._answer(batch)
            replies, self.replies = self.replies, []
            for reply, value in replies:
                reply.set(value)
        # A few hundred at a time: the changes of jobs already running get written
        # (and announced) in between, instead of after ten thousand thread starts.
        spawns, self.to_spawn = self.to_spawn[:_SPAWN_BATCH], self.to_spawn[_SPAWN_BATCH:]
        for job, fresh in spawns:
            self._spawn(job, fresh)
        if self.to_spawn:
            self._request_flush()

    def _isolate(self, batch: list[_Pending]) -> list[_Pending]:
        """Write each change alone; drop (and report) those that fail by themselves."""
        written: list[_Pending] = []
        for item in batch:
            try:
                self.store.save_batch([(item.job, item.transitions)])
            except ValidationError as error:
                self._drop(item, error)
                continue
            except StoreError as error:
                if self._store_reachable():
                    self._drop(item, error)
                    continue
                # The store itself is down: keep what is left, try again later.
                self.pending = [p for p in batch if p not in written]
                self.pending_ids = {p.job.id for p in self.pending}
                self._answer(written)
                return []
            written.append(item)
        return written

    def _store_reachable(self) -> bool:
        try:
            self.store.count()
        except StoreError:
            return False
        return True

    def _drop(self, item: _Pending, error: Exception) -> None:
        log.error(
            "job_change_unstorable",
            job_id=item.job.id,
            provider=item.job.provider,
            error=str(error),
        )
        for reply in item.replies:
            reply.set_exception(exc_info=_exc(error))

    def _answer(self, written: list[_Pending]) -> None:
        if written:
            self.bus.tell(Publish(_events(written)))
        for item in written:
            for reply in item.replies:
                reply.set(item.job)

    # -- admission -----------------------------------------------------------------
    def _enqueue(self, job: Job, *, front: bool = False) -> None:
        # Jobs that already hold a remote slot come first, then by priority, then age.
        if job.id in self.waiting_ids:
            return  # already in line; a second entry would admit it twice
        holds_slot = 0 if job.remote_id is not None else 1
        order = -next(self._order) if front else next(self._order)
        heapq.heappush(
            self.waiting[job.provider], (holds_slot, -job.payload.priority, order, job.id)
        )
        self.waiting_ids.add(job.id)

    def _has_room(self, provider: str, *, holds_slot: bool = False) -> bool:
        cap = self.settings.max_job_actors
        if cap is not None and len(self.actors) >= cap:
            return False
        if holds_slot:
            return True
        if self.admission_paused.get(provider, 0.0) > self.clock.monotonic():
            return False
        limit = self.slot_limits.get(provider)
        return limit is None or len(self.active[provider]) < limit

    def _admit(self, provider: str) -> None:
        queue = self.waiting.get(provider)
        # Jobs that already hold a remote slot (recovered with a remote id) sort
        # first and always come back: they add nothing to the account's load.
        while queue and (queue[0][0] == 0 or self._has_room(provider)):
            if queue[0][0] == 0 and not self._has_room(provider, holds_slot=True):
                break
            entry = heapq.heappop(queue)
            job_id = entry[-1]
            if job_id not in self.waiting_ids or job_id in self.actors:
                continue  # a stale entry: cancelled, or already given an actor
            if job_id in self.pending_ids:
                self._flush()  # read what we are about to write, not the row before it
                if self.pending:
                    heapq.heappush(queue, entry)  # the store is failing: try later
                    self.scheduler.schedule(1.0, self.actor_ref, AdmitTick(provider))
                    break
            self.waiting_ids.discard(job_id)
            try:
                job = self.store.get(job_id)
            except JobNotFound:
                continue
            except StoreError:
                self.waiting_ids.add(job_id)
                heapq.heappush(queue, entry)
                raise
            if job.terminal:
                continue
            self._reserve(job)
        if self.settings.max_job_actors is not None:
            # A free global place may serve another provider's waiting jobs.
            for other, other_queue in self.waiting.items():
                if other != provider and other_queue and self._has_room(other):
                    self.actor_ref.tell(AdmitTick(other))

    def _reserve(self, job: Job) -> None:
        """Give ``job`` a slot; its actor starts once the submission marker is durable."""
        self.active[job.provider].add(job.id)
        self.actors[job.id] = _PLACEHOLDER
        if job.remote_id is None and not job.submitted:
            job = job.evolve(submitted=True, updated_at=self.clock.time_ms())
            self._write(job, (), None)
            self.to_spawn.append((job, True))
        else:
            self.to_spawn.append((job, False))
        self._request_flush()

    def _spawn(self, job: Job, fresh: bool) -> None:
        ref = JobActor.start(
            job,
            provider=self.provider_refs[job.provider],
            supervisor=self.actor_ref,
            scheduler=self.scheduler,
            settings=self.settings.job,
            fresh=fresh,
            threads=self.job_threads,
        )
        self.actors[job.id] = ref

    def _finished(self, job: Job, *, linger: bool) -> None:
        ref = self.actors.get(job.id)
        self._release(job.id, job.provider)
        if linger and ref is not None and ref is not _PLACEHOLDER:
            # It waits for a submission's answer to delete what that made, then
            # stops itself; forget the ones that have done so.
            for done in [k for k, r in self.lingering.items() if not r.is_alive()]:
                del self.lingering[done]
            self.lingering[job.id] = ref
        self._requeue_outstanding(job.id)
        self._admit(job.provider)

    def _release(self, job_id: str, provider: str) -> None:
        self.actors.pop(job_id, None)
        self.active.get(provider, set()).discard(job_id)

    def _slot_refused(self, job_id: str, provider: str, retry_after: float | None) -> None:
        self._release(job_id, provider)
        self._requeue_outstanding(job_id)
        in_use = len(self.active[provider])
        if in_use:
            # The account has fewer free slots than we thought (other clients use it
            # too): hold at what we have until the provider says otherwise.
            self.slot_limits[provider] = in_use
        delay = retry_after if retry_after is not None else self.settings.slot_retry_delay
        # Without a pause, a job refused while none of ours runs would be offered
        # again at once and hammer the provider.
        self.admission_paused[provider] = self.clock.monotonic() + delay
        self._flush()
        try:
            self._enqueue(self.store.get(job_id), front=True)
        except JobNotFound:
            return
        self.scheduler.schedule(delay, self.actor_ref, AdmitTick(provider))

    # -- requests from the Engine -------------------------------------------------------
    def _create(self, jobs: Sequence[Job], reply: Reply) -> None:
        created: list[Job] = []
        for new_job in jobs:
            job = new_job
            self.waiting.setdefault(job.provider, [])
            self.active.setdefault(job.provider, set())
            transition = Transition(job.id, job.attempt, None, JobStatus.QUEUED, job.created_at)
            if not self.waiting[job.provider] and self._has_room(job.provider):
                # Admitted at once: the submission marker goes in with the row itself.
                job = job.evolve(submitted=True)
                self.active[job.provider].add(job.id)
                self.actors[job.id] = _PLACEHOLDER
                self.to_spawn.append((job, True))
            else:
                self._enqueue(job)
            self._write(job, (transition,), None, created=True)
            created.append(job)
        self.replies.append((reply, created))

    def _cancel(self, job_id: str, reply: Reply) -> None:
        if self._forward(job_id, Cancel(reply)):
            return
        job = self._load(job_id, reply)
        if job is None:
            return
        if job.terminal:
            reply.set_exception(
                exc_info=_exc(InvalidTransition(job.status, JobStatus.CANCELLED, job.id))
            )
            return
        self.waiting_ids.discard(job_id)  # the heap entry is skipped when popped
        self._unspawn(job_id, job.provider)
        if job.remote_id is not None:
            # A recovered job waiting for its actor still has a remote twin.
            self._tell_provider(job.provider, CancelRemote(job.id, job.remote_id))
        job, transitions = job.advance(JobStatus.CANCELLED, self.clock.time_ms())
        self._write(job, tuple(transitions), reply)

    def _retry(self, job_id: str, reply: Reply) -> None:
        job = self._load(job_id, reply)
        if job is None:
            return
        if job.provider not in self.providers:
            reply.set_exception(exc_info=_exc(UnknownProvider(job.provider, tuple(self.providers))))
            return
        try:
            job, transition = job.new_attempt(self.clock.time_ms())
        except InvalidTransition as error:
            reply.set_exception(exc_info=_exc(error))
            return
        self.restarts.pop(job_id, None)
        self._write(job, (transition,), reply, created=True)
        self._enqueue(job)
        self._admit(job.provider)

    def _sync(self, job_id: str, reply: Reply) -> None:
        if self._forward(job_id, Sync(reply)):
            return
        job = self._load(job_id, reply)
        if job is not None:
            reply.set(job)

    def _clear(self, reply: Reply) -> None:
        self._flush()
        try:
            reply.set(self.store.delete_terminal([JobStatus.COMPLETED]))
        except StoreError as error:
            reply.set_exception(exc_info=_exc(error))

    def _forward(self, job_id: str, message: Any) -> bool:
        ref = self.actors.get(job_id)
        if ref is _PLACEHOLDER:
            self._flush()  # its submission marker must be durable before it starts
            if not self.pending:
                ref = self._spawn_now(job_id)
        if ref is None or ref is _PLACEHOLDER:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            # It died (a crash, or its last change is still in our mailbox): handle
            # the request again once those messages are through.
            self.actors.pop(job_id, None)
            self.actor_ref.tell(_REQUEST[type(message)](job_id, message.reply))
            return True
        # Kept until the actor answers: if it finishes or crashes first, we do.
        self.outstanding.setdefault(job_id, []).append(message)
        return True

    def _answered_by_actor(self, job_id: str, replies: tuple[Reply, ...]) -> None:
        waiting = self.outstanding.get(job_id)
        if waiting:
            waiting[:] = [m for m in waiting if not any(m.reply is r for r in replies)]
            if not waiting:
                del self.outstanding[job_id]

    def _requeue_outstanding(self, job_id: str) -> None:
        """Requests the job's actor will never answer: handle them here, after what is queued."""
        for message in self.outstanding.pop(job_id, []):
            if not _is_answered(message.reply):
                self.actor_ref.tell(_REQUEST[type(message)](job_id, message.reply))

    def _spawn_now(self, job_id: str) -> Any:
        """Start the actor of a job that is waiting for its turn to be spawned."""
        for index, (job, fresh) in enumerate(self.to_spawn):
            if job.id == job_id:
                del self.to_spawn[index]
                self._spawn(job, fresh)
                break
        return self.actors.get(job_id)

    def _unspawn(self, job_id: str, provider: str) -> None:
        """Forget a job that was about to get an actor (it ended before starting)."""
        self.to_spawn = [(job, fresh) for job, fresh in self.to_spawn if job.id != job_id]
        if self.actors.get(job_id) is _PLACEHOLDER:
            self._release(job_id, provider)

    def _load(self, job_id: str, reply: Reply) -> Job | None:
        self._flush()
        try:
            return self.store.get(job_id)
        except (JobNotFound, StoreError) as error:
            reply.set_exception(exc_info=_exc(error))
            return None

    # -- failures ------------------------------------------------------------------
    def _too_many_restarts(self, key: str) -> bool:
        now = self.clock.monotonic()
        history = self.restarts.setdefault(key, deque())
        while history and history[0] <= now - self.settings.restart_window:
            history.popleft()
        history.append(now)
        return len(history) > self.settings.max_restarts

    def _job_crashed(self, job_id: str, error: str, trace: str, urn: str) -> None:
        lingering = self.lingering.get(job_id)
        if lingering is not None and str(lingering.actor_urn) == urn:
            del self.lingering[job_id]  # a finished job's leftover actor: nothing to restart
            return
        ref = self.actors.get(job_id)
        if ref is not None and ref is not _PLACEHOLDER and urn and str(ref.actor_urn) != urn:
            return  # an older actor of this job: its successor is fine
        self.actors.pop(job_id, None)
        self._requeue_outstanding(job_id)  # its successor (or the store) answers them
        self._flush()
        try:
            job = self.store.get(job_id)
        except JobNotFound:
            return
        log.error(
            "job_actor_crashed", job_id=job_id, provider=job.provider, error=error, traceback=trace
        )
        if job.terminal or ref is None:
            self._release(job_id, job.provider)
            self._admit(job.provider)
            return
        if self._too_many_restarts(job_id):
            self._release(job_id, job.provider)
            if job.remote_id is not None:
                self._tell_provider(job.provider, Untrack(job.remote_id))
            failed, transitions = job.advance(
                JobStatus.FAILED,
                self.clock.time_ms(),
                error=JobErrorInfo("CRASHED", f"job actor crashed too often: {error}"),
            )
            self._write(failed, tuple(transitions), None)
            self._admit(job.provider)
            return
        self.actors[job_id] = _PLACEHOLDER
        self.to_spawn.append((job, False))
        self._request_flush()

    def _tell_provider(self, provider: str, message: Any) -> None:
        handle = self.provider_refs.get(provider)
        if handle is not None:
            try:
                handle.tell(message)
            except pykka.ActorDeadError:
                log.warning("provider_down", provider=provider, message=type(message).__name__)

    def _provider_crashed(self, name: str, error: str, trace: str) -> None:
        log.error("provider_actor_crashed", provider=name, error=error, traceback=trace)
        handle = self.provider_refs.get(name)
        if handle is not None:
            handle.ref = None
        delay = self.settings.restart_window if self._too_many_restarts(f"provider:{name}") else 0.0
        self.scheduler.schedule(delay, self.actor_ref, RestartProvider(name))

    def _start_provider(self, name: str) -> None:
        interval = self.settings.poll_intervals.get(name, self.settings.default_poll_interval)
        ref = ProviderActor.start(
            name,
            self.providers[name],
            self.actor_ref,
            self.scheduler,
            interval,
            self.tracked[name],
            self.limiters[name],
        )
        handle = self.provider_refs.get(name)
        if handle is None:
            self.provider_refs[name] = ProviderHandle(ref)
            return
        handle.ref = ref
        # Requests queued in the dead actor's mailbox are gone: every live job of
        # this provider re-sends what it was waiting for.
        for job_id in self.active.get(name, ()):
            actor = self.actors.get(job_id)
            if actor is not None and actor is not _PLACEHOLDER:
                try:
                    actor.tell(ProviderRestarted())
                except pykka.ActorDeadError:
                    continue


_SPAWN_BATCH = 256
#: Failed batch writes in a row before changes are written one by one.
_ISOLATE_AFTER = 3

#: Engine requests that may be re-queued when their job's actor is gone.
_REQUEST: dict[type, Any] = {Cancel: CancelJob, Sync: SyncJob}


def _is_answered(reply: Reply) -> bool:
    try:
        reply.get(timeout=0)
    except pykka.Timeout:
        return False
    except Exception:  # noqa: BLE001 - an exception was the answer
        return True
    return True


class _Placeholder:
    """Marks a job whose actor is about to be spawned (its slot is taken)."""


_PLACEHOLDER: Any = _Placeholder()


def _exc(error: BaseException) -> tuple[type[BaseException], BaseException, None]:
    return (type(error), error, None)


def _events(batch: list[_Pending]) -> list[JobEvent]:
    events: list[JobEvent] = []
    for item in batch:
        if item.created:
            events.append(JobEvent("created", item.job, None))
            continue
        if item.transitions:
            last = len(item.transitions) - 1
            for index, step in enumerate(item.transitions):
                # A walk through several states announces each one with the job as
                # it stood at that step; the last one is the stored row itself.
                at_step = item.job if index == last else item.job.evolve(status=step.to_status)
                events.append(JobEvent("transition", at_step, step.from_status))
        else:
            events.append(JobEvent("updated", item.job, item.job.status))
    return events
