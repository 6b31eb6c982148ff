"""SupervisorActor: a small router over its parts, the parent of every provider and job actor.

The parts, each in its own module and tested on its own:

- ``Writer`` (``_writer.py``): the only writer of the store; one transaction per
  mailbox drain, then events and replies;
- ``Admission`` (``_admission.py``): the waiting line, slots, pauses, the global
  cap and the paged backlog of a restart;
- ``RestartIntensity`` (``_restarts.py``): how often a child may crash.

A message either completes or leaves no trace: handlers read what they need
first and change state after, and an exception while handling one message
fails that message's replies (``StoreError`` for a failed read) and the
supervisor goes on. Only an injected crash (tests) or a failure in its own
bookkeeping kills it; then the root restarts it from the store.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import pykka

from actors._admission import Admission
from actors._base import ActorThreads, EngineActor, replies_of
from actors._events import JobEvent, Publish
from actors._handle import ProviderDown, ProviderHandle
from actors._handoff import Handoff
from actors._job import JobActor, JobSettings, for_new_attempt
from actors._messages import (
    AdmitTick,
    Adopt,
    Cancel,
    CancelJob,
    ChildFailed,
    ChildKind,
    Cleanup,
    CleanupKind,
    CleanupsChanged,
    ClearCompleted,
    CreateJob,
    DeleteJobs,
    Describe,
    Flush,
    InjectCrash,
    JobChanged,
    Leftover,
    LinksRefreshed,
    ProviderRestarted,
    Ready,
    Ref,
    RefreshLinks,
    Released,
    Reply,
    RestartProvider,
    RetryJob,
    SlotLimit,
    SlotRefused,
    SupervisorDown,
    SupervisorReport,
    Sync,
    SyncFailed,
    SyncJob,
    WindUp,
    owed_by,
    usable_hint,
)
from actors._provider import ProviderActor
from actors._provider_book import ProviderBook
from actors._replies import answer, fail, is_answered
from actors._restarts import RestartIntensity
from actors._scheduler import Scheduler
from actors._writer import EventBacklog, Writer
from persistence import JobStore
from providers import (
    EngineError,
    EngineNotRunning,
    InvalidTransition,
    Job,
    JobErrorInfo,
    JobFile,
    JobNotFound,
    JobStatus,
    Provider,
    RateLimiter,
    StoreError,
    Telemetry,
    Transition,
    UnknownProvider,
    UnstorableValue,
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
    #: How long jobs wait for a provider's account that refuses every call.
    account_fail_after: float = 24 * 3600.0
    #: Waiting jobs read from the store at a time (recovery of a backlog).
    page_size: int = 256
    #: COMPLETED jobs deleted per turn of the mailbox by ``clear_completed``.
    clear_chunk: int = 5000
    #: Counters for the metrics (commit latency, budget waits).
    telemetry: Telemetry = attrs.field(factory=Telemetry, eq=False)


#: Completed jobs' items handed to each provider actor at start (the most recent):
#: a lookup runs soon after its job ends, so the items it could meet are recent.
_RELEASED_AT_START = 10_000
#: Job actors started per turn of the mailbox.
_SPAWN_BATCH = 256
#: Seconds before a message that met a failing store is handled again.
_STORE_RETRY = 1.0


class _Placeholder:
    """Marks a job whose actor is about to be spawned (its slot is taken)."""


_PLACEHOLDER: Any = _Placeholder()


@attrs.define
class _Clearing:
    """A ``clear_completed`` under way, a chunk per turn of the mailbox."""

    reply: Reply
    deleted: int = 0


class SupervisorActor(EngineActor):
    """Owns the store's writes, the provider and job actors, admission and restarts."""

    def __init__(
        self,
        *,
        store: JobStore,
        providers: Mapping[str, Provider],
        limiters: Mapping[str, Mapping[str, RateLimiter]],
        books: Mapping[str, ProviderBook],
        scheduler: Scheduler,
        bus: Ref,
        settings: SupervisorSettings,
        handles: dict[str, ProviderHandle],
        root: Ref | None = None,
        backlog: EventBacklog | None = None,
        leftovers: dict[str, list[Cleanup | Released]] | None = None,
        initial: bool = True,
    ) -> None:
        super().__init__()
        self.store = store
        self.providers = dict(providers)
        self.limiters = limiters
        self.books = books
        self.scheduler = scheduler
        self.clock = scheduler.clock
        self.bus = bus
        self.settings = settings
        self.root = root
        self.initial = initial
        #: Shared with the Engine, which asks provider actors directly (test_connection).
        self.provider_refs = handles
        self.writer = Writer(store, bus, backlog, telemetry=settings.telemetry)
        self.admission = Admission(
            store,
            self.providers,
            self.clock,
            max_job_actors=settings.max_job_actors,
            page_size=settings.page_size,
        )
        self.restarts = RestartIntensity(settings.max_restarts, settings.restart_window, self.clock)
        self.actors: dict[str, Ref] = {}
        #: Engine requests forwarded to job actors and not answered yet.
        self.outstanding: dict[str, list[Any]] = {}
        #: Cleanups and releases for provider actors, kept while one is down.
        self.handoff = Handoff(
            store, books, self.provider_refs, leftovers if leftovers is not None else {}
        )
        self.flush_scheduled = False
        self.to_spawn: list[tuple[Job, bool]] = []
        self.clearing: _Clearing | None = None
        #: The slot limit in force before a refusal clamped it, per provider.
        self.clamped: dict[str, int | None] = {}
        self.start_error: Exception | None = None
        self.children_stopped = False
        #: Reusable threads for the job actors (see ActorThreads), closed on stop.
        self.job_threads = ActorThreads()

    # -- lifecycle ---------------------------------------------------------------
    def on_start(self) -> None:
        """Start a provider actor per provider, then bring back every unfinished job."""
        try:
            self._start()
        except Exception as error:
            log.exception("supervisor_start_failed")
            if self.initial:
                # Kept for the Engine's Ready request, which raises it in the caller.
                self.start_error = error
                return
            # A restart that cannot start is a crash: the root counts it and decides.
            self._went_down(error)
            raise

    def _start(self) -> None:
        states = self.store.provider_states()  # read first: a failure here changes nothing
        owners = {name: self.store.live_remote_ids(name) for name in self.providers}
        released = {
            name: self.store.completed_remote_ids(
                name, limit=_RELEASED_AT_START, failed_too=self.settings.job.keep_failed_items
            )
            for name in self.providers
        }
        owed = {name: self.handoff.owed_at_start(name) for name in self.providers}
        for name, provider in self.providers.items():
            limit = provider.max_active
            if limit is None and getattr(provider, "slots_learnt_lazily", False):
                # What the provider taught before the restart, else one at a time
                # until it reports what it learnt.
                limit = states.get(name) or 1
            self.admission.slot_limits[name] = limit
            self.admission.open_backlog(name)
            self._start_provider(name)
            deletes, lookups, recorded = owed[name]
            adopt = Adopt(
                tuple(owners[name]), tuple(released[name]), tuple(deletes), recorded, lookups
            )
            self.handoff.tell(name, adopt)
        for name in self.providers:
            self._admit(name)
        self._request_flush()

    def on_stop(self) -> None:
        """Stop every child, then write what is still pending."""
        self._stop_children(wait=True)
        self.to_spawn.clear()  # stopping: write what is pending, start nothing new
        self._drain_last_changes()
        try:
            self.writer.flush()
        except Exception:
            log.exception("final_flush_failed")
        self.handoff.save_owed()
        self._fail_everything(EngineNotRunning("the engine stopped"))

    def _wind_up_jobs(self) -> None:
        """A clean stop: every job actor with a local download hands back what its
        workers synced since the last checkpoint, which goes in with the final flush."""
        deadline = time.monotonic() + 10.0
        futures = []
        for ref in self.actors.values():
            if ref is _PLACEHOLDER:
                continue
            with contextlib.suppress(pykka.ActorDeadError):
                futures.append(ref.ask(WindUp(), block=False))
        for future in futures:
            try:
                job = future.get(timeout=max(0.0, deadline - time.monotonic()))
            except (pykka.Timeout, pykka.ActorDeadError):
                continue
            except Exception:
                log.exception("job_wind_up_failed")
                continue
            if isinstance(job, Job):
                self.writer.add(job, ())

    def _drain_last_changes(self) -> None:
        """Write the changes that reached the inbox behind the stop message (before
        Pykka refused further tells); anything else there is answered as not done.
        (A download's last synced ranges come by ``_wind_up_jobs``, asked.)"""
        stopped = EngineNotRunning("the engine stopped")
        inbox = self.actor_inbox
        while not inbox.empty():  # (this thread is the only one that takes from it)
            envelope = inbox.get()
            message = getattr(envelope, "message", None)
            if isinstance(message, JobChanged):
                # (Written, not acted on: nothing new starts while the engine stops.)
                if message.cleanup is not None:
                    self._record_cleanup(message.job.provider, message.cleanup)
                self.writer.add(message.job, tuple(message.transitions), tuple(message.replies))
                continue
            for reply in replies_of(message):
                fail(reply, stopped)
            reply_to = getattr(envelope, "reply_to", None)
            if reply_to is not None:
                reply_to.set_exception(exc_info=(EngineNotRunning, stopped, None))

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """A crash of the supervisor itself: answer what waits, stop the children, tell the root."""
        trace = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("supervisor_crashed", error=repr(exc), traceback=trace)
        self._went_down(exc)

    def _went_down(self, error: BaseException) -> None:
        down = EngineNotRunning(
            "the engine's supervisor crashed and is being restarted from the store; "
            "this request may not have taken effect"
        )
        self._fail_everything(down)
        refs = self._stop_children(wait=False)
        if self.root is not None:
            try:
                self.root.tell(SupervisorDown(str(self.actor_urn), repr(error), tuple(refs)))
            except pykka.ActorDeadError:
                log.warning("supervisor_root_gone")

    def _fail_everything(self, error: BaseException) -> None:
        self.writer.fail_all(error)
        for messages in self.outstanding.values():
            for message in messages:
                fail(message.reply, error)
        self.outstanding.clear()
        if self.clearing is not None:
            fail(self.clearing.reply, error)
            self.clearing = None

    def _stop_children(self, *, wait: bool) -> list[Ref]:
        if self.children_stopped:
            return []
        self.children_stopped = True
        refs = [r for r in self.actors.values() if r is not _PLACEHOLDER]
        refs += [h.ref for h in self.provider_refs.values() if h.ref is not None]
        for handle in self.provider_refs.values():
            handle.point_at(None)
        if wait:
            self._wind_up_jobs()
        futures = []
        for ref in refs:
            try:
                futures.append(ref.stop(block=False))
            except pykka.ActorDeadError:
                continue
        if wait:
            # One deadline for all: a provider stuck in a slow HTTP call must not make
            # stop() take ten seconds per actor.
            deadline = time.monotonic() + 10.0
            for future in futures:
                try:
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
                except (pykka.Timeout, pykka.ActorDeadError):
                    continue
            self.job_threads.close(max(0.0, deadline - time.monotonic()))
        else:
            self.job_threads.close(0.0)
        return refs

    # -- messages ----------------------------------------------------------------
    def on_receive(self, message: Any) -> Any:
        """Handle one message; its failure fails its replies, never the supervisor."""
        try:
            self._dispatch(message)
        except StoreError as error:
            log.error("store_read_failed", error=str(error), message=type(message).__name__)
            replies = replies_of(message)
            for reply in replies:
                fail(reply, error)
            if not replies and isinstance(message, _RETRIED_ON_STORE_ERROR):
                # Read before any change, so handling it again later is safe.
                self.scheduler.schedule(_STORE_RETRY, self.actor_ref, message)
        except _Crash:
            raise
        except EngineError as error:
            # An answer, not a fault: the job does not exist, the move is not allowed...
            for reply in replies_of(message):
                fail(reply, error)
        except Exception as error:
            log.exception("supervisor_message_failed", message=type(message).__name__)
            kind = type(message).__name__
            wrapped = EngineError(f"the engine failed to handle {kind}: {error!r}")
            for reply in replies_of(message):
                fail(reply, wrapped)

    def _dispatch(self, message: Any) -> None:
        match message:
            case JobChanged():
                self._job_changed(message)
            case Flush():
                self.flush_scheduled = False
                self._flush()
            case CreateJob(jobs, reply, chosen_ids):
                self._create(jobs, reply, chosen_ids=chosen_ids)
            case SlotRefused(job_id, provider, retry_after, cooldown):
                self._slot_refused(job_id, provider, retry_after, cooldown=cooldown)
            case ChildFailed(ChildKind.JOB, job_id, error, trace, urn):
                self._job_crashed(job_id, error, trace, urn)
            case ChildFailed(ChildKind.PROVIDER, name, error, trace, urn):
                self._provider_crashed(name, error, trace, urn)
            case RestartProvider(name):
                self._start_provider(name)
            case SlotLimit(provider, limit):
                self._slot_limit(provider, limit)
            case AdmitTick(provider):
                self._admit_tick(provider)
            case CancelJob(job_id, reply):
                self._cancel(job_id, reply)
            case RetryJob(job_id, reply):
                self._retry(job_id, reply)
            case SyncJob(job_id, reply):
                self._sync(job_id, reply)
            case LinksRefreshed(job_id, remote_id, files, replies):
                self._links_refreshed(job_id, remote_id, files, replies)
            case ClearCompleted(reply):
                self._clear(reply)
            case DeleteJobs(job_ids, reply):
                self._delete(job_ids, reply)
            case CleanupsChanged(provider, owed, settled):
                self.writer.note_cleanups(provider, owed, settled)
                self._request_flush()
            case Leftover(provider, leftover):
                self.handoff.hand(provider, leftover)
            case SyncFailed(job_id, replies, error):
                for reply in replies:
                    fail(reply, error)
                self._answered_by_actor(job_id, replies)
            case Describe(reply):
                answer(reply, self._describe())
            case Ready(reply) if self.start_error is not None:
                fail(reply, self.start_error)
            case Ready(reply):
                answer(reply, True)
            case InjectCrash():
                raise _Crash("injected crash in the supervisor")
            case _:
                log.warning("unexpected_message", message=type(message).__name__)

    # -- writing -------------------------------------------------------------------
    def _job_changed(self, message: JobChanged) -> None:
        """A job actor's change: written with the next commit, with what it owes remotely."""
        job, replies = message.job, tuple(message.replies)
        if message.cleanup is not None:
            self._record_cleanup(job.provider, message.cleanup)
        self._write(job, tuple(message.transitions), replies)
        if replies:
            self._answered_by_actor(job.id, replies)
        if message.finished:
            # A failed job's item kept on purpose (keep_failed_items) comes with no cleanup.
            keep = self.settings.job.keep_failed_items and message.cleanup is None
            self.handoff.completed(job, keep_failed=keep)
            self._finished(job)

    def _write(
        self,
        job: Job,
        transitions: tuple[Transition, ...],
        replies: tuple[Reply, ...] = (),
        *,
        created: bool = False,
    ) -> None:
        self.writer.add(job, transitions, replies, created=created)
        if not self.flush_scheduled:  # what _request_flush does, once per change
            self._request_flush()

    def _request_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.actor_ref.tell(Flush())

    def _flush(self) -> bool:
        outcome = self.writer.flush()
        for job_id in outcome.dropped:
            self._forget_unstored(job_id)
        if not outcome.committed:
            self.scheduler.schedule(_STORE_RETRY, self.actor_ref, Flush())
            return False
        self.handoff.release_committed(outcome.dropped)
        # A few hundred at a time: the changes of jobs already running get written
        # (and announced) in between, instead of after ten thousand thread starts.
        spawns, self.to_spawn = self.to_spawn[:_SPAWN_BATCH], self.to_spawn[_SPAWN_BATCH:]
        for job, fresh in spawns:
            self._spawn_or_requeue(job, fresh)
        if self.to_spawn or self.clearing is not None:
            self._request_flush()
        if self.clearing is not None:
            self._clear_chunk()
        return True

    def _committed(self, job_id: str) -> Job:
        """The job as committed, for an answer to a caller: nothing is told before it is durable."""
        if self.writer.has_pending(job_id) and not self._flush():
            raise StoreError(f"job {job_id}: its last change is not written yet (store failing)")
        return self.store.get(job_id)

    def _forget_unstored(self, job_id: str) -> None:
        """A change of ``job_id`` could not be stored: a job about to start does not start."""
        self.admission.discard(job_id)
        if self.actors.get(job_id) is _PLACEHOLDER:
            del self.actors[job_id]
            for job, _ in [entry for entry in self.to_spawn if entry[0].id == job_id]:
                self.admission.release(job_id, job.provider)
            self.to_spawn = [entry for entry in self.to_spawn if entry[0].id != job_id]

    def _current(self, job_id: str) -> Job:
        """The job as it will be once written: a pending change, else the stored row."""
        pending = self.writer.latest(job_id)
        return pending if pending is not None else self.store.get(job_id)

    # -- admission -----------------------------------------------------------------
    def _admit(self, provider: str) -> None:
        """Give waiting jobs of ``provider`` an actor while there is room.

        Each job admitted is a whole step; a failed read stops the loop where it
        is (nothing half done) and admission is tried again shortly, so the
        message that freed the slot is not failed for it.
        """
        if self.admission.idle(provider):
            # Nobody of ``provider`` waits (the common case, once per finished
            # job), but a place freed under the global cap may serve another.
            if self.settings.max_job_actors is not None:
                self._offer_free_places(provider)
            return
        try:
            self._admit_waiting(provider)
        except StoreError as error:
            log.error("admission_read_failed", provider=provider, error=str(error))
            self.scheduler.schedule(_STORE_RETRY, self.actor_ref, AdmitTick(provider))

    def _admit_waiting(self, provider: str) -> None:
        admission = self.admission
        while True:
            # A page read must see what is about to be written.
            if admission.backlog_open(provider) and self.writer.has_pending() and not self._flush():
                self.scheduler.schedule(_STORE_RETRY, self.actor_ref, AdmitTick(provider))
                return
            admission.refill(provider)
            head = admission.head(provider)
            if head is None:
                break
            job_id, holds_slot = head
            if not admission.has_room(provider, holds_slot=holds_slot):
                break
            job = self._current(job_id)  # read before taking it from the line
            admission.pop(provider)
            if job.terminal or job.id in self.actors:
                continue
            self._reserve(job)
        self._offer_free_places(provider)

    def _offer_free_places(self, provider: str) -> None:
        """A free global place may serve another provider's waiting jobs."""
        if self.settings.max_job_actors is not None:
            for other in self.admission.others_waiting(provider):
                self.actor_ref.tell(AdmitTick(other))

    def _admit_tick(self, provider: str) -> None:
        paused = self.admission.paused.get(provider)
        if paused is not None and paused <= self.clock.monotonic():
            # The pause after a refusal is over (a tick before its end, from an
            # earlier and shorter refusal, ends nothing): trust the provider's own
            # figure again, or the limit before the refusal clamped it (the
            # refusal may have been another client's doing).
            del self.admission.paused[provider]
            known = self.providers[provider].max_active
            before = self.clamped.pop(provider, None)
            self.admission.slot_limits[provider] = known if known is not None else before
        self._admit(provider)

    def _reserve(self, job: Job) -> None:
        """Give ``job`` a slot; its actor starts once the submission marker is durable."""
        self.admission.take_slot(job.id, job.provider)
        self.actors[job.id] = _PLACEHOLDER
        if job.remote_id is None and not job.submitted:
            job = job.evolve(submitted=True, updated_at=self.clock.time_ms())
            self._write(job, ())
            self.to_spawn.append((job, True))
        else:
            self.to_spawn.append((job, False))
        self._request_flush()

    def _spawn_or_requeue(self, job: Job, fresh: bool) -> None:
        """Start the job's actor; if that fails (no thread to be had), put it back in line."""
        try:
            self._spawn(job, fresh)
        except Exception as error:  # noqa: BLE001 - one job's start must not strand the batch
            log.error("job_spawn_failed", job_id=job.id, provider=job.provider, error=repr(error))
            if self.actors.get(job.id) is _PLACEHOLDER:
                del self.actors[job.id]
            self.admission.release(job.id, job.provider)
            self.admission.enqueue(job, front=True)
            self.scheduler.schedule(_STORE_RETRY, self.actor_ref, AdmitTick(job.provider))

    def _spawn(self, job: Job, fresh: bool) -> None:
        if self.actors.get(job.id) is not _PLACEHOLDER:
            return  # it ended (a cancel) before its turn came
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

    def _finished(self, job: Job) -> None:
        self.actors.pop(job.id, None)
        self.admission.release(job.id, job.provider)
        self.restarts.forget(job.id)
        self._requeue_outstanding(job.id)
        self._admit(job.provider)

    def _slot_refused(
        self, job_id: str, provider: str, retry_after: float | None, *, cooldown: bool = False
    ) -> None:
        job = self._current(job_id)  # read first
        self.actors.pop(job_id, None)
        self.admission.release(job_id, provider)
        self._requeue_outstanding(job_id)
        in_use = self.admission.in_use(provider)
        if in_use and not cooldown:
            # The account has fewer free slots than we thought (other clients use it
            # too): hold at what we have until the provider says otherwise.
            self.clamped.setdefault(provider, self.admission.slot_limits.get(provider))
            self.admission.slot_limits[provider] = in_use
        # A hint of nothing (0, below 0, NaN) is no hint: without a pause the job
        # would be admitted, looked up and refused again as fast as actors start.
        hint = usable_hint(retry_after)
        delay = hint if hint is not None else self.settings.slot_retry_delay
        delay = min(max(0.0, delay), self.settings.job.retry_policy.max_retry_after)
        # Without a pause, a job refused while none of ours runs would be offered
        # again at once and hammer the provider. A longer pause already running stays.
        until = self.clock.monotonic() + delay
        self.admission.paused[provider] = max(until, self.admission.paused.get(provider, 0.0))
        if not job.terminal:
            self.admission.enqueue(job, front=True)
        self.scheduler.schedule(delay, self.actor_ref, AdmitTick(provider))
        self._offer_free_places(provider)

    def _slot_limit(self, provider: str, limit: int | None) -> None:
        self.admission.slot_limits[provider] = limit
        try:
            self.store.save_provider_state(provider, limit)
        except StoreError as error:
            # Only a hint for the next start: not worth failing anything for.
            log.warning("provider_state_unsaved", provider=provider, error=str(error))
        self._admit(provider)

    # -- requests from the Engine -------------------------------------------------------
    def _ids_free(self, jobs: Sequence[Job], reply: Reply) -> bool:
        """True when no id of ``jobs`` is a job already (live, being written or stored);
        else the reply fails with a ``ValidationError`` and nothing is made.

        The facade checks too, but only against committed rows: two callers with one
        id can both pass it. Here, on the one writer's thread, the check is exact.
        """
        ids = [job.id for job in jobs]
        taken = [i for i in ids if i in self.actors or self.writer.has_pending(i)]
        if not taken:
            taken = sorted(self.store.get_many(ids))
        if not taken:
            return True
        fail(reply, ValidationError(f"ids[{ids.index(taken[0])}]", "already a job's id",
                                    value=taken[0], expected="an id no job has"))
        return False

    def _create(self, jobs: Sequence[Job], reply: Reply, *, chosen_ids: bool = False) -> None:
        if chosen_ids and not self._ids_free(jobs, reply):
            return
        created: list[Job] = []
        admission = self.admission
        for new_job in jobs:
            job = new_job
            transition = Transition(job.id, job.attempt, None, JobStatus.QUEUED, job.created_at)
            provider = job.provider
            if admission.take_if_free(job.id, provider):
                # Admitted at once: the submission marker goes in with the row itself.
                job = job.evolve(submitted=True)
                self.actors[job.id] = _PLACEHOLDER
                self.to_spawn.append((job, True))
            else:
                admission.enqueue(job)
            self._write(job, (transition,), created=True)
            created.append(job)
        self.writer.reply_after_commit(reply, created, tuple([job.id for job in created]))

    def _cancel(self, job_id: str, reply: Reply) -> None:
        if self._forward(job_id, Cancel(reply)):
            return
        job = self._committed(job_id)
        if job.terminal:
            fail(reply, InvalidTransition(job.status, JobStatus.CANCELLED, job.id))
            return
        cancelled, transitions = job.advance(JobStatus.CANCELLED, self.clock.time_ms())
        self.admission.discard(job_id)  # the line's entry is skipped when it comes up
        self._unspawn(job)
        if job.remote_id is not None or (job.submitted and job.remote_id is None):
            # A recovered job waiting for its actor may have a remote twin.
            unsure = job.remote_id is None
            self._cleanup(job.provider, Cleanup(job.id, job.payload, job.remote_id, unsure))
        self._write(cancelled, tuple(transitions), (reply,))

    def _retry(self, job_id: str, reply: Reply) -> None:
        job = self._committed(job_id)
        if job.provider not in self.providers:
            fail(reply, UnknownProvider(job.provider, tuple(self.providers)))
            return
        # Read first: an item a completed job shares (a duplicate the service
        # answered with the item it had) is that job's files, never deleted, even
        # when the provider actor's record of released items has forgotten it.
        # So is one another failed job keeps (keep_failed_items).
        keep = self.settings.job.keep_failed_items
        shared = job.remote_id is not None and self.store.is_completed_item(
            job.provider, job.remote_id, failed_too=keep, besides=job.id
        )
        try:
            again, transition = job.new_attempt(self.clock.time_ms())
        except InvalidTransition as error:
            fail(reply, error)
            return
        again = for_new_attempt(job, again)
        self.restarts.forget(job_id)
        if job.remote_id is not None and not shared:
            # The new attempt forgets the last one's item and submits afresh. That
            # item's cleanup may be lost (a stop that could not record it, a killed
            # process, a delete given up): hand it over again, ahead of the new
            # attempt's requests. An item gone already costs one request; one that
            # another live job owns, or a completed one released, is kept.
            # A failed job's item kept on purpose is released like a completion's:
            # this attempt takes it back (no completed job shares it, read above).
            unkeep = job.status is JobStatus.FAILED and keep
            self._cleanup(
                job.provider, Cleanup(job.id, job.payload, job.remote_id, False, unkeep=unkeep)
            )
        self._write(again, (transition,), (reply,), created=True)
        self.admission.enqueue(again)
        self._admit(again.provider)

    def _sync(self, job_id: str, reply: Reply) -> None:
        if self._forward(job_id, Sync(reply)):
            return
        job = self._committed(job_id)
        handle = self.provider_refs.get(job.provider)
        if (
            job.status is JobStatus.COMPLETED
            and job.remote_id is not None
            and handle is not None
            and any(f.link for f in job.files)
        ):
            # Links handed to the caller must work: the provider asks again for
            # those that expired (one per turn), then we commit and answer.
            try:
                handle.tell(RefreshLinks(job, reply))
                return
            except ProviderDown:
                pass  # restarting: the links as they are
        answer(reply, job)

    def _links_refreshed(
        self,
        job_id: str,
        remote_id: str | None,
        files: tuple[JobFile, ...] | None,
        replies: tuple[Reply, ...],
    ) -> None:
        job = self._committed(job_id)
        if files is None or job.status is not JobStatus.COMPLETED or job.remote_id != remote_id:
            for reply in replies:  # nothing expired, or the job changed meanwhile
                answer(reply, job)
            return
        self._write(job.evolve(files=files, updated_at=self.clock.time_ms()), (), replies)

    def _clear(self, reply: Reply) -> None:
        if self.clearing is not None:
            fail(reply, EngineError("clear_completed is already running"))
            return
        self.clearing = _Clearing(reply)
        self._request_flush()

    def _delete(self, job_ids: Sequence[str], reply: Reply) -> None:
        """Delete the finished jobs among ``job_ids`` in one transaction; say why others stay.

        A job goes only when it is finished, has no actor and no unwritten change:
        one being retried (QUEUED again, its row not yet written) is kept. So is
        one whose remote cleanup still owes a lookup (the answer to its submission
        was lost): the next start needs its row to look for that item. The delete
        itself removes only rows that are still finished (another engine on a
        shared store may have retried one since it was read). Local files stay.
        """
        if not self._flush_pending_of(job_ids):
            fail(reply, StoreError("cannot delete jobs: their last changes are not written"))
            return
        kept: dict[str, EngineError | None] = {}
        candidates: dict[str, Job] = {}
        for job_id in dict.fromkeys(job_ids):
            try:
                job = self.store.get(job_id)
            except (JobNotFound, UnstorableValue):  # an id no job can have
                kept[job_id] = JobNotFound(job_id)
                continue
            if not job.terminal or job_id in self.actors or self.writer.has_pending(job_id):
                kept[job_id] = InvalidTransition(job.status, "deleted", job_id)
                continue
            candidates[job_id] = job
        owed = self._owed_lookups(candidates.values())
        for job_id in owed:
            kept[job_id] = EngineError(
                f"job {job_id} is kept until its remote item has been looked for and deleted"
            )
        doomed = [job_id for job_id in candidates if job_id not in owed]
        # A StoreError fails the message: one transaction, nothing was deleted.
        deleted = self.store.delete_finished(doomed)
        downloads = self.settings.job.downloads
        bandwidth = downloads.bandwidth if downloads is not None else None
        gone: list[JobEvent] = []
        for job_id in doomed:
            if job_id not in deleted:
                kept[job_id] = InvalidTransition("a retried job", "deleted", job_id)
                continue
            self.restarts.forget(job_id)
            if bandwidth is not None:
                bandwidth.forget(job_id)  # a failed job's cap, kept for its retry
            kept[job_id] = None
            job = candidates[job_id]
            gone.append(JobEvent("deleted", job, job.status))
        events = self.writer.backlog.admit(gone)
        if events:
            self.bus.tell(Publish(events))
        answer(reply, kept)

    def _owed_lookups(self, jobs: Iterable[Job]) -> set[str]:
        """The ids among ``jobs`` whose remote cleanup still owes a lookup by job id.

        The provider's book is the word while it runs (the lookups the store handed
        it at start included); the store's record only for a provider this engine
        does not run. A lookup handed over a moment ago is in the provider actor's
        mailbox with its payload, so it still runs in this process.
        """
        by_provider: dict[str, list[str]] = {}
        for job in jobs:
            by_provider.setdefault(job.provider, []).append(job.id)
        owed: set[str] = set()
        for provider, ids in by_provider.items():
            book = self.books.get(provider)
            recorded = set(self.store.pending_cleanups(provider)[1]) if book is None else set()
            for job_id in ids:
                noted = self.writer.cleanups.get((provider, CleanupKind.LOOKUP.value, job_id))
                if job_id in recorded or noted or (book is not None and job_id in book.lookups):
                    owed.add(job_id)
        return owed

    def _flush_pending_of(self, job_ids: Sequence[str]) -> bool:
        """Write what is pending when any of ``job_ids`` has an unwritten change."""
        if any(self.writer.has_pending(job_id) for job_id in job_ids):
            return self._flush()
        return True

    def _clear_chunk(self) -> None:
        """Delete one chunk of COMPLETED jobs; the rest wait for the next turn."""
        clearing = self.clearing
        assert clearing is not None
        try:
            deleted = self.store.delete_terminal(
                [JobStatus.COMPLETED], limit=self.settings.clear_chunk
            )
        except StoreError as error:
            self.clearing = None
            fail(clearing.reply, error)
            return
        clearing.deleted += deleted
        if deleted < self.settings.clear_chunk:
            self.clearing = None
            answer(clearing.reply, clearing.deleted)

    def _forward(self, job_id: str, message: Any) -> bool:
        ref = self.actors.get(job_id)
        # Its submission marker must be durable before it starts.
        if ref is _PLACEHOLDER and self._flush() and not self.writer.has_pending(job_id):
            ref = self._spawn_now(job_id)
        if ref is None or ref is _PLACEHOLDER:
            return False
        # If it died, its crash report or its last change is on its way to us, and
        # handling that answers what is kept here (re-telling the request to
        # ourselves would spin while that report waits for the store).
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(message)
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
        for message in self.outstanding.pop(job_id, ()):
            if not is_answered(message.reply):
                self.actor_ref.tell(_REQUEST[type(message)](job_id, message.reply))

    def _spawn_now(self, job_id: str) -> Any:
        """Start the actor of a job that is waiting for its turn to be spawned."""
        for index, (job, fresh) in enumerate(self.to_spawn):
            if job.id == job_id:
                del self.to_spawn[index]
                self._spawn_or_requeue(job, fresh)
                break
        return self.actors.get(job_id)

    def _unspawn(self, job: Job) -> None:
        """Forget a job that was about to get an actor (it ended before starting)."""
        if self.actors.get(job.id) is _PLACEHOLDER:
            del self.actors[job.id]
            self.to_spawn = [(j, fresh) for j, fresh in self.to_spawn if j.id != job.id]
            self.admission.release(job.id, job.provider)

    def _describe(self) -> SupervisorReport:
        admission = self.admission
        now = self.clock.monotonic()
        return SupervisorReport(
            slots_used={name: admission.in_use(name) for name in self.providers},
            slot_limits=dict(admission.slot_limits),
            admission_paused={
                name: self.clock.time() + (until - now)
                for name, until in admission.paused.items()
                if until > now
            },
            waiting_in_memory={name: admission.waiting_count(name) for name in self.providers},
            backlog_open={name: admission.backlog_open(name) for name in self.providers},
            job_actors=sum(1 for r in self.actors.values() if r is not _PLACEHOLDER),
            pending_writes=len(self.writer.pending),
            write_failures=self.writer.failures,
            commits=self.writer.commits,
            providers_down=tuple(n for n, h in self.provider_refs.items() if h.ref is None),
        )

    # -- failures ------------------------------------------------------------------
    def _job_crashed(self, job_id: str, error: str, trace: str, urn: str) -> None:
        ref = self.actors.get(job_id)
        if ref is None or ref is _PLACEHOLDER or (urn and str(ref.actor_urn) != urn):
            return  # a finished job's actor, or an older one: its successor is fine
        job = self._current(job_id)  # read first: a failed read leaves everything as it was
        log.error(
            "job_actor_crashed", job_id=job_id, provider=job.provider, error=error, traceback=trace
        )
        del self.actors[job_id]
        self._requeue_outstanding(job_id)  # its successor (or the store) answers them
        if job.terminal:
            self.admission.release(job_id, job.provider)
            self._admit(job.provider)
            return
        if self.restarts.record(job_id):
            self.admission.release(job_id, job.provider)
            self.restarts.forget(job_id)
            failed, transitions = job.advance(
                JobStatus.FAILED,
                self.clock.time_ms(),
                error=JobErrorInfo("CRASHED", f"job actor crashed too often: {error}"),
            )
            self._write(failed, tuple(transitions))
            # What its submissions made remotely goes with it (unless failed jobs'
            # items are kept: then it is released after the commit, as a completion's).
            unsure = job.remote_id is None and job.submitted
            if job.remote_id is not None and not unsure and self.settings.job.keep_failed_items:
                self.handoff.completed(failed, keep_failed=True)
            elif job.remote_id is not None or unsure:
                self._cleanup(job.provider, Cleanup(job.id, job.payload, job.remote_id, unsure))
            self._admit(job.provider)
            return
        self.actors[job_id] = _PLACEHOLDER
        self.to_spawn.append((job, False))
        self._request_flush()

    def _cleanup(self, name: str, cleanup: Cleanup) -> None:
        """Hand a finished job's remote leftovers to its provider actor (or keep them)."""
        self._record_cleanup(name, cleanup)
        self._request_flush()
        self.handoff.hand(name, cleanup)

    def _record_cleanup(self, name: str, cleanup: Cleanup) -> None:
        """Record what ``cleanup`` owes with the next commit (the provider actor reports
        when it is done), so that a killed process still owes it at the next start."""
        key = owed_by(cleanup)
        if key is not None:
            self.writer.note_cleanups(name, owed=(key,))

    def _provider_crashed(self, name: str, error: str, trace: str, urn: str) -> None:
        handle = self.provider_refs.get(name)
        if handle is None or (urn and handle.ref is not None and str(handle.ref.actor_urn) != urn):
            return  # an older incarnation's late report
        log.error("provider_actor_crashed", provider=name, error=error, traceback=trace)
        handle.point_at(None)
        too_many = self.restarts.record(f"provider:{name}")
        # Its jobs cannot finish without it: past the intensity, pause, then again.
        delay = self.settings.restart_window if too_many else 0.0
        self.scheduler.schedule(delay, self.actor_ref, RestartProvider(name))

    def _start_provider(self, name: str) -> None:
        interval = self.settings.poll_intervals.get(name, self.settings.default_poll_interval)
        try:
            ref = ProviderActor.start(
                name,
                self.providers[name],
                supervisor=self.actor_ref,
                scheduler=self.scheduler,
                poll_interval=interval,
                book=self.books[name],
                limiters=self.limiters.get(name, {}),
                max_pause=self.settings.job.retry_policy.max_retry_after,
                account_fail_after=self.settings.account_fail_after,
                slot_retry_delay=self.settings.slot_retry_delay,
                telemetry=self.settings.telemetry,
            )
        except Exception as error:  # noqa: BLE001 - no thread to be had: try again later
            log.error("provider_start_failed", provider=name, error=repr(error))
            self.scheduler.schedule(
                self.settings.restart_window, self.actor_ref, RestartProvider(name)
            )
            return
        handle = self.provider_refs.setdefault(name, ProviderHandle(None))
        generation = handle.point_at(ref)
        self.handoff.deliver_leftovers(name, ref)
        # Requests queued in a dead actor's mailbox are gone: every live job of
        # this provider re-sends what it was waiting for.
        for job_id in list(self.admission.active.get(name, ())):
            actor = self.actors.get(job_id)
            if actor is not None and actor is not _PLACEHOLDER:
                try:
                    actor.tell(ProviderRestarted(generation))
                except pykka.ActorDeadError:
                    continue


class _Crash(Exception):
    """Raised on purpose to kill the supervisor (tests of the root's restart)."""


#: Engine requests that may be re-queued when their job's actor is gone.
_REQUEST: dict[type, Any] = {Cancel: CancelJob, Sync: SyncJob}

#: Internal messages handled again after a failed store read (their handlers read first).
_RETRIED_ON_STORE_ERROR = (ChildFailed, SlotRefused, AdmitTick, SlotLimit, RestartProvider)


