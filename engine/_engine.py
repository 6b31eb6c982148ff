"""Engine: the thread-safe facade over the actor system."""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import pykka

from actors import (
    CancelJob,
    ClearCompleted,
    CreateJob,
    DeleteJobs,
    Describe,
    DescribeProvider,
    EventBacklog,
    EventBus,
    JobEvent,
    JobSettings,
    OnceReply,
    ProviderBook,
    ProviderHandle,
    ProviderReport,
    Ready,
    RestartIntensity,
    RetryJob,
    RootActor,
    Scheduler,
    Subscribers,
    SupervisorActor,
    SupervisorHandle,
    SupervisorReport,
    SupervisorSettings,
    SyncJob,
    TestConnection,
)
from actors.transfer import Bandwidth
from engine._config import EngineConfig
from engine._health import HealthReport, ProviderHealth, ProviderState, SupervisorState
from engine._secrets import FileSecretStore
from persistence import ClientBook, DatabaseOwner, JobStore
from providers import (
    EngineError,
    EngineNotRunning,
    Job,
    JobStatus,
    MemorySecretStore,
    Provider,
    ProviderContext,
    ProviderRegistry,
    RateLimiter,
    RealClock,
    SecretStore,
    StartJobPayload,
    StoreError,
    Telemetry,
    TelemetrySnapshot,
    TestConnectionResponse,
    UnknownProvider,
    ValidationError,
    WaitTimeout,
    default_registry,
    parse_start_job_payload,
)
from providers._log import get_logger

__all__ = ["Engine"]

log = get_logger("debrid.engine")


