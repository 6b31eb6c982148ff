"""DownloadActor: one per job that downloads locally; its files land on disk, verified.

The actor decides, worker threads move bytes. Each file goes through the same
steps: a direct URL from the provider actor (``ResolveLink``, under the
provider's budgets), a probe of the server (size, validator, ranges), the
missing byte ranges fetched by up to ``connections`` workers into
``<name>.part``, a check of size and md5, and an atomic rename. A worker syncs
the data it wrote before it reports a checkpoint; only then does the actor
record the range in the job's files (which the JobActor hands to the
supervisor), so a stored range is always on disk. Every reply names the fetch
it answers (``token``); one that names an older fetch is dropped.

Faults have one ladder each, counted per file: a connection cut mid-body is
fetched again from where it stopped; a link that stops working (401/403/404/
410/503) is asked again; a transfer below the speed floor is reconnected, then
given a new link, then fails with ``DOWNLOAD_STALLED``; a server that ignores
Range on a resume, answers 416 or changed its validator starts the file again
from zero (logged with the reason); an md5 mismatch fetches the file once more,
then fails with ``CHECKSUM_MISMATCH``. The actor never blocks on a transfer: a
worker waiting for bandwidth waits on its own thread.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import itertools
import os
import sys
import threading
import time as _time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx

from actors._base import EngineActor
from actors._download_messages import (
    CancelDownload,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    WindUpDownload,
)
from actors._handle import ProviderDown, ProviderHandle
from actors._messages import (
    AccountHeld,
    AccountResumed,
    BudgetWait,
    CallFailed,
    Op,
    ProviderRestarted,
    Ref,
    Resolved,
    ResolveLink,
)
from actors._scheduler import Scheduler, TimerHandle
from actors.transfer import (
    Abort,
    AbortReason,
    Bandwidth,
    ByteRanges,
    FetchOutcome,
    FetchResult,
    Md5Progress,
    NoSpace,
    ProbeResult,
    Validator,
    Wire,
    check_space,
    fetch_range,
    open_part,
    place_files,
    plan_segments,
    probe,
    verify,
)
from providers import (
    FileTransfer,
    JobFile,
    ProviderError,
    RetryPolicy,
    StartJobPayload,
    Telemetry,
)
from providers._log import get_logger

__all__ = ["DownloadActor", "DownloadCrashed", "DownloadSettings", "place_job_files"]

log = get_logger("debrid.actors.download")

MiB = 1 << 20
_PART = ".part"
_NAME_MAX = 255


@attrs.frozen
class DownloadSettings:
    """How local downloads run; one per engine, shared by every DownloadActor.

    ``bandwidth`` holds the global and per-job caps (changeable while running);
    the engine gives every job the same one (``None`` here: uncapped, unshared).
    A file is split into segments no smaller than ``min_split``; workers sync and
    report every ``checkpoint_bytes``. A file whose transfer stays below
    ``low_speed_bps`` for ``low_speed_seconds`` is stalled (``stall_tries``
    strikes: reconnect, new link, fail). ``space_margin`` is kept free on the disk
    beyond what a file still needs. ``telemetry`` counts the bytes written.
    """

    bandwidth: Bandwidth | None = attrs.field(default=None, eq=False)
    telemetry: Telemetry | None = attrs.field(default=None, eq=False)
    min_split: int = 8 * MiB
    checkpoint_bytes: int = 8 * MiB
    chunk_size: int = 256 * 1024
    low_speed_bps: float = 1024.0
    low_speed_seconds: float = 60.0
    stall_tries: int = 3
    cut_tries: int = 5
    link_tries: int = 3
    restart_tries: int = 3
    http_tries: int = 3
    checksum_tries: int = 1
    space_margin: int = 16 * MiB
    #: Measures the free bytes of a directory (tests may pass a smaller disk).
    free_bytes: Callable[[Path], int] | None = attrs.field(default=None, eq=False)
    tick_seconds: float = 1.0
    connect_timeout: float = 30.0
    #: Seconds a socket read may block: a last resort, the speed floor acts first.
    read_timeout: float = 300.0
    #: How long a stop waits for the workers to let go of their files.
    join_timeout: float = 5.0
    retry_policy: RetryPolicy = attrs.field(factory=RetryPolicy)
    #: Makes the HTTP client of one DownloadActor (tests may pass their own).
    client_factory: Callable[[DownloadSettings], httpx.Client] | None = None
    #: Bodies read from the socket straight into the file (``transfer._wire``);
    #: False reads them through httpx. Off whenever ``client_factory`` is given.
    raw_sockets: bool = True

    def wire(self) -> Wire | None:
        """The fast body path of one DownloadActor, or None (bodies through httpx)."""
        if not self.raw_sockets or self.client_factory is not None:
            return None
        return Wire(connect_timeout=self.connect_timeout, read_timeout=self.read_timeout)

    def client(self) -> httpx.Client:
        """A client for one job's transfers (no environment proxies: loopback stays local)."""
        if self.client_factory is not None:
            return self.client_factory(self)
        timeout = httpx.Timeout(
            self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout
        )
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
        return httpx.Client(
            timeout=timeout, limits=limits, follow_redirects=True, trust_env=False
        )


