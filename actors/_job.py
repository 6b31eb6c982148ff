"""JobActor: one per job with work to do; owns the job and drives its state machine."""

from __future__ import annotations

import itertools
import logging
import random
import threading
from pathlib import Path
from typing import Any

import attrs
import pykka

from actors._base import ActorThreads
from actors._child import SupervisedActor
from actors._download import DownloadActor, DownloadCrashed, DownloadSettings, place_job_files
from actors._download_messages import (
    CancelDownload,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    WindUpDownload,
)
from actors._handle import ProviderDown, ProviderHandle
from actors._messages import (
    REFUSED,
    SUBMISSION_REFUSALS,
    AccountHeld,
    AccountNote,
    AccountResumed,
    BudgetWait,
    CallFailed,
    Cancel,
    ChildKind,
    Cleanup,
    FetchLinks,
    FindExisting,
    Found,
    GetStatus,
    InjectCrash,
    JobChanged,
    Leftover,
    Links,
    Op,
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
    SyncFailed,
    Track,
    WindUp,
)
from actors._scheduler import Scheduler, TimerHandle
from providers import (
    FileLinksResponse,
    Job,
    JobErrorInfo,
    JobFile,
    JobStatus,
    JobStatusResponse,
    ProviderError,
    RetryPolicy,
    Transition,
    next_delay,
)
from providers._log import get_logger

__all__ = ["DOWNLOAD", "WAITING_FOR", "InFlight", "JobActor", "JobSettings", "for_new_attempt"]

log = get_logger("debrid.actors.job")

#: The metadata key under which a job says which provider budget it waits for.
WAITING_FOR = "waiting_for"
#: The metadata key of a job's local download figures (bytes, speed, ETA); its
#: presence says the job is in its local phase (the provider's part is done).
DOWNLOAD = "download"
#: Of a downloading job's progress, the provider's share (the rest is local).
_REMOTE_SHARE = 50.0
#: How long a stopping job waits for its download to hand back its files.
_WIND_UP_TIMEOUT = 8.0


@attrs.frozen
class JobSettings:
    """What every job actor of an engine shares."""

    retry_policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    #: Seconds a job may stay in a state without progress before it FAILS as STALLED.
    stall_timeouts: dict[JobStatus, float] = attrs.field(factory=dict)
    #: How long to wait before asking again for links that are not ready yet.
    links_retry_interval: float = 5.0
    #: Leave a failed (or stalled) job's remote item on the account instead of
    #: deleting it (it holds a slot there, often a paid one).
    keep_failed_items: bool = False
    rng: random.Random = attrs.field(factory=random.Random, eq=False)
    #: How local downloads run (None: a ``download_dir`` is not acted on, as in
    #: a bench that tests a provider alone).
    downloads: DownloadSettings | None = attrs.field(default=None, eq=False)


@attrs.frozen
class InFlight:
    """A request out at the provider: what it asks, its id, and which provider actor has it."""

    op: Op
    request_id: int
    generation: int


@attrs.frozen
class _Retry:
    """A retry scheduled through the scheduler; ``token`` tells it from an older timer."""

    op: Op
    token: int


