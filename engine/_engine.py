"""Engine: the thread-safe facade over the actor system."""

from __future__ import annotations

import contextlib
import os
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pykka

from actors import (
    CancelJob,
    ClearCompleted,
    CreateJob,
    EventBus,
    JobEvent,
    JobSettings,
    ProviderHandle,
    Ready,
    RetryJob,
    Scheduler,
    Subscribers,
    SupervisorActor,
    SupervisorSettings,
    SyncJob,
    TestConnection,
)
from engine._config import EngineConfig
from engine._secrets import FileSecretStore
from persistence import JobStore
from providers import (
    EngineNotRunning,
    Job,
    JobStatus,
    MemorySecretStore,
    Provider,
    ProviderRegistry,
    RealClock,
    SecretStore,
    StartJobPayload,
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
        self._supervisor: pykka.ActorRef[Any] | None = None
        self._bus: pykka.ActorRef[Any] | None = None
        self._subscribers = Subscribers()
        self._handles: dict[str, ProviderHandle] = {}
        self._scheduler: Scheduler | None = None
        self._providers: dict[str, Provider] = {}

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> Engine:
        """Open the store, start the actors and resume every unfinished job."""
        with self._lock:
            if self._running:
                return self
            registry: ProviderRegistry = self.config.registry or default_registry()
            built = self.config.build_providers(registry)
            store = JobStore(self.config.database_target())
            try:
                scheduler = Scheduler(self.clock)
                scheduler.start()
                bus_ref = EventBus.start(self._subscribers)
                settings = SupervisorSettings(
                    job=JobSettings(
                        retry_policy=self.config.retry,
                        stall_timeouts=dict(self.config.stall_timeouts),
                        links_retry_interval=self.config.links_retry_interval,
                        rng=random.Random(self.config.seed),
                    ),
                    max_restarts=self.config.max_restarts,
                    restart_window=self.config.restart_window,
                    poll_intervals={name: interval for name, (_, interval) in built.items()},
                    default_poll_interval=self.config.default_poll_interval,
                    max_job_actors=self.config.max_job_actors,
                    slot_retry_delay=self.config.slot_retry_delay,
                )
                self._providers = {name: provider for name, (provider, _) in built.items()}
                self._supervisor = SupervisorActor.start(
                    store=store,
                    providers=self._providers,
                    scheduler=scheduler,
                    bus=bus_ref,
                    settings=settings,
                    secrets=self._secret_store(),
                    handles=self._handles,
                )
            except BaseException:
                store.close()
                raise
            self._store = store
            self._scheduler = scheduler
            self._bus = bus_ref
            self._running = True
            try:
                self._ask(self._supervisor, Ready, timeout=60)
            except BaseException:
                self.stop()
                raise
            log.info(
                "engine_started",
                database=str(self.config.database_target()),
                providers=",".join(self._providers),
            )
            return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every actor, write what is pending and close the store."""
        with self._lock:
            if not self._running:
                return
            self._running = False
            assert self._supervisor is not None and self._scheduler is not None
            with contextlib.suppress(pykka.ActorDeadError):
                self._supervisor.stop(block=True, timeout=timeout)
            self._scheduler.stop()
            if self._bus is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    self._bus.stop(block=True, timeout=timeout)
            for provider in self._providers.values():
                provider.close()
            if self._store is not None:
                self._store.close()
            log.info("engine_stopped")

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._running

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
        self, provider: str, payloads: Sequence[Any], *, timeout: float = 30.0
    ) -> list[Job]:
        """``create_job`` for many payloads, committed in one transaction.

        Every payload is validated first; one bad payload rejects them all, with a
        ``ValidationError`` whose field starts with ``payloads[i].``.
        """
        supervisor = self._running_supervisor()
        if provider not in self._providers:
            raise UnknownProvider(provider, tuple(self._providers))
        parsed = [_parse(payload, index, len(payloads)) for index, payload in enumerate(payloads)]
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
            for job_id, item in zip(new_job_ids(len(parsed)), parsed, strict=True)
        ]
        if not jobs:
            return []
        result: list[Job] = self._ask(supervisor, lambda reply: CreateJob(jobs, reply), timeout)
        return result

    def get_job(self, job_id: str) -> Job:
        """The job as last committed (``JobNotFound`` if there is none)."""
        return self._running_store().get(job_id)

    def sync_job_status(self, job_id: str, *, timeout: float = 30.0) -> Job:
        """Ask the provider for the job's status now; returns the updated, committed job."""
        result: Job = self._ask(self._running_supervisor(), lambda r: SyncJob(job_id, r), timeout)
        return result

    def cancel_job(self, job_id: str, *, timeout: float = 30.0) -> Job:
        """Cancel a job in any non-terminal state (``InvalidTransition`` otherwise)."""
        result: Job = self._ask(self._running_supervisor(), lambda r: CancelJob(job_id, r), timeout)
        return result

    def retry_job(self, job_id: str, *, timeout: float = 30.0) -> Job:
        """Start a new attempt of a FAILED or CANCELLED job, from QUEUED."""
        result: Job = self._ask(self._running_supervisor(), lambda r: RetryJob(job_id, r), timeout)
        return result

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
    ) -> list[Job]:
        """Jobs, oldest first, filtered by status and provider."""
        return self._running_store().list(
            status=status, provider=provider, limit=limit, offset=offset
        )

    def get_active_jobs(self) -> list[Job]:
        """Every job that is not COMPLETED, FAILED or CANCELLED."""
        return self._running_store().non_terminal()

    def clear_completed(self, *, timeout: float = 30.0) -> int:
        """Delete COMPLETED jobs; returns how many."""
        result: int = self._ask(self._running_supervisor(), ClearCompleted, timeout)
        return result

    def test_connection(self, provider: str, *, timeout: float = 60.0) -> TestConnectionResponse:
        """Check that ``provider`` answers and accepts its credentials."""
        self._running_supervisor()
        if provider not in self._providers:
            raise UnknownProvider(provider, tuple(self._providers))
        handle = self._handles.get(provider)
        ref = handle.ref if handle is not None else None
        if ref is None:
            raise EngineNotRunning(f"provider {provider!r} is restarting")
        try:
            result = ref.ask(TestConnection(), block=True, timeout=timeout)
        except pykka.Timeout:
            raise WaitTimeout(f"test_connection({provider!r}) took over {timeout}s") from None
        if not isinstance(result, TestConnectionResponse):
            raise TypeError(f"test_connection answered {type(result).__name__}")
        return result

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after each committed change; returns an unsubscribe."""
        token = self._subscribers.add(callback)
        return lambda: self._subscribers.remove(token)

    # -- internals -----------------------------------------------------------------
    def _running_supervisor(self) -> pykka.ActorRef[Any]:
        if not self._running or self._supervisor is None:
            raise EngineNotRunning("the engine is not started (use start() or a with block)")
        return self._supervisor

    def _running_store(self) -> JobStore:
        if not self._running or self._store is None:
            raise EngineNotRunning("the engine is not started (use start() or a with block)")
        return self._store

    def _ask(
        self,
        supervisor: pykka.ActorRef[Any],
        make: Callable[[pykka.ThreadingFuture[Any]], Any],
        timeout: float,
    ) -> Any:
        reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        try:
            supervisor.tell(make(reply))
        except pykka.ActorDeadError:
            raise EngineNotRunning("the engine's supervisor is not running") from None
        try:
            return reply.get(timeout=timeout)
        except pykka.Timeout:
            raise WaitTimeout(f"no answer from the engine within {timeout}s") from None

    def _secret_store(self) -> SecretStore:
        if self.config.secrets is not None:
            return self.config.secrets
        target = os.fspath(self.config.database_target())
        if "://" in target or target == ":memory:":
            return MemorySecretStore()
        return FileSecretStore(
            os.path.join(os.path.dirname(os.path.abspath(target)), "secrets.json")
        )


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