@attrs.frozen
class DownloadCrashed:
    """To the JobActor: the DownloadActor failed in a way it cannot handle; the job
    actor crashes with it, and its supervisor restarts both from the stored state."""

    token: int
    error: str


class _Step(enum.Enum):
    LINK = "link"  # waiting for a direct URL
    PROBE = "probe"  # learning the size, the validator and range support
    FETCH = "fetch"  # segments running
    VERIFY = "verify"  # size and md5 being checked


class _Then(enum.Enum):
    """What to do once every segment of a file has ended."""

    CONTINUE = "continue"
    RECONNECT = "reconnect"  # probe again with the same URL
    NEW_LINK = "new_link"  # ask the provider for another URL
    RESTART = "restart"  # start the file again from byte 0


@attrs.frozen
class _Probed:
    token: int
    result: ProbeResult | None
    error: str | None = None


@attrs.frozen
class _Checkpoint:
    token: int
    segment: int
    start: int
    upto: int


@attrs.frozen
class _SegmentEnded:
    token: int
    segment: int
    result: FetchResult | None
    durable: int
    error: str | None = None


@attrs.frozen
class _Verified:
    token: int
    size_ok: bool
    md5_ok: bool | None
    how: str
    error: str | None = None


@attrs.frozen
class _Tick:
    pass


@attrs.frozen
class _Again:
    """A delayed retry (a link, a probe or a segment) of fetch ``token``."""

    token: int
    what: str
    segment: int | None = None


@attrs.define
class _Segment:
    start: int
    end: int
    abort: Abort
    cancelled: threading.Event
    thread: threading.Thread | None = None
    written: list[int] = attrs.field(factory=lambda: [0])
    checkpointed: int = 0
    #: Set by the worker before it reports, so a wind-up can read it after a join.
    ended: _SegmentEnded | None = None


@attrs.define
class _Run:
    """One file being downloaded."""

    index: int
    path: Path
    part: Path
    size: int
    ranges: ByteRanges
    step: _Step = _Step.LINK
    token: int = 0
    url: str | None = None
    url_request: int | None = None
    url_generation: int = 0
    failed_url: str | None = None
    validator: Validator | None = None
    ranged: bool = True
    fd: int | None = None
    segments: dict[int, _Segment] = attrs.field(factory=dict)
    then: _Then = _Then.CONTINUE
    reason: str = ""
    hasher: Md5Progress | None = None
    strikes: dict[str, int] = attrs.field(factory=dict)
    fetch_since: float = 0.0
    samples: deque[tuple[float, int]] = attrs.field(factory=deque)
    worker: threading.Thread | None = None

    def strike(self, kind: str) -> int:
        self.strikes[kind] = self.strikes.get(kind, 0) + 1
        return self.strikes[kind]

    def live(self) -> int:
        """Bytes on disk: recorded, plus written since the last checkpoint."""
        return self.ranges.done + sum(
            max(0, s.written[0] - s.checkpointed) for s in self.segments.values()
        )