class JobActor(SupervisedActor):
    """Drives one job from its stored state to a terminal one.

    ``fresh`` says that nothing has been sent for this attempt yet, so the job
    may submit at once; otherwise (recovery, restart after a crash, a retry of
    a failed submission) it first asks the provider whether the remote job
    already exists, so that no job is ever submitted twice.

    At most one main request (submit, find, links) and one status request are
    out at a time, each an ``InFlight`` with its own id; an answer that names
    another id is stale and dropped. A job that ends without completing hands
    what it may own remotely to the provider actor (``Cleanup``), which deletes
    it, looking it up first when a submission's outcome is unknown; the actor
    itself stops at once.
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
        #: A submission of this attempt may have landed without its answer reaching us.
        self.unsure = not fresh and job.remote_id is None and job.submitted
        self.retries = 0
        self._ids = itertools.count(1)
        self.request: InFlight | None = None
        self.status_request: InFlight | None = None
        self.retry: _Retry | None = None
        self.links_requested = False
        self.last_progress_at = self.clock.monotonic()
        self.pending_syncs: list[Reply] = []
        self.done = False
        #: The provider generation our Track went to (None: not tracking).
        self.tracked_at: int | None = None
        #: Steps taken but not yet sent to the supervisor (see ``_defer``).
        self.unsaved: list[Transition] = []
        self.prefetched: FileLinksResponse | None = None
        self.stall_timer: TimerHandle | None = None
        self.deferred = False
        #: The provider's account refuses every call: we wait for it, no stall timer.
        self.account_held = False
        #: The local download, while it runs; its replies name ``download_token``.
        self.download: Ref | None = None
        self.download_token = 0
        #: Set when this actor crashes: its download stops at once (made with it).
        self.download_halt: threading.Event | None = None
        #: In the local phase: the provider's part is done, the files land on disk.
        self.local = self._downloads() and DOWNLOAD in job.metadata and job.remote_id is not None

    # -- lifecycle ---------------------------------------------------------------
    def child_id(self) -> tuple[ChildKind, str]:
        """``(ChildKind.JOB, job id)``."""
        return ChildKind.JOB, self.job.id

    def begin(self) -> None:
        """Kick off from the stored state."""
        self._schedule_stall_check()
        if self.local and self.job.remote_id is not None:
            # The provider's part was done: the files go on from where they are.
            self.links_requested = True
            self._spawn_download()
        elif self.job.remote_id is not None:
            self._track()
        elif self.fresh:
            self._send(Op.SUBMIT)
        else:
            self._send(Op.FIND)

    def on_receive(self, message: Any) -> Any:
        """Dispatch one message."""
        if isinstance(message, WindUp):
            return self._wind_up()
        if self.done:
            # A Cancel or Sync that reaches a finished actor is answered by the
            # supervisor, which keeps every request it forwards until answered.
            return
        match message:
            # (The hot case, on every job: ``_answers`` and ``_answered`` spelt out.)
            case Submitted(request_id, response, links) if (
                (request := self.request) is not None
                and request.op is Op.SUBMIT
                and request.request_id == request_id
            ):
                self.request = None
                self.retries = 0
                self.prefetched = links
                self._attach(response)
            case Found(request_id, response) if self._answers(Op.FIND, request_id):
                self._found(response)
            case StatusUpdate(response, None):
                self._apply(response)
            case StatusUpdate(response, request_id) if self._answers_status(request_id):
                self.status_request = None
                self._apply(response)
                self._flush_syncs()
            case Links(request_id, response) if self._answers(Op.LINKS, request_id):
                self._answered()
                self._links(response)
            case CallFailed(request_id, Op.STATUS, error) if self._answers_status(request_id):
                self.status_request = None
                self._sync_failed(error)
            case CallFailed(request_id, op, error) if self._answers(op, request_id):
                self.request = None
                self._failed(op, error)
            case BudgetWait() | AccountHeld() | AccountResumed():
                self._provider_note(message)
            case RetryOp(op, token) if self.retry is not None and self.retry.token == token:
                self.retry = None
                self._send(op)
            case StallCheck(since):
                self._stall_check(since)
            case Cancel(reply):
                self._cancel(reply)
            case Sync(reply):
                self._sync(reply)
            case ProviderRestarted(generation):
                self._resend(generation)
            case DownloadProgress() | DownloadFinished() | DownloadFailed() | DownloadCrashed():
                self._from_download(message)
            case InjectCrash():
                self._crash()
            case (
                Submitted() | Found() | StatusUpdate() | Links() | CallFailed() | RetryOp()
            ):
                self._stale(message)
            case _:
                log.warning(
                    "unexpected_message",
                    job_id=self.job.id,
                    provider=self.job.provider,
                    message=type(message).__name__,
                )

    def _found(self, response: JobStatusResponse | None) -> None:
        if response is not None:
            self._answered()
            self._attach(response)
        else:
            # Nothing landed: submit again, still counting the tries that failed.
            self.request = None
            self._send(Op.SUBMIT)

    def _crash(self) -> None:
        raise RuntimeError(f"injected crash in job actor {self.job.id}")

    def _stale(self, message: Any) -> None:
        log.info(
            "stale_reply_dropped",
            job_id=self.job.id,
            provider=self.job.provider,
            message=type(message).__name__,
            request_id=getattr(message, "request_id", None),
        )

    # -- requests ----------------------------------------------------------------
    def _answers(self, op: Op, request_id: int) -> bool:
        request = self.request
        return request is not None and request.op is op and request.request_id == request_id

    def _answers_status(self, request_id: int | None) -> bool:
        request = self.status_request
        return request is not None and request.request_id == request_id

    def _current(self, op: Op, request_id: int) -> bool:
        if op is Op.STATUS:
            return self._answers_status(request_id)
        return self._answers(op, request_id)

    def _answered(self) -> None:
        self.request = None
        self.retries = 0

    def _send(self, op: Op) -> None:
        job = self.job
        request_id = next(self._ids)
        me = self.actor_ref
        message: Any
        if op is Op.SUBMIT:
            message = Submit(job.id, request_id, job.payload, me)
        elif op is Op.FIND:
            message = FindExisting(job.id, request_id, job.payload, me)
        elif job.remote_id is None:
            return  # links and status need the remote id
        elif op is Op.LINKS:
            message = FetchLinks(job.id, request_id, job.remote_id, job.payload, me)
        else:
            message = GetStatus(job.id, request_id, job.remote_id, me)
        try:
            generation = self.provider.tell(message)
        except ProviderDown as down:
            # The provider actor is down: ProviderRestarted with a newer generation
            # makes us send this again.
            generation = down.generation
        flight = InFlight(op, request_id, generation)
        if op is Op.STATUS:
            self.status_request = flight
        else:
            self.request = flight

    def _resend(self, generation: int) -> None:
        """The provider actor that had our requests is gone: send again what it took
        (and so does the download, for the links it waits for)."""
        self._tell_download(ProviderRestarted(generation))
        # A new actor knows nothing of the account's refusal: it tells us again.
        self._account_resumed()
        tracked_at = self.tracked_at
        if self.job.remote_id is not None and tracked_at is not None and tracked_at < generation:
            self._track()
        request = self.request
        if request is not None and request.generation < generation:
            # A submission the dead actor may have sent: look before sending again.
            self._send(Op.FIND if request.op is Op.SUBMIT else request.op)
        status = self.status_request
        if status is not None and status.generation < generation:
            self._send(Op.STATUS)

    def _attach(self, response: JobStatusResponse) -> None:
        self.unsure = False
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
        job = self.job
        assert job.remote_id is not None
        message = Track(job.id, job.remote_id, job.payload, self.actor_ref)
        try:
            self.tracked_at = self.provider.tell(message)
        except ProviderDown as down:
            self.tracked_at = down.generation

    # -- applying what the provider says ------------------------------------------
    def _apply(self, response: JobStatusResponse, *, force_save: bool = False) -> None:
        job = self.job
        if job.terminal or self.local:
            # In the local phase the provider's part is done: what it says now
            # (a poll, a sync) changes nothing; the files on disk count.
            return
        changes = self._reported_changes(response)
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
        if self._downloads():
            progress *= _REMOTE_SHARE / 100.0
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
        links_out = self.request is not None and self.request.op is Op.LINKS
        fetch_links = remote_done and not self.links_requested and not links_out
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
                self._send(Op.LINKS)
        if transitions and not self.job.terminal:
            self._schedule_stall_check()

    def _reported_changes(self, response: JobStatusResponse) -> dict[str, Any]:
        """What a status says about the job besides its state: remote id, files, metadata."""
        job = self.job
        changes: dict[str, Any] = {}
        if response.remote_id != job.remote_id:
            changes["remote_id"] = response.remote_id
        if response.files and response.files != job.files and not self.links_requested:
            changes["files"] = _keep_local_state(response.files, job.files)
        if response.metadata:
            merged = {**job.metadata, **response.metadata}
            if merged != job.metadata:
                changes["metadata"] = merged
        return changes

    def _finish_prefetched(self, changes: dict[str, Any]) -> bool:
        """Done at once with its links already here (a cached item): straight to COMPLETED.

        One copy of the job and one change for the supervisor, where the general
        path makes two of each. False when the links are not here (or not ready).
        """
        ready = self.prefetched
        if ready is None or not ready.ready or self.links_requested or self._downloads():
            return False
        self.prefetched = None
        self.links_requested = True
        changes.pop("files", None)  # the links' files are the ones that count
        self._finish(JobStatus.COMPLETED, progress=100.0, files=ready.files, **changes)
        return True

    def _links(self, response: FileLinksResponse) -> None:
        if response.more and not response.ready:
            # A partial answer: the rest at once, behind whatever else waits at
            # the provider (a pack is never fetched in one turn of its actor).
            self._save_deferred()
            self._send(Op.LINKS)
            return
        if not response.ready:
            # Not progress: links that never come must still end in STALLED.
            self._save_deferred()
            self._schedule_retry(Op.LINKS, self.settings.links_retry_interval)
            return
        if self._downloads():
            self._start_download(response.files)
            return
        self._finish(JobStatus.COMPLETED, progress=100.0, files=response.files)

    # -- the local download ----------------------------------------------------------
    def _downloads(self) -> bool:
        """True when this job's files are to land on disk."""
        return self.settings.downloads is not None and self.job.payload.download_dir is not None

    def _start_download(self, files: tuple[JobFile, ...]) -> None:
        """The links are here: the job stays DOWNLOADING while its files land on disk.

        The local phase is recorded (``metadata["download"]``) with the files
        before the DownloadActor starts, so a restart goes on with it.
        """
        self.local = True
        files = _keep_local_state(files, self.job.files)
        assert self.job.payload.download_dir is not None
        # Placed here, stored before the download starts: a restart uses the same paths.
        files = place_job_files(files, Path(self.job.payload.download_dir).expanduser())
        done = sum(f.bytes_done for f in files if f.selected)
        total = sum(f.size for f in files if f.selected)
        stats = {"bytes_done": done, "bytes_total": total, "speed_bps": 0, "eta_seconds": None,
                 "files_done": sum(1 for f in files if f.selected and f.verified),
                 "files_total": sum(1 for f in files if f.selected), "current": None}
        job = self.job.evolve(files=files, progress=_local_progress(done, total),
                              metadata=self._download_metadata(stats),
                              updated_at=self.clock.time_ms())
        self.last_progress_at = self.clock.monotonic()
        self._save(job, [])
        self._spawn_download()

    def _spawn_download(self) -> None:
        settings = self.settings.downloads
        job = self.job
        assert settings is not None and job.remote_id is not None
        self.download_token += 1
        self.download_halt = threading.Event()
        self.download = DownloadActor.start(
            job_id=job.id,
            provider_name=job.provider,
            remote_id=job.remote_id,
            payload=job.payload,
            files=job.files,
            provider=self.provider,
            owner=self.actor_ref,
            scheduler=self.scheduler,
            settings=settings,
            token=self.download_token,
            halt=self.download_halt,
        )

    def _from_download(
        self, message: DownloadProgress | DownloadFinished | DownloadFailed | DownloadCrashed
    ) -> None:
        if message.token != self.download_token or self.download is None:
            self._stale(message)
            return
        match message:
            case DownloadProgress(_, files, stats):
                self._download_progress(files, stats)
            case DownloadFinished(_, files):
                self.download = None
                self._finish(JobStatus.COMPLETED, progress=100.0, files=files,
                             metadata=self._download_metadata(None))
            case DownloadFailed(_, code, text, files):
                self.download = None
                self._fail(code, text, files=files, metadata=self._download_metadata(None))
            case DownloadCrashed(_, error):
                self.download = None
                raise RuntimeError(f"the download of job {self.job.id} crashed: {error}")

    def _download_progress(self, files: tuple[JobFile, ...], stats: Any) -> None:
        job = self.job
        before = sum(f.bytes_done for f in job.files)
        done = int(stats.get("bytes_done", 0))
        if sum(f.bytes_done for f in files) > before or done > job.metadata.get(
            DOWNLOAD, {}
        ).get("bytes_done", 0):
            self.last_progress_at = self.clock.monotonic()
        progress = _local_progress(done, int(stats.get("bytes_total", 0)))
        self._save(job.evolve(files=files, progress=progress,
                              metadata=self._download_metadata(dict(stats)),
                              updated_at=self.clock.time_ms()), [])

    def _download_metadata(self, stats: dict[str, Any] | None) -> dict[str, Any]:
        """The job's metadata with the local figures; ``None``: the download is over
        (the totals stay, the live figures go)."""
        metadata = dict(self.job.metadata)
        if stats is None:
            last = metadata.get(DOWNLOAD)
            if isinstance(last, dict):
                metadata[DOWNLOAD] = {k: v for k, v in last.items()
                                      if k not in ("speed_bps", "eta_seconds", "current")}
            return metadata
        metadata[DOWNLOAD] = stats
        return metadata

    def _tell_download(self, message: Any) -> None:
        if self.download is not None:
            self._tell(self.download, message)

    def _end_download(self, status: JobStatus) -> None:
        """The job ends while its files download: a cancel removes the ``.part`` files,
        anything else keeps them for a retry."""
        download, self.download = self.download, None
        if download is not None:
            cancel = status is JobStatus.CANCELLED
            self._tell(download, CancelDownload() if cancel else WindUpDownload())

    def _wind_up(self) -> Job | None:
        """The engine stops: the download hands back what it synced (asked: the
        stopping supervisor writes the job it gets back; it takes no more tells)."""
        download, self.download = self.download, None
        if download is None or self.done:
            return None
        try:
            files = download.ask(WindUpDownload(), timeout=_WIND_UP_TIMEOUT)
        except (pykka.Timeout, pykka.ActorDeadError):
            log.warning("download_wind_up_failed", job_id=self.job.id, provider=self.job.provider)
            return None
        if not files or tuple(files) == self.job.files:
            return None
        self.job = self.job.evolve(files=tuple(files), updated_at=self.clock.time_ms())
        return self.job

    def on_stop(self) -> None:
        """Stopped without a wind-up (the supervisor is going down): the download
        stops too, keeping its files; the store has its last checkpoint."""
        download, self.download = self.download, None
        if download is not None and not self.done:
            self._tell(download, WindUpDownload())

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """A crash: the download stops with it (keeping its files); the supervisor
        restarts the job from the stored state, which holds every synced range."""
        download, self.download = self.download, None
        if self.download_halt is not None:
            self.download_halt.set()  # before anything else it has queued
        if download is not None:
            self._tell(download, WindUpDownload())
        super().on_failure(exc_type, exc, tb)

    def _waiting_for(self, op: Op, budget: str, until: float) -> None:
        self._note_wait({"budget": budget, "until_ms": int(until * 1000), "op": op.value})

    def _note_wait(self, note: dict[str, Any]) -> None:
        """Say in the job's metadata what it waits for (saved only when it changes)."""
        if self.job.metadata.get(WAITING_FOR) == note:
            return
        metadata = {**self.job.metadata, WAITING_FOR: note}
        self._save(self.job.evolve(metadata=metadata, updated_at=self.clock.time_ms()), [])

    def _provider_note(self, message: BudgetWait | AccountHeld | AccountResumed) -> None:
        """What the provider actor says of a wait: for a budget, or for the account."""
        match message:
            case BudgetWait(request_id, op, budget, until) if self._current(op, request_id):
                self._waiting_for(op, budget, until)
            case AccountHeld(note, request_id, op) if request_id is None or (
                op is not None and self._current(op, request_id)
            ):
                self._account_held(note)
            case AccountResumed():
                self._account_resumed()
            case _:
                self._stale(message)

    def _account_held(self, note: AccountNote) -> None:
        """Wait for the account: no stall while it refuses us; the note says why."""
        self.account_held = True
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None
        self._note_wait(note.as_metadata())

    def _account_resumed(self) -> None:
        if not self.account_held:
            return
        self.account_held = False
        self.last_progress_at = self.clock.monotonic()  # the wait was not a stall
        self._schedule_stall_check()
        note = self.job.metadata.get(WAITING_FOR)
        if isinstance(note, dict) and "account" in note:
            metadata = {k: v for k, v in self.job.metadata.items() if k != WAITING_FOR}
            self._save(self.job.evolve(metadata=metadata, updated_at=self.clock.time_ms()), [])

    # -- failures ------------------------------------------------------------------
    def _sync_failed(self, error: ProviderError) -> None:
        # A caller asked for the status now: tell it why not, rather than
        # retrying behind its back (the regular poll goes on anyway). The
        # supervisor answers, and forgets the requests it forwarded.
        replies, self.pending_syncs = tuple(self.pending_syncs), []
        if replies:
            self._tell(self.supervisor, SyncFailed(self.job.id, replies, error))

    def _failed(self, op: Op, error: ProviderError) -> None:
        self._save_deferred()
        job = self.job
        if op is Op.SUBMIT and error.code in SUBMISSION_REFUSALS:
            # Submissions wait (every job's, in the supervisor's line), nothing else.
            cooldown = SUBMISSION_REFUSALS[error.code]
            log.info("slot_refused", job_id=job.id, provider=job.provider, code=error.code)
            self._tell(
                self.supervisor, SlotRefused(job.id, job.provider, error.retry_after, cooldown)
            )
            self._stop_now()
            return
        refused = error.code in REFUSED
        if op is Op.SUBMIT and error.retryable and not refused:
            self.unsure = True  # it may have landed: a timeout says nothing either way
        delay = next_delay(self.retries, error, self.settings.retry_policy, self.settings.rng)
        if delay is None:
            self._fail(error.code, error.message)
            return
        self.retries += 1
        log.info(
            "retry_scheduled",
            job_id=job.id,
            provider=job.provider,
            op=op.value,
            code=error.code,
            attempt=self.retries,
            delay=round(delay, 3),
        )
        # A submission that failed in an ambiguous way may still have reached the
        # provider: look for it before sending it again.
        # (A refusal made nothing: it is sent again as it was.)
        again = Op.FIND if op is Op.FIND or (op is Op.SUBMIT and not refused) else op
        self._schedule_retry(again, delay)

    def _schedule_retry(self, op: Op, delay: float) -> None:
        token = next(self._ids)
        self.retry = _Retry(op, token)
        self.scheduler.schedule(delay, self.actor_ref, RetryOp(op, token))

    def _stall_check(self, since: float) -> None:
        if self.job.terminal or self.account_held:
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
        if limit is not None and not self.job.terminal and not self.account_held:
            since = self.last_progress_at
            delay = max(0.0, since + limit - self.clock.monotonic())
            self.stall_timer = self.scheduler.schedule(delay, self.actor_ref, StallCheck(since))

    # -- requests from the engine -----------------------------------------------------
    def _cancel(self, reply: Reply) -> None:
        self._finish(JobStatus.CANCELLED, reply=reply)

    def _sync(self, reply: Reply) -> None:
        if self.job.remote_id is None or self.local:
            # (In the local phase the provider has nothing more to say: the files do.)
            self._save(self.job, [], (reply,))
            return
        self.pending_syncs.append(reply)
        if self.status_request is None:
            self._send(Op.STATUS)

    def _flush_syncs(self) -> None:
        if self.pending_syncs:
            self._save(self.job, [], tuple(self.pending_syncs))
            self.pending_syncs.clear()

    # -- endings -----------------------------------------------------------------
    def _fail(self, code: str, message: str, **changes: Any) -> None:
        log.info("job_failed", job_id=self.job.id, provider=self.job.provider, code=code)
        self._finish(JobStatus.FAILED, error=JobErrorInfo(code, message), **changes)

    def _finish(self, status: JobStatus, *, reply: Reply | None = None, **changes: Any) -> None:
        if WAITING_FOR in self.job.metadata and "metadata" not in changes:
            changes["metadata"] = {k: v for k, v in self.job.metadata.items() if k != WAITING_FOR}
        job, transitions = self.job.advance(status, self.clock.time_ms(), **changes)
        # Waiting syncs are answered by the same (last) change.
        replies = (*((reply,) if reply is not None else ()), *self.pending_syncs)
        self.pending_syncs.clear()
        cleanup = self._cleanup_of(job)
        self._end_download(status)
        self._save(job, transitions, replies, finished=True, cleanup=cleanup)
        if self.stall_timer is not None:
            self.stall_timer.cancel()
        if cleanup is not None:
            self._hand_back(cleanup)
        self._stop_now()

    def _cleanup_of(self, job: Job) -> Cleanup | None:
        """What this job leaves behind remotely, if anything.

        A completed job's item stays remote; the supervisor releases it once the
        completion is committed (``Released``), so a completed job leaves nothing.
        """
        if job.status is JobStatus.COMPLETED:
            return None
        submitting = self.request is not None and self.request.op in (Op.SUBMIT, Op.FIND)
        unsure = self.unsure or submitting
        if (
            job.status is JobStatus.FAILED
            and self.settings.keep_failed_items
            and job.remote_id is not None
            and not unsure
        ):
            return None  # kept on the account: released after the commit, as a completion
        if job.remote_id is None and not unsure:
            return None
        return Cleanup(job.id, job.payload, job.remote_id, unsure)

    def _hand_back(self, message: Cleanup) -> None:
        """Tell the provider actor what this job leaves behind (after the supervisor,
        which records it as owed with the job's last state)."""
        try:
            self.provider.tell(message)
        except pykka.ActorDeadError:
            # The provider actor is down: the supervisor hands it to the next one.
            self._tell(self.supervisor, Leftover(self.job.provider, message))

    def _stop_now(self) -> None:
        self.done = True
        self.request = self.status_request = self.retry = None
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
        cleanup: Cleanup | None = None,
    ) -> None:
        if (
            WAITING_FOR in job.metadata
            and self.request is None
            and self.status_request is None
            and not self.account_held
        ):
            # Nothing waits for a budget any more: the note goes with this change.
            job = job.evolve(metadata={k: v for k, v in job.metadata.items() if k != WAITING_FOR})
        self._log_transitions(job, transitions)
        self.job = job
        steps = (*self.unsaved, *transitions)
        self.unsaved.clear()
        self.deferred = False
        self._tell(self.supervisor, JobChanged(job, steps, replies, finished, cleanup))

    def _tell(self, ref: Ref | ProviderHandle, message: Any) -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            log.debug(
                "tell_target_gone",
                job_id=self.job.id,
                provider=self.job.provider,
                message=type(message).__name__,
            )