class _Keep:
    """The value of an argument that was not given (None has a meaning: no cap)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


class Engine:
    """Submit jobs, follow them, cancel and retry them; safe to call from any thread.

    Use it as a context manager, or call ``start()`` and ``stop()``. Every call
    that waits for the engine takes a ``timeout`` (seconds of real time) and
    raises ``WaitTimeout`` when it runs out.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.clock = self.config.clock or RealClock()
        self._lock = threading.RLock()
        self._running = False
        self._store: JobStore | None = None
        self._owner: DatabaseOwner | None = None
        self._root: pykka.ActorRef[Any] | None = None
        self._supervisor = SupervisorHandle()
        self._bus: pykka.ActorRef[Any] | None = None
        self._subscribers = Subscribers()
        self._backlog = EventBacklog()
        self._handles: dict[str, ProviderHandle] = {}
        self._scheduler: Scheduler | None = None
        self._providers: dict[str, Provider] = {}
        self._limiters: dict[str, dict[str, RateLimiter]] = {}
        #: The download caps, shared by every job (and kept across supervisor restarts).
        self._bandwidth = Bandwidth(self.clock, self.config.bandwidth_bps)
        #: Counters for the daemon's metrics; they live as long as this Engine.
        self._telemetry = Telemetry()

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> Engine:
        """Claim and open the store, start the actors and resume every unfinished job.

        A second engine on the same SQLite database refuses to start
        (``StoreError`` naming the process that owns it).
        """
        with self._lock:
            if self._running:
                return self
            registry: ProviderRegistry = self.config.registry or default_registry()
            built = self.config.build_providers(registry)
            target = self.config.database_target()
            owner = DatabaseOwner.claim(target)
            try:
                store = JobStore(target)
            except BaseException:
                owner.release()
                raise
            self._owner, self._store = owner, store
            self._supervisor = SupervisorHandle()
            self._handles = {}
            try:
                self._start_actors(built, store)
            except BaseException:
                self._running = True
                self.stop()
                raise
            log.info("engine_started", database=str(target), providers=",".join(self._providers))
            return self

    def _start_actors(self, built: Mapping[str, tuple[Provider, float]], store: JobStore) -> None:
        scheduler = Scheduler(self.clock)
        scheduler.start()
        self._scheduler = scheduler
        self._bus = EventBus.start(self._subscribers, self._backlog)
        self._providers = {name: provider for name, (provider, _) in built.items()}
        settings = SupervisorSettings(
            job=JobSettings(
                retry_policy=self.config.retry,
                stall_timeouts=dict(self.config.stall_timeouts),
                links_retry_interval=self.config.links_retry_interval,
                keep_failed_items=self.config.keep_failed_items,
                rng=random.Random(self.config.seed),
                downloads=attrs.evolve(
                    self.config.downloads, bandwidth=self._bandwidth, telemetry=self._telemetry
                ),
            ),
            max_restarts=self.config.max_restarts,
            restart_window=self.config.restart_window,
            poll_intervals={name: interval for name, (_, interval) in built.items()},
            default_poll_interval=self.config.default_poll_interval,
            max_job_actors=self.config.max_job_actors,
            slot_retry_delay=self.config.slot_retry_delay,
            account_fail_after=self.config.account_fail_after,
            telemetry=self._telemetry,
        )
        secrets = self._secret_store()
        # Buckets and books outlive a supervisor restart: a spent budget stays spent.
        self._limiters = {}
        books = {}
        for name, provider in self._providers.items():
            limiters = {
                bucket: RateLimiter(
                    spec.rate,
                    spec.burst,
                    self.clock,
                    name=f"{name}.{bucket}",
                    max_pause=self.config.retry.max_retry_after,
                )
                for bucket, spec in provider.rate_limits().items()
            }
            self._limiters[name] = limiters
            provider.bind(
                ProviderContext(
                    clock=self.clock, limiters=limiters, secrets=secrets, blocking=False,
                    keep_failed_items=self.config.keep_failed_items,
                    telemetry=self._telemetry,
                )
            )
            books[name] = ProviderBook(name=name)
        bus = self._bus
        leftovers: dict[str, list[Any]] = {}

        def start_supervisor(root: pykka.ActorRef[Any], initial: bool) -> pykka.ActorRef[Any]:
            return SupervisorActor.start(
                store=store,
                providers=self._providers,
                limiters=self._limiters,
                books=books,
                scheduler=scheduler,
                bus=bus,
                settings=settings,
                handles=self._handles,
                root=root,
                backlog=self._backlog,
                leftovers=leftovers,
                initial=initial,
            )

        self._root = RootActor.start(
            start_supervisor=start_supervisor,
            handle=self._supervisor,
            intensity=RestartIntensity(
                self.config.max_restarts, self.config.restart_window, self.clock
            ),
            on_give_up=self._gave_up,
        )
        self._running = True
        self._ask(Ready, timeout=60)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every actor, write what is pending and close the store.

        Never raises for a stuck actor: whatever does not stop within ``timeout``
        is logged and left behind, and the scheduler, the bus and the store are
        closed all the same.
        """
        with self._lock:
            if not self._running:
                return
            self._running = False
            deadline = time.monotonic() + timeout
            try:
                if self._root is not None:
                    _stop_actor(self._root, deadline, "root")
            finally:
                if self._scheduler is not None:
                    self._scheduler.stop()
                if self._bus is not None:
                    _stop_actor(self._bus, deadline, "event_bus")
                for limiters in self._limiters.values():
                    for limiter in limiters.values():
                        limiter.close()
                for name, provider in self._providers.items():
                    if self._provider_in_use(name, deadline):
                        # Its actor is still in a call: closing its connections from
                        # here would pull them from under that request.
                        log.warning("provider_left_open", provider=name)
                        continue
                    with contextlib.suppress(Exception):
                        provider.close()
                if self._store is not None:
                    try:
                        self._store.close()
                    except StoreError as error:  # reads that never end: left open
                        log.error("store_close_failed", error=str(error))
                if self._owner is not None:
                    self._owner.release()
                self._root = self._bus = self._scheduler = None
            log.info("engine_stopped")

    def _provider_in_use(self, name: str, deadline: float) -> bool:
        """True when ``name``'s actor outlived the stop (a call it is still in)."""
        handle = self._handles.get(name)
        ref = handle.last if handle is not None else None
        return ref is not None and not _stop_actor(ref, deadline, f"provider:{name}")

    def _gave_up(self, reason: str) -> None:
        """The root gave up on the supervisor: stop the rest, from a thread of its own."""
        log.error("engine_stopping_after_failures", reason=reason)
        threading.Thread(target=self.stop, name="debrid-engine-shutdown", daemon=True).start()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``, while the engine has not given up."""
        return self._running and self._supervisor.failure is None

    @property
    def database(self) -> str:
        """Where the jobs are stored (path or URL)."""
        return os.fspath(self.config.database_target())

    def provider_names(self) -> tuple[str, ...]:
        """The providers this engine runs."""
        return tuple(self._providers)

    # -- jobs ----------------------------------------------------------------------
    def create_job(self, provider: str, payload: Any, *, timeout: float = 30.0) -> Job:
        """Validate and persist a new QUEUED job, then hand it to ``provider``.

        Raises ``UnknownProvider`` or ``ValidationError`` before anything is
        written; returns once the QUEUED row is committed.
        """
        return self.create_jobs(provider, [payload], timeout=timeout)[0]

    def create_jobs(
        self,
        provider: str,
        payloads: Sequence[Any],
        *,
        timeout: float = 30.0,
        ids: Sequence[str] | None = None,
    ) -> list[Job]:
        """``create_job`` for many payloads, committed in one transaction.

        Every payload is validated first; one bad payload rejects them all, with a
        ``ValidationError`` whose field starts with ``payloads[i].``. ``ids`` gives
        the new jobs' ids (one per payload, unused so far: a caller that records
        the id before the job exists, to recover after a crash); by default they
        are new random ones.
        """
        self._check_running()
        if provider not in self._providers:
            raise UnknownProvider(provider, tuple(self._providers))
        parsed = [_parse(payload, index, len(payloads)) for index, payload in enumerate(payloads)]
        chosen = self._check_new_ids(ids, len(parsed)) if ids is not None else None
        now = self.clock.time_ms()
        jobs = [
            Job(
                id=job_id,
                provider=provider,
                status=JobStatus.QUEUED,
                payload=item,
                created_at=now,
                updated_at=now,
            )
            for job_id, item in zip(chosen or new_job_ids(len(parsed)), parsed, strict=True)
        ]
        if not jobs:
            return []
        result: list[Job] = self._ask(
            lambda reply: CreateJob(jobs, reply, chosen_ids=chosen is not None), timeout
        )
        return result

    def _check_new_ids(self, ids: Sequence[str], count: int) -> list[str]:
        chosen = list(ids)
        if len(chosen) != count:
            raise ValidationError("ids", f"{len(chosen)} ids for {count} payloads",
                                  expected="one id per payload")
        for index, job_id in enumerate(chosen):
            if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
                raise ValidationError(f"ids[{index}]", "not a job id", value=job_id,
                                      expected="1 to 64 letters, digits, '-' or '_'")
        if len(set(chosen)) != len(chosen):
            raise ValidationError("ids", "an id is given twice", expected="distinct ids")
        taken = self._running_store().get_many(chosen)
        if taken:
            first = sorted(taken)[0]
            raise ValidationError(f"ids[{chosen.index(first)}]", "already a job's id",
                                  value=first, expected="an id no job has")
        return chosen

    def get_job(self, job_id: str) -> Job:
        """The job as last committed (``JobNotFound`` if there is none)."""
        return self._running_store().get(job_id)

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, Job]:
        """The committed jobs of ``job_ids`` that exist, by id (one read)."""
        return self._running_store().get_many(job_ids)

    def sync_job_status(self, job_id: str, *, timeout: float = 30.0) -> Job:
        """Ask the provider for the job's status now; returns the updated, committed job."""
        result: Job = self._ask(lambda r: SyncJob(job_id, r), timeout)
        return result

    def cancel_job(self, job_id: str, *, timeout: float = 30.0) -> Job:
        """Cancel a job in any non-terminal state (``InvalidTransition`` otherwise)."""
        result: Job = self._ask(lambda r: CancelJob(job_id, r), timeout)
        return result

    def retry_job(self, job_id: str, *, timeout: float = 30.0) -> Job:
        """Start a new attempt of a FAILED or CANCELLED job, from QUEUED."""
        result: Job = self._ask(lambda r: RetryJob(job_id, r), timeout)
        return result

    def set_bandwidth(
        self,
        *,
        global_bps: float | _Keep | None = KEEP,
        job_id: str | None = None,
        bps: float | _Keep | None = KEEP,
    ) -> dict[str, Any]:
        """Change the download caps while running, in bytes per second (None: no cap).

        ``global_bps`` caps every download together; ``job_id`` with ``bps`` caps one
        job (within the global cap). Either can be given alone; what is not given
        stays. Returns the caps now in force. Per-job caps last while the engine runs.
        """
        if isinstance(global_bps, _Keep) and job_id is None:
            raise ValidationError("global_bps", "nothing to change",
                                  expected="global_bps, or job_id with bps")
        if job_id is not None and isinstance(bps, _Keep):
            raise ValidationError("bps", f"no cap given for job {job_id}",
                                  expected="bytes per second, or None to lift the cap")
        if job_id is None and not isinstance(bps, _Keep):
            raise ValidationError("job_id", "bps caps one job: say which",
                                  expected="the id of a job")
        if not isinstance(global_bps, _Keep):
            _check_cap("global_bps", global_bps)
        if not isinstance(bps, _Keep):
            _check_cap("bps", bps)
        if job_id is not None:
            self.get_job(job_id)  # JobNotFound for an id the store does not have
        if not isinstance(global_bps, _Keep):
            self._bandwidth.set_global(global_bps)
        if job_id is not None and not isinstance(bps, _Keep):
            self._bandwidth.set_job(job_id, bps)
        log.info("bandwidth_changed", global_bps=self._bandwidth.limits().get("global_bps"),
                 job_id=job_id)
        return self._bandwidth.limits()

    def wait(
        self,
        job_id: str,
        timeout: float = 60.0,
        *,
        statuses: Iterable[JobStatus] | None = None,
    ) -> Job:
        """Block until the job reaches a terminal state (or one of ``statuses``)."""
        wanted = frozenset(statuses) if statuses is not None else None
        store = self._running_store()

        def reached(job: Job) -> bool:
            return job.status in wanted if wanted is not None else job.terminal

        done = threading.Event()

        def on_event(event: JobEvent) -> None:
            if event.job.id == job_id and reached(event.job):
                done.set()

        unsubscribe = self.subscribe(on_event)
        try:
            job = store.get(job_id)
            if reached(job):
                return job
            if not done.wait(timeout):
                job = store.get(job_id)
                if reached(job):
                    return job
                raise WaitTimeout(f"job {job_id} still {job.status.value} after {timeout}s")
            return store.get(job_id)
        finally:
            unsubscribe()

    def list_jobs(
        self,
        status: JobStatus | Iterable[JobStatus] | None = None,
        provider: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        *,
        text: str | None = None,
        order: str = "created_at",
        descending: bool = False,
    ) -> list[Job]:
        """Jobs filtered by status, provider and ``text``, oldest first by default.

        ``text`` matches a part of the id, the payload (URL, magnet, download dir)
        or a file name, ignoring case. ``order`` is a column (``created_at``,
        ``updated_at``, ``status``, ``progress``, ``provider``, ``priority``,
        ``attempt``, ``id``); ties are broken by id so pages never overlap.
        """
        return self._running_store().list(
            status=status, provider=provider, limit=limit, offset=offset,
            order=order, descending=descending, text=text,
        )

    def count_jobs(
        self,
        status: JobStatus | Iterable[JobStatus] | None = None,
        provider: str | None = None,
        *,
        text: str | None = None,
    ) -> int:
        """How many jobs ``list_jobs`` with the same filters and no limit would give."""
        return self._running_store().count(status=status, provider=provider, text=text)

    def job_counts(self) -> dict[tuple[str, str], int]:
        """Jobs per (provider, status value), from the store; pairs with none are left out."""
        counts = self._running_store().counts_by_provider()
        return {(provider, status.value): n for (provider, status), n in counts.items()}

    def delete_job(self, job_id: str, *, timeout: float = 30.0) -> None:
        """Delete a finished job and its history (``InvalidTransition`` for one not finished).

        Its remote item was settled when it finished; files it downloaded stay.
        """
        error = self.delete_jobs([job_id], timeout=timeout)[job_id]
        if error is not None:
            raise error

    def delete_jobs(
        self, job_ids: Iterable[str], *, timeout: float = 30.0
    ) -> dict[str, EngineError | None]:
        """Delete the finished jobs among ``job_ids`` in one transaction.

        Answers each id: None when it was deleted, else why it was kept
        (``JobNotFound``, ``InvalidTransition`` for a job still being worked on).
        """
        ids = tuple(dict.fromkeys(job_ids))
        for job_id in ids:
            if not isinstance(job_id, str):
                raise ValidationError("job_ids", "not a job id", value=job_id, expected="a string")
        if not ids:
            return {}
        result: dict[str, EngineError | None] = self._ask(
            lambda reply: DeleteJobs(ids, reply), timeout
        )
        return result

    def client_book(self) -> ClientBook:
        """The download-client face's own records (``ClientBook``), in this engine's
        database; good while the engine runs."""
        return ClientBook(self._running_store())

    def telemetry(self) -> TelemetrySnapshot:
        """Counters since this Engine was made: provider requests by answer, rate
        limits, budget waits, bytes downloaded, store commits and their latency."""
        return self._telemetry.snapshot()

    def get_active_jobs(self) -> list[Job]:
        """Every job that is not COMPLETED, FAILED or CANCELLED."""
        return self._running_store().non_terminal()

    def clear_completed(self, *, timeout: float = 30.0) -> int:
        """Delete COMPLETED jobs; returns how many."""
        result: int = self._ask(ClearCompleted, timeout)
        return result

    def test_connection(self, provider: str, *, timeout: float = 60.0) -> TestConnectionResponse:
        """Check that ``provider`` answers and accepts its credentials."""
        self._check_running()
        if provider not in self._providers:
            raise UnknownProvider(provider, tuple(self._providers))
        result = self._ask_provider(provider, TestConnection, timeout)
        if not isinstance(result, TestConnectionResponse):
            raise TypeError(f"test_connection answered {type(result).__name__}")
        return result

    def health(self, *, timeout: float = 5.0) -> HealthReport:
        """Liveness and readiness, with the figures behind them (see ``HealthReport``).

        Never raises for a stopped or failing engine: that is what it reports.
        """
        where = self.database
        if not self._running:
            state: SupervisorState = "failed" if self._supervisor.failure else "stopped"
            return HealthReport(
                state, False, False, False, where, failure=self._supervisor.failure
            )
        handle = self._supervisor
        state = "running" if handle.ref is not None else "restarting"
        if handle.failure is not None:
            state = "failed"
        report: SupervisorReport | None = None
        with contextlib.suppress(EngineError):
            described = self._ask(Describe, timeout)
            report = described if isinstance(described, SupervisorReport) else None
        store_ok, store_error, counts = True, None, {}
        try:
            assert self._store is not None
            counts = {s.value: n for s, n in self._store.counts_by_status().items()}
        except StoreError as error:
            store_ok, store_error = False, str(error)
        providers = {name: self._provider_health(name, report, timeout) for name in self._providers}
        live = state in ("running", "restarting")
        ready = (
            state == "running"
            and store_ok
            and report is not None
            and all(p.alive and p.state == "ok" for p in providers.values())
        )
        return HealthReport(
            state,
            live,
            ready,
            store_ok,
            where,
            supervisor_restarts=handle.restarts,
            failure=handle.failure,
            store_error=store_error,
            providers=providers,
            jobs=counts,
            job_actors=report.job_actors if report else 0,
            pending_writes=report.pending_writes if report else 0,
            write_failures=report.write_failures if report else 0,
            events_dropped=self._backlog.dropped,
        )

    def _provider_health(
        self, name: str, report: SupervisorReport | None, timeout: float
    ) -> ProviderHealth:
        described: ProviderReport | None = None
        with contextlib.suppress(EngineError):
            answer = self._ask_provider(name, DescribeProvider, timeout)
            described = answer if isinstance(answer, ProviderReport) else None
        account = described.account if described else None
        state: ProviderState = "down" if described is None else "ok"
        if account is not None:
            state = "auth_failed" if account.auth else "account_refused"
        return ProviderHealth(
            name,
            alive=described is not None,
            state=state,
            account_error=f"{account.code}: {account.message}" if account else None,
            account_since=account.since if account else None,
            account_fail_at=account.fail_at if account else None,
            submissions_held=described.submissions_held if described else None,
            slots_used=report.slots_used.get(name, 0) if report else 0,
            slot_limit=report.slot_limits.get(name) if report else None,
            admission_paused_until=report.admission_paused.get(name) if report else None,
            paused_until=dict(described.paused_until) if described else {},
            pause_reasons=dict(described.pause_reasons) if described else {},
            waiting_for=dict(described.waiting_for) if described else {},
            queued=dict(described.queued) if described else {},
            tracked=described.tracked if described else 0,
            waiting=report.waiting_in_memory.get(name, 0) if report else 0,
            backlog=report.backlog_open.get(name, False) if report else False,
            last_error=described.last_error if described else None,
        )

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after each committed change; returns an unsubscribe."""
        token = self._subscribers.add(callback)
        return lambda: self._subscribers.remove(token)

    # -- internals -----------------------------------------------------------------
    def _check_running(self) -> None:
        if self._supervisor.failure is not None:
            raise EngineNotRunning(self._supervisor.failure)
        if not self._running:
            raise EngineNotRunning("the engine is not started (use start() or a with block)")

    def _running_store(self) -> JobStore:
        self._check_running()
        if self._store is None:
            raise EngineNotRunning("the engine is not started (use start() or a with block)")
        return self._store

    def _ask(self, make: Callable[[OnceReply], Any], timeout: float) -> Any:
        """Send ``make(reply)`` to the current supervisor and wait for the reply.

        While the supervisor is being restarted, waits (within ``timeout``) for the
        new one. A request is sent once: a request the old supervisor took with it
        is answered with ``EngineNotRunning`` by that supervisor.
        """
        self._check_running()
        deadline = time.monotonic() + timeout
        handle = self._supervisor
        seen = -1
        while True:
            ref, generation = handle.current()
            if ref is None or generation <= seen:
                ref, generation = handle.wait_for(seen, max(0.0, deadline - time.monotonic()))
                if ref is None:
                    if handle.failure is not None or not self._running:
                        raise EngineNotRunning(handle.failure or "the engine stopped")
                    raise WaitTimeout(f"no supervisor answered within {timeout}s")
            reply = OnceReply()
            try:
                ref.tell(make(reply))
            except pykka.ActorDeadError:
                seen = generation  # it died before taking the request: wait for the next
                continue
            try:
                return reply.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                raise WaitTimeout(f"no answer from the engine within {timeout}s") from None

    def _ask_provider(self, provider: str, make: Callable[[OnceReply], Any], timeout: float) -> Any:
        handle = self._handles.get(provider)
        reply = OnceReply()
        try:
            if handle is None:
                raise pykka.ActorDeadError(provider)
            handle.tell(make(reply))
        except pykka.ActorDeadError:
            raise EngineNotRunning(f"provider {provider!r} is restarting") from None
        try:
            return reply.get(timeout=timeout)
        except pykka.Timeout:
            raise WaitTimeout(f"provider {provider!r} did not answer within {timeout}s") from None

    def _secret_store(self) -> SecretStore:
        if self.config.secrets is not None:
            return self.config.secrets
        target = os.fspath(self.config.database_target())
        if "://" in target or target == ":memory:":
            return MemorySecretStore()
        return FileSecretStore(
            os.path.join(os.path.dirname(os.path.abspath(target)), "secrets.json")
        )


def _stop_actor(ref: pykka.ActorRef[Any], deadline: float, what: str) -> bool:
    """Stop ``ref`` within ``deadline``; False (logged) when it is still running."""
    try:
        ref.stop(block=True, timeout=max(0.1, deadline - time.monotonic()))
    except pykka.ActorDeadError:
        return True
    except pykka.Timeout:
        log.warning("actor_stop_timed_out", actor=what)
        return False
    return True


#: What ``create_jobs(ids=...)`` takes as a job id.
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_job_ids(count: int) -> list[str]:
    """``count`` random version-4 UUIDs as 32 hex digits (what ``uuid4().hex`` gives).

    One ``os.urandom`` call for all of them: ``uuid4()`` per job costs more than
    building the job itself.
    """
    raw = bytearray(os.urandom(16 * count))
    ids = []
    for at in range(0, 16 * count, 16):
        raw[at + 6] = raw[at + 6] & 0x0F | 0x40  # version 4
        raw[at + 8] = raw[at + 8] & 0x3F | 0x80  # RFC 4122 variant
        ids.append(raw[at : at + 16].hex())
    return ids


def _parse(payload: Any, index: int, count: int) -> StartJobPayload:
    if count == 1:
        return parse_start_job_payload(payload)
    try:
        return parse_start_job_payload(payload)
    except ValidationError as error:
        raise ValidationError(
            f"payloads[{index}].{error.field}",
            error.message,
            value=error.value,
            expected=error.expected,
        ) from None


def _check_cap(field: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
        value
    ) or value <= 0:
        raise ValidationError(field, "not a usable cap", value=value,
                              expected="None or a finite number of bytes per second above 0")