class DownloadActor(EngineActor):
    """Downloads the selected files of one job into its ``download_dir``."""

    def __init__(
        self,
        *,
        job_id: str,
        provider_name: str,
        remote_id: str,
        payload: StartJobPayload,
        files: tuple[JobFile, ...],
        provider: ProviderHandle,
        owner: Ref,
        scheduler: Scheduler,
        settings: DownloadSettings,
        token: int,
        halt: threading.Event | None = None,
    ) -> None:
        super().__init__()
        #: Set by the job actor when it dies: this download ends before it handles
        #: anything else (its successor may already be starting on the same files).
        self.halt = halt or threading.Event()
        assert payload.download_dir is not None
        self.job_id = job_id
        self.provider_name = provider_name
        self.remote_id = remote_id
        self.payload = payload
        self.root = Path(payload.download_dir).expanduser()
        self.files = list(files)
        self.provider = provider
        self.owner = owner
        self.scheduler = scheduler
        self.clock = scheduler.clock
        self.settings = settings
        self.bandwidth = settings.bandwidth or Bandwidth(scheduler.clock)
        self.token = token
        self.connections = max(1, payload.connections)
        self.run: _Run | None = None
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self._segment_ids = itertools.count(1)
        self.client: httpx.Client | None = None
        self.wire: Wire | None = None
        self.tick: TimerHandle | None = None
        self.samples: deque[tuple[float, int]] = deque()
        self.stopped = False
        #: Folders this actor made for its files (a cancel removes those left empty).
        self.made_dirs: list[Path] = []
        self.last_stats: dict[str, Any] = {}
        self.last_files: tuple[JobFile, ...] = ()

    # -- lifecycle ---------------------------------------------------------------
    def on_start(self) -> None:
        """Place the files, then start the first one that is not on disk yet."""
        try:
            self.client = self.settings.client()
            self.wire = self.settings.wire()
            self._place()
            self._schedule_tick()
            self._next_file()
        except Exception as exc:  # noqa: BLE001 - reported, the job actor decides
            try:
                self._crashed(exc)
            except Exception:
                # Pykka does not call on_failure for a failed on_start.
                self.on_failure(*sys.exc_info())
                raise

    def on_receive(self, message: Any) -> Any:
        """Dispatch one message; anything unexpected is a crash of this download."""
        if self.stopped:
            return None
        if self.halt.is_set():
            self._release(AbortReason.STOP)
            self.stopped = True
            self.stop()
            return None
        try:
            return self._dispatch(message)
        except Exception as exc:  # noqa: BLE001 - reported, the job actor decides
            self._crashed(exc)
            return None

    def on_stop(self) -> None:
        """Whatever way it ends: no worker left writing, no file left open."""
        self._release(AbortReason.STOP)

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Killed by an exception that escaped every handler: the job still hears of it."""
        with contextlib.suppress(Exception):
            self._release(AbortReason.STOP)
        if not self.stopped:
            self.stopped = True
            _tell(self.owner, DownloadCrashed(self.token, repr(exc)))

    def _dispatch(self, message: Any) -> Any:
        run = self.run
        match message:
            case _Checkpoint(token, segment, start, upto) if run is not None and token == run.token:
                self._checkpoint(run, segment, start, upto)
            case _SegmentEnded(token) if run is not None and token == run.token:
                self._segment_ended(run, message)
            case _Probed(token, result, error) if run is not None and token == run.token:
                self._probed(run, result, error)
            case _Verified(token) if run is not None and token == run.token:
                self._verified(run, message)
            case Resolved(request_id, _, url) if run is not None and request_id == run.url_request:
                run.url_request = None
                run.url = url
                self._probe(run)
            case CallFailed(request_id, Op.RESOLVE, error) if (
                run is not None and request_id == run.url_request
            ):
                run.url_request = None
                self._link_refused(run, error)
            case _Again(token, what, segment) if run is not None and token == run.token:
                self._again(run, what, segment)
            case _Tick():
                self.tick = None
                self._on_tick()
            case ProviderRestarted(generation):
                if (run is not None and run.url_request is not None
                        and run.url_generation < generation):
                    self._ask_link(run)
            case CancelDownload():
                self._cancel()
            case WindUpDownload():
                return self._wind_up()
            case BudgetWait() | AccountHeld() | AccountResumed():
                log.info("download_link_waits", job_id=self.job_id, provider=self.provider_name,
                         note=type(message).__name__)
            case _:
                log.info(
                    "stale_reply_dropped",
                    job_id=self.job_id,
                    provider=self.provider_name,
                    message=type(message).__name__,
                )
        return None

    # -- placing the files ----------------------------------------------------------
    def _place(self) -> None:
        """Paths for files that have none yet (the JobActor placed them already)."""
        self.files = list(place_job_files(tuple(self.files), self.root))

    def _next_file(self) -> None:
        for index, file in enumerate(self.files):
            if not file.selected or self._on_disk(file):
                continue
            self._start_file(index)
            return
        self._finish()

    @staticmethod
    def _on_disk(file: JobFile) -> bool:
        if file.verified is None or file.local_path is None:
            return False
        try:
            return os.stat(file.local_path).st_size == file.size
        except OSError:
            return False

    def _start_file(self, index: int) -> None:
        file = self.files[index]
        assert file.local_path is not None
        path = Path(file.local_path)
        transfer = file.transfer
        ranges = ByteRanges.from_json([list(r) for r in transfer.ranges]) if transfer else None
        run = _Run(
            index=index,
            path=path,
            part=_part_path(path),
            size=transfer.size if transfer else file.size,
            ranges=ranges or ByteRanges(),
        )
        if transfer is not None:
            run.validator = Validator(transfer.size, transfer.etag, transfer.last_modified)
        if file.verified is not None:
            # Verified once, gone or changed since: fetched again from zero.
            self.files[index] = attrs.evolve(file, verified=None, bytes_done=0, transfer=None)
            run.ranges, run.validator = ByteRanges(), None
        self.run = run
        try:
            self._make_folder(path.parent)
            # What the ``.part`` holds already (reserved when it was made) needs no room.
            needed = max(0, run.size - _allocated(run.part))
            check_space(path.parent, needed, self.settings.space_margin,
                        self.settings.free_bytes)
        except NoSpace as error:
            self._fail("NO_SPACE", str(error))
            return
        except OSError as error:
            self._fail("WRITE_ERROR", f"{path.parent}: {error.strerror or error}")
            return
        log.info("download_file_started", job_id=self.job_id, provider=self.provider_name,
                 file_id=file.id, size=run.size, resumed_bytes=run.ranges.done)
        self._ask_link(run)

    # -- links ---------------------------------------------------------------------
    def _ask_link(self, run: _Run) -> None:
        run.step = _Step.LINK
        request_id = next(self._ids)
        run.url_request = request_id
        file = self.files[run.index]
        message = ResolveLink(self.job_id, request_id, self.remote_id, file, self.payload,
                              self.actor_ref, failed_url=run.failed_url)
        try:
            run.url_generation = self.provider.tell(message)
        except ProviderDown as down:
            run.url_generation = down.generation  # ProviderRestarted sends it again

    def _link_refused(self, run: _Run, error: ProviderError) -> None:
        tries = run.strike("link_call")
        if error.retryable and tries <= self.settings.link_tries:
            delay = _delay(self.settings.retry_policy, tries, error.retry_after)
            self._later(run, delay, "link")
            return
        self._fail(error.code or "NO_LINK",
                   f"no download link for {self.files[run.index].name}: {error.message}")

    # -- probing -------------------------------------------------------------------
    def _probe(self, run: _Run) -> None:
        run.step = _Step.PROBE
        run.token = next(self._tokens)
        token, url, client = run.token, run.url, self.client
        assert url is not None and client is not None
        me = self.actor_ref

        def work() -> None:
            try:
                result = probe(client, url)
            except Exception as exc:  # noqa: BLE001 - reported to the actor
                _tell(me, _Probed(token, None, repr(exc)))
                return
            _tell(me, _Probed(token, result))

        run.worker = _thread(work, f"probe-{self.job_id}")

    def _probed(self, run: _Run, result: ProbeResult | None, error: str | None) -> None:
        run.worker = None
        if result is None or result.outcome is not None:
            self._probe_failed(run, result, error)
            return
        name = self.files[run.index].name
        expected = self.files[run.index].size
        size = result.size if result.size is not None else expected
        if expected > 0 and size != expected:
            self._fail("SIZE_MISMATCH",
                       f"{name}: the server has {size} bytes, the provider says {expected}")
            return
        seen = attrs.evolve(result.validator, size=size) if result.validator else Validator(
            size, None, None)
        if run.ranges.done and (run.validator is None or not run.validator.matches(seen)):
            self._restart(run, "validator_changed")
            return
        if run.ranges.done and not result.ranged:
            self._restart(run, "range_ignored")
            return
        if run.ranges.done and not run.part.exists():
            self._restart(run, "part_missing")
            return
        run.size, run.validator, run.ranged = size, seen, result.ranged
        if run.fd is None:
            try:
                run.fd = self._open_part(run, size)
            except OSError as exc:
                self._write_failed(run, exc)
                return
        file = self.files[run.index]
        if file.md5 and run.hasher is None:
            run.hasher = Md5Progress(run.part)
        self._fetch(run)

    def _probe_failed(self, run: _Run, result: ProbeResult | None, error: str | None) -> None:
        outcome = result.outcome if result is not None else None
        name = self.files[run.index].name
        if outcome is FetchOutcome.LINK_EXPIRED:
            self._new_link(run, f"probe answered {result.http_status if result else '?'}")
            return
        tries = run.strike("http")
        if tries > self.settings.http_tries:
            status = result.http_status if result is not None else None
            self._fail("DOWNLOAD_FAILED",
                       f"{name}: the server does not answer properly "
                       f"({status or error or (result.reason if result else '')})")
            return
        self._later(run, _delay(self.settings.retry_policy, tries, None), "probe")

    # -- fetching ------------------------------------------------------------------
    def _fetch(self, run: _Run) -> None:
        run.step = _Step.FETCH
        run.token = next(self._tokens)
        run.then, run.reason = _Then.CONTINUE, ""
        run.fetch_since = self.clock.monotonic()
        run.samples.clear()
        missing = run.ranges.missing(run.size)
        if not missing:
            self._verify(run)
            return
        if run.hasher is not None:  # after a resume: what is on disk, read back in turn
            for start, end in run.ranges.spans:
                run.hasher.written(start, end)
        connections = self.connections if run.ranged else 1
        for start, end in plan_segments(missing, connections, self.settings.min_split):
            self._start_segment(run, start, end)

    def _start_segment(self, run: _Run, start: int, end: int) -> None:
        segment_id = next(self._segment_ids)
        segment = _Segment(start, end, Abort(), threading.Event())
        run.segments[segment_id] = segment
        token, url, client, wire = run.token, run.url, self.client, self.wire
        assert url is not None and run.fd is not None and client is not None
        # The worker writes through a descriptor of its own, which it closes: the
        # actor may close the file at any time without a late write landing in
        # whatever file reuses the number.
        fd = os.dup(run.fd)
        validator = run.validator if run.ranged else None
        # A fresh whole file on one connection needs no Range (a server that refuses
        # ranges then still serves it); every other fetch asks for its range.
        ranged = run.ranged and not (start == 0 and end == run.size)
        hasher = run.hasher
        settings, me, job_id = self.settings, self.actor_ref, self.job_id
        bandwidth = self.bandwidth
        telemetry, provider_name = settings.telemetry, self.provider_name

        def on_data(offset: int, length: int) -> None:
            segment.written[0] = offset + length - start
            if telemetry is not None:
                telemetry.downloaded(provider_name, length)

        def take(n: int) -> bool:
            return bandwidth.take(job_id, n, segment.cancelled)

        def checkpoint(upto: int) -> None:
            _tell(me, _Checkpoint(token, segment_id, start, upto))

        # Uncapped, a worker takes what the socket gives (no re-chunking, nothing held
        # back); under a cap, pieces of a tenth of a second's worth.
        capped = bandwidth.chunk_for(job_id, settings.chunk_size)
        read_size = capped if capped < settings.chunk_size else None

        def work() -> None:
            durable, result, error = start, None, None
            try:
                result = fetch_range(
                    client, url, start, end, fd=fd, validator=validator, ranged=ranged,
                    on_data=on_data, bandwidth_take=take, checkpoint=checkpoint,
                    checkpoint_bytes=settings.checkpoint_bytes, abort=segment.abort,
                    chunk_size=read_size, hasher=hasher, wire=wire,
                )
                if result.offset > start:
                    try:
                        os.fdatasync(fd)
                    except OSError as exc:  # the disk failed us: not a cut
                        result = FetchResult(FetchOutcome.WRITE_ERROR, result.offset,
                                             exc.strerror or str(exc), errno=exc.errno)
                    else:
                        durable = result.offset
            except Exception as exc:  # noqa: BLE001 - reported to the actor
                error = repr(exc)
            finally:
                with contextlib.suppress(OSError):
                    os.close(fd)
            ended = _SegmentEnded(token, segment_id, result, durable, error)
            segment.ended = ended
            _tell(me, ended)

        segment.thread = _thread(work, f"fetch-{job_id}-{segment_id}")

    def _checkpoint(self, run: _Run, segment_id: int, start: int, upto: int) -> None:
        if upto <= start:
            return
        run.ranges = run.ranges.add(start, upto)
        segment = run.segments.get(segment_id)
        if segment is not None:
            segment.checkpointed = max(segment.checkpointed, upto - start)
        self._record(run)
        self._report()

    def _segment_ended(self, run: _Run, ended: _SegmentEnded) -> None:
        segment = run.segments.pop(ended.segment, None)
        if segment is None:
            return
        if ended.durable > segment.start:
            run.ranges = run.ranges.add(segment.start, ended.durable)
            self._record(run)
        result = ended.result
        if result is None:
            self._abort_segments(run, AbortReason.CANCEL)
            self._then(run, _Then.RECONNECT, f"worker failed: {ended.error}", strike="http")
        else:
            self._outcome(run, segment, result)
        if not run.segments:
            self._settled(run)

    def _outcome(self, run: _Run, segment: _Segment, result: FetchResult) -> None:
        name = self.files[run.index].name
        match result.outcome:
            case FetchOutcome.DONE | FetchOutcome.CANCELLED | FetchOutcome.STALLED:
                pass
            case FetchOutcome.CUT:
                progressed = result.offset > segment.start
                if progressed:
                    run.strikes.pop("cut", None)
                if run.then is _Then.CONTINUE and (
                    progressed or run.strike("cut") <= self.settings.cut_tries
                ):
                    log.info("download_connection_cut", job_id=self.job_id,
                             provider=self.provider_name, file=name, offset=result.offset)
                    self._start_segment(run, max(result.offset, segment.start), segment.end)
                elif run.then is _Then.CONTINUE:
                    self._abort_segments(run, AbortReason.CANCEL)
                    self._then(run, _Then.NEW_LINK, "the connection keeps being cut")
            case FetchOutcome.LINK_EXPIRED:
                self._abort_segments(run, AbortReason.CANCEL)
                self._then(run, _Then.NEW_LINK, f"the link answered {result.http_status}")
            case FetchOutcome.RESTART_FILE:
                self._abort_segments(run, AbortReason.CANCEL)
                self._then(run, _Then.RESTART, result.reason)
            case FetchOutcome.WRITE_ERROR:
                self._abort_segments(run, AbortReason.CANCEL)
                code = "NO_SPACE" if result.errno == errno.ENOSPC else "WRITE_ERROR"
                self._fail(code, f"{run.part}: {result.reason}")
            case FetchOutcome.HTTP_ERROR:
                status = result.http_status or 0
                if status in (408, 425, 429) or status >= 500:
                    tries = run.strike("http")
                    if tries <= self.settings.http_tries:
                        delay = _delay(self.settings.retry_policy, tries, None)
                        self._later(run, delay, "segment", self._respawn(run, segment, result))
                        return
                self._abort_segments(run, AbortReason.CANCEL)
                self._fail("DOWNLOAD_FAILED", f"{name}: the server answered {status}")

    def _respawn(self, run: _Run, segment: _Segment, result: FetchResult) -> int:
        """A placeholder for a segment fetched again later (``_Again``)."""
        segment_id = next(self._segment_ids)
        start = max(result.offset, segment.start)
        placeholder = _Segment(start, segment.end, Abort(), threading.Event())
        run.segments[segment_id] = placeholder
        return segment_id

    def _then(self, run: _Run, then: _Then, reason: str, *, strike: str | None = None) -> None:
        """After the segments end: ``then``; the strongest remedy asked for wins."""
        order = (_Then.CONTINUE, _Then.RECONNECT, _Then.NEW_LINK, _Then.RESTART)
        if order.index(then) > order.index(run.then):
            run.then, run.reason = then, reason
        if strike is not None:
            run.strike(strike)

    def _settled(self, run: _Run) -> None:
        """Every segment of the file ended: go on as they decided."""
        if self.stopped or self.run is not run:
            return
        then, reason = run.then, run.reason
        run.then, run.reason = _Then.CONTINUE, ""
        name = self.files[run.index].name
        match then:
            case _Then.CONTINUE if run.ranges.covers(run.size):
                self._verify(run)
            case _Then.CONTINUE:
                self._fetch(run)  # what is still missing (a segment that ended short)
            case _Then.RECONNECT:
                if run.strikes.get("http", 0) > self.settings.http_tries:
                    self._fail("DOWNLOAD_FAILED", f"{name}: {reason}")
                    return
                log.info("download_reconnect", job_id=self.job_id, provider=self.provider_name,
                         file=name, reason=reason)
                self._probe(run)
            case _Then.NEW_LINK:
                self._new_link(run, reason)
            case _Then.RESTART:
                self._restart(run, reason)

    def _new_link(self, run: _Run, reason: str) -> None:
        name = self.files[run.index].name
        if run.strike("link") > self.settings.link_tries:
            code = "DOWNLOAD_STALLED" if run.reason == "stalled" else "LINK_DEAD"
            self._fail(code, f"{name}: {reason}, after {self.settings.link_tries} new links")
            return
        log.info("download_new_link", job_id=self.job_id, provider=self.provider_name,
                 file=name, reason=reason)
        run.failed_url, run.url = run.url, None
        self._ask_link(run)

    def _restart(self, run: _Run, reason: str) -> None:
        """Start the file again from byte 0: nothing is appended to the wrong bytes."""
        name = self.files[run.index].name
        log.warning("download_restarted_from_zero", job_id=self.job_id,
                    provider=self.provider_name, file=name, reason=reason,
                    bytes_dropped=run.ranges.done)
        if run.strike("restart") > self.settings.restart_tries:
            self._fail("DOWNLOAD_FAILED", f"{name}: restarted {self.settings.restart_tries} "
                                          f"times ({reason})")
            return
        run.token = next(self._tokens)  # late checkpoints of the old bytes are dropped
        self._close_part(run)
        with contextlib.suppress(FileNotFoundError):
            run.part.unlink()
        run.ranges, run.validator, run.hasher = ByteRanges(), None, None
        self._record(run)
        self._report()
        if run.url is None:
            self._ask_link(run)
        else:
            self._probe(run)

    def _again(self, run: _Run, what: str, segment_id: int | None) -> None:
        if what == "link":
            self._ask_link(run)
        elif what == "probe":
            self._probe(run)
        elif segment_id is not None and segment_id in run.segments:
            placeholder = run.segments.pop(segment_id)
            if run.then is _Then.CONTINUE:
                self._start_segment(run, placeholder.start, placeholder.end)
            elif not run.segments:
                self._settled(run)

    def _later(self, run: _Run, delay: float, what: str, segment: int | None = None) -> None:
        self.scheduler.schedule(delay, self.actor_ref, _Again(run.token, what, segment))

    # -- verifying -----------------------------------------------------------------
    def _verify(self, run: _Run) -> None:
        run.step = _Step.VERIFY
        run.token = next(self._tokens)
        token, part, size = run.token, run.part, run.size
        md5, hasher, me = self.files[run.index].md5, run.hasher, self.actor_ref
        if run.fd is None:  # an empty file has nothing to fetch: it is made here
            try:
                run.fd = self._open_part(run, size)
            except OSError as exc:
                self._write_failed(run, exc)
                return
        fd = os.dup(run.fd)

        def work() -> None:
            try:
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
                if md5 and hasher is not None:
                    hasher.catch_up(part, size)
                checked = verify(part, size, md5, hasher)
            except Exception as exc:  # noqa: BLE001 - reported to the actor
                _tell(me, _Verified(token, False, None, "", repr(exc)))
                return
            _tell(me, _Verified(token, checked.size_ok, checked.md5_ok, checked.how))

        run.worker = _thread(work, f"verify-{self.job_id}")

    def _verified(self, run: _Run, checked: _Verified) -> None:
        run.worker = None
        file = self.files[run.index]
        if checked.error is not None:
            self._fail("WRITE_ERROR", f"{run.part}: could not be read back: {checked.error}")
            return
        if not checked.size_ok or checked.md5_ok is False:
            what = "size" if not checked.size_ok else "md5"
            log.warning("download_checksum_mismatch", job_id=self.job_id,
                        provider=self.provider_name, file=file.name, check=what)
            if run.strike("checksum") > self.settings.checksum_tries:
                self._close_part(run)
                with contextlib.suppress(FileNotFoundError):
                    run.part.unlink()
                run.ranges = ByteRanges()
                self._record(run)
                self._fail("CHECKSUM_MISMATCH", f"{file.name}: the {what} does not match "
                                                "after a second download")
                return
            self._restart(run, f"{what}_mismatch")
            return
        self._close_part(run)
        try:
            os.replace(run.part, run.path)
            _sync_dir(run.path.parent)
        except OSError as exc:
            self._write_failed(run, exc)
            return
        self.files[run.index] = attrs.evolve(
            file, bytes_done=run.size, transfer=None, verified=checked.how, size=run.size
        )
        log.info("download_file_done", job_id=self.job_id, provider=self.provider_name,
                 file_id=file.id, size=run.size, verified=checked.how)
        self.run = None
        self._report(force=True)
        self._next_file()

    # -- the end -------------------------------------------------------------------
    def _finish(self) -> None:
        self._stop_tick()
        self.bandwidth.forget(self.job_id)  # done: its cap goes (a failed job's stays)
        self.stopped = True
        _tell(self.owner, DownloadFinished(self.token, tuple(self.files)))
        self.stop()

    def _fail(self, code: str, message: str) -> None:
        log.info("download_failed", job_id=self.job_id, provider=self.provider_name, code=code,
                 error=message)
        self._release(AbortReason.STOP)
        self.stopped = True
        _tell(self.owner, DownloadFailed(self.token, code, message, tuple(self.files)))
        self.stop()

    def _write_failed(self, run: _Run, exc: OSError) -> None:
        code = "NO_SPACE" if exc.errno == errno.ENOSPC else "WRITE_ERROR"
        self._fail(code, f"{run.part}: {exc.strerror or exc}")

    def _crashed(self, exc: BaseException) -> None:
        log.exception("download_crashed", job_id=self.job_id, provider=self.provider_name)
        self._release(AbortReason.STOP)
        self.stopped = True
        _tell(self.owner, DownloadCrashed(self.token, repr(exc)))
        self.stop()

    def _open_part(self, run: _Run, size: int) -> int:
        """``open_part``; a folder that went meanwhile (another job's cancel removed
        it while it was empty) is made again, once."""
        try:
            return open_part(run.part, size)
        except FileNotFoundError:
            self._make_folder(run.part.parent)
            return open_part(run.part, size)

    def _make_folder(self, folder: Path) -> None:
        """``mkdir -p folder``, remembering which of its folders did not exist."""
        missing = []
        at = folder
        while not at.exists() and at.parent != at:
            missing.append(at)
            at = at.parent
        folder.mkdir(parents=True, exist_ok=True)
        known = set(self.made_dirs)
        self.made_dirs.extend(m for m in reversed(missing) if m not in known)

    def _cancel(self) -> None:
        """Cancelled: transfers stop, ``.part`` files go (finished files stay), and so do
        the folders this actor made that are left empty."""
        self._release(AbortReason.CANCEL)
        for file in self.files:
            if file.selected and file.local_path and file.verified is None:
                with contextlib.suppress(OSError):
                    _part_path(Path(file.local_path)).unlink()
        for folder in sorted(self.made_dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty one: a finished file keeps its folder
        self.bandwidth.forget(self.job_id)
        self.stopped = True
        self.stop()

    def _wind_up(self) -> tuple[JobFile, ...]:
        """The engine stops: workers end, what they synced is recorded, ``.part`` stays."""
        run = self.run
        self._release(AbortReason.STOP, wait=True)
        self.stopped = True
        if run is not None:
            self._record(run)
        self.stop()
        return tuple(self.files)

    def _release(self, reason: AbortReason, *, wait: bool = False) -> None:
        """Stop every worker, close the file; ``wait`` (a wind-up, which the stopping
        job asks for) also waits for them, bounded, and records what they synced.

        Without ``wait`` nothing blocks: each worker holds its own descriptor and
        ends on its own once aborted; what it synced after the last checkpoint is
        fetched again next time (at most ``checkpoint_bytes`` per segment).
        """
        self._stop_tick()
        run = self.run
        if run is not None:
            segments = list(run.segments.values())
            self._abort_segments(run, reason)
            if wait:
                deadline = _time.monotonic() + self.settings.join_timeout
                for segment in segments:
                    if segment.thread is not None:
                        segment.thread.join(max(0.0, deadline - _time.monotonic()))
                    ended = segment.ended
                    if ended is not None and ended.durable > segment.start:
                        run.ranges = run.ranges.add(segment.start, ended.durable)
            self._close_part(run)
        client, self.client = self.client, None
        if client is not None:
            client.close()  # a worker still in a read is aborted already: it ends

    def _abort_segments(self, run: _Run, reason: AbortReason) -> None:
        for segment in run.segments.values():
            segment.cancelled.set()
            segment.abort.trigger(reason)
        self.bandwidth.wake()

    @staticmethod
    def _close_part(run: _Run) -> None:
        fd, run.fd = run.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- progress ------------------------------------------------------------------
    def _record(self, run: _Run) -> None:
        """The file as it is on disk now (recorded ranges only)."""
        file = self.files[run.index]
        validator = run.validator
        transfer = FileTransfer(
            run.size,
            validator.etag if validator else None,
            validator.last_modified if validator else None,
            tuple((a, b) for a, b in run.ranges.to_json()),
        )
        self.files[run.index] = attrs.evolve(file, bytes_done=run.ranges.done, transfer=transfer)

    def _stats(self) -> dict[str, Any]:
        selected = [f for f in self.files if f.selected]
        total = sum(f.size for f in selected)
        run = self.run
        live = sum(f.bytes_done for i, f in enumerate(self.files)
                   if f.selected and (run is None or i != run.index))
        if run is not None:
            live += run.live()
        now = self.clock.monotonic()
        samples = self.samples
        samples.append((now, live))
        while len(samples) > 2 and now - samples[0][0] > 5.0:
            samples.popleft()
        first_at, first = samples[0]
        speed = (live - first) / (now - first_at) if now > first_at else 0.0
        speed = max(0.0, speed)
        remaining = max(0, total - live)
        eta = round(remaining / speed) if speed > 0 else None
        return {
            "bytes_done": live,
            "bytes_total": total,
            "speed_bps": round(speed),
            "eta_seconds": eta,
            "files_done": sum(1 for f in selected if f.verified is not None),
            "files_total": len(selected),
            "current": self.files[run.index].name if run is not None else None,
        }

    def _report(self, *, force: bool = False) -> None:
        """Tell the job what is on disk; skipped only when neither the figures nor
        the recorded files changed (a checkpoint behind the live figure counts)."""
        stats, files = self._stats(), tuple(self.files)
        if not force and stats == self.last_stats and files == self.last_files:
            return
        self.last_stats, self.last_files = stats, files
        _tell(self.owner, DownloadProgress(self.token, files, stats))

    def _schedule_tick(self) -> None:
        if not self.stopped and self.tick is None:
            self.tick = self.scheduler.schedule(self.settings.tick_seconds, self.actor_ref,
                                                _Tick())

    def _stop_tick(self) -> None:
        tick, self.tick = self.tick, None
        if tick is not None:
            tick.cancel()

    def _on_tick(self) -> None:
        run = self.run
        if run is not None and run.step is _Step.FETCH and run.segments:
            self._check_stall(run)
        self._report()
        self._schedule_tick()

    def _check_stall(self, run: _Run) -> None:
        """Below the speed floor for a whole window: reconnect, then a new link, then fail."""
        settings = self.settings
        now, live = self.clock.monotonic(), run.live()
        samples = run.samples
        samples.append((now, live))
        window = settings.low_speed_seconds
        while len(samples) > 1 and now - samples[1][0] >= window:
            samples.popleft()
        if run.then is not _Then.CONTINUE or now - run.fetch_since < window:
            return
        first_at, first = samples[0]
        if now - first_at < window:
            return
        if self.bandwidth.capped_below(self.job_id, settings.low_speed_bps):
            return  # slow on purpose: a cap under the floor is not a stall
        if live - first >= settings.low_speed_bps * (now - first_at):
            run.strikes.pop("stall", None)
            return
        strikes = run.strike("stall")
        name = self.files[run.index].name
        log.warning("download_stalled", job_id=self.job_id, provider=self.provider_name,
                    file=name, strike=strikes, bytes_in_window=live - first)
        samples.clear()
        run.fetch_since = now
        if strikes > settings.stall_tries:
            self._abort_segments(run, AbortReason.STALL)
            self._fail("DOWNLOAD_STALLED", f"{name}: below {settings.low_speed_bps:g} B/s for "
                                           f"{window:g}s, {settings.stall_tries} times")
            return
        self._abort_segments(run, AbortReason.STALL)
        then = _Then.RECONNECT if strikes == 1 else _Then.NEW_LINK
        self._then(run, then, "stalled")


def _part_path(path: Path) -> Path:
    """``<name>.part`` beside ``path``; a name at the length limit gets a short one."""
    name = path.name + _PART
    if len(name.encode()) > _NAME_MAX:
        digest = hashlib.sha256(path.name.encode()).hexdigest()[:16]
        name = f".{digest}{_PART}"
    return path.with_name(name)


def _unused(path: Path, taken: set[Path]) -> Path:
    """``path``, or a numbered sibling when another job's file (or ours) is there."""
    if path not in taken and not path.exists() and not _part_path(path).exists():
        return path
    stem, suffix = path.stem, path.suffix
    for n in itertools.count(1):
        candidate = path.with_name(f"{stem} ({n}){suffix}")
        if candidate not in taken and not candidate.exists() and not _part_path(
            candidate
        ).exists():
            return candidate
    raise AssertionError("unreachable")