def _local_progress(done: int, total: int) -> float:
    """A downloading job's progress: the provider's share, then the bytes on disk."""
    local = 1.0 if total <= 0 else min(1.0, done / total)
    return round(_REMOTE_SHARE + (100.0 - _REMOTE_SHARE) * local, 2)


def _keep_local_state(
    files: tuple[JobFile, ...], known: tuple[JobFile, ...]
) -> tuple[JobFile, ...]:
    """``files`` from the provider, with what is on disk for each (matched by name and
    size: a new attempt's item may number its files otherwise)."""
    local = {(f.name, f.size): f for f in known if f.local_path is not None}
    if not local:
        return files
    kept = []
    for file in files:
        mine = local.get((file.name, file.size))
        kept.append(file if mine is None else attrs.evolve(
            file, local_path=mine.local_path, bytes_done=mine.bytes_done,
            transfer=mine.transfer, verified=mine.verified,
        ))
    return tuple(kept)


def for_new_attempt(last: Job, again: Job) -> Job:
    """A retried job keeps what its last attempt put on disk (files verified, ranges
    synced) so that only the rest is fetched; its local phase starts over."""
    metadata = {k: v for k, v in again.metadata.items() if k != DOWNLOAD}
    kept = tuple(f for f in last.files if f.local_path is not None)
    if metadata == again.metadata and not kept:
        return again
    return again.evolve(metadata=metadata, files=kept)