def place_job_files(files: tuple[JobFile, ...], root: Path) -> tuple[JobFile, ...]:
    """Give every selected file its path under ``root``, once: a path recorded
    before (a restart, a retry) is kept, so the numbering never moves; a path that
    another file (or another job's) holds already gets a number."""
    selected = [(f.id, f.name) for f in files if f.selected]
    placed = place_files(selected, root)
    taken = {Path(f.local_path) for f in files if f.selected and f.local_path}
    result = []
    for file in files:
        if not file.selected or file.local_path:
            result.append(file)
            continue
        path = _unused(placed[file.id], taken)
        taken.add(path)
        result.append(attrs.evolve(file, local_path=str(path)))
    return tuple(result)


def _allocated(path: Path) -> int:
    """Bytes the file system has given ``path`` (0 when it does not exist)."""
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0


def _sync_dir(directory: Path) -> None:
    """Make a rename durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _delay(policy: RetryPolicy, tries: int, hint: float | None) -> float:
    """Seconds before try ``tries`` again: the server's hint (capped), else a doubling."""
    if hint is not None and hint > 0:
        return min(hint, policy.max_retry_after)
    growth = policy.backoff_multiplier ** max(0, tries - 1)
    return min(policy.max_delay, policy.initial_delay * growth)


def _thread(work: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread


def _tell(ref: Ref, message: Any) -> None:
    with contextlib.suppress(Exception):
        ref.tell(message)
