"""A provider that needs no account: jobs progress on the clock, faults on demand.

A mock job is QUEUED for ``step_seconds``, then RESOLVING, then DOWNLOADING (its
progress rising from 0 to 100) and COMPLETED after three steps. With
``step_seconds=0`` it is done at once (a cached item). Faults are queued with
``inject`` and consumed by the next matching call, so a test decides exactly
which call fails and how.

Options: ``step_seconds`` (default 2), ``files_per_torrent``, ``max_active``
(slots: a submission past them is refused with a retryable ACTIVE_LIMIT),
``requests_per_second`` and ``burst`` (a token bucket), ``state_file`` and
``retention_seconds``.

Its files download for real: each is small (a few KB to ~2 MB, sizes from the
item) with its md5 in ``JobFile.md5``, and ``resolve_download_url`` gives a
URL on the mock's own ``FileServer`` (127.0.0.1, started on the first resolve,
stopped by ``close``) that serves exactly those bytes, with Range and If-Range;
``file_server.knobs`` make it misbehave (cut, stall, throttle, expire).

The "remote" side (the items the mock made) is a SQLite table (see
``providers._mock_remote``): in the file ``state_file`` when given, so that it
outlives the process as a real service's items do (each change is committed
before the call returns; crash tests use it to check that no job is ever
submitted twice), else in memory. ``EngineConfig`` gives a mock without
``state_file`` one beside a file database (``jobs.db.mock-<name>.sqlite3``).
An older mock's JSON state file is migrated in place. Every call costs
O(log n) in the number of items, or O(active) where it counts slots: nothing
reads every item. A terminal item (completed, failed, cancelled) is forgotten
``retention_seconds`` (default 7 days of clock time) after it ended, a few at a
time on ordinary calls, so a mock run for months stays bounded; a forgotten
item is NOT_FOUND, as on a service that purges old items.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import uuid
import zlib
from collections import Counter, OrderedDict
from collections.abc import Collection, Mapping, Sequence, Set
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import attrs

from providers._bounded import BoundedDict
from providers._errors import ProviderError
from providers._fileserve import FileServer, ServedFile, content_md5
from providers._job import JobFile
from providers._mock_remote import MemoryRemote, MockItem, MockRemote, end_time
from providers._payload import StartJobPayload
from providers._protocol import BaseProvider
from providers._responses import (
    CancelJobResponse,
    FileLinksResponse,
    JobStatusResponse,
    RateLimit,
    TestConnectionResponse,
)
from providers._selection import select_files
from providers._status import JobStatus
from providers._torrent import magnet_display_name, torrent_name

__all__ = ["DEFAULT_RETENTION", "FaultKind", "MockFault", "MockItem", "MockProvider"]

FaultKind = Literal["transient", "rate_limit", "fatal", "crash", "remote_fail"]
Operation = Literal[
    "start_job",
    "get_status",
    "list_statuses",
    "find_existing",
    "cancel",
    "get_file_links",
    "resolve_download_url",
    "test_connection",
]

_STEPS = (JobStatus.QUEUED, JobStatus.RESOLVING, JobStatus.DOWNLOADING, JobStatus.COMPLETED)
_ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RESOLVING, JobStatus.DOWNLOADING})
#: States in which a job shows its files (DOWNLOADING and later, FAILED included).
_SHOWS_FILES = frozenset(s for s in JobStatus if s.rank >= JobStatus.DOWNLOADING.rank)
#: Each state's text, as the raw status (a dict read, not an enum property, per answer).
_TEXT = {s: s.value for s in JobStatus}

#: Seconds of clock time a terminal item is kept before it is forgotten: 7 days.
DEFAULT_RETENTION = 7 * 86400.0
#: Items forgotten per call at most, so no call pays for a long backlog at once.
_PRUNE_BATCH = 100
#: Relative width of the band around "now" in which an item's end is checked in
#: Python, step by step, rather than trusted from the stored float: the count of
#: active items then agrees exactly with the statuses the mock reports.
_EDGE = 1e-12


@attrs.define
class MockFault:
    """One queued fault: the next ``count`` calls of ``op`` (any op when None) misbehave.

    ``transient``: a retryable ProviderError (``retry_after`` optional);
    ``rate_limit``: a retryable 429 RATE_LIMITED with ``retry_after``;
    ``fatal``: a non-retryable ProviderError with ``code``;
    ``crash``: a RuntimeError, as a bug in a provider would raise;
    ``remote_fail``: the remote job itself fails with ``code`` once it reaches ``at``.
    """

    kind: FaultKind
    op: Operation | None = None
    count: int = 1
    code: str = "MOCK_FAILURE"
    retry_after: float | None = None
    at: JobStatus | None = None


class MockProvider(BaseProvider):
    """The built-in mock provider (see the module docstring)."""

    name = "mock"

    def __init__(
        self,
        step_seconds: float = 2.0,
        *,
        files_per_torrent: int = 3,
        max_active: int | None = None,
        requests_per_second: float | None = None,
        burst: int = 10,
        state_file: str | os.PathLike[str] | None = None,
        retention_seconds: float = DEFAULT_RETENTION,
        name: str = "mock",
    ) -> None:
        super().__init__()
        if step_seconds < 0:
            raise ValueError(f"step_seconds: must be >= 0 (got {step_seconds!r})")
        if not retention_seconds >= 0:
            raise ValueError(f"retention_seconds: must be >= 0 (got {retention_seconds!r})")
        self.name = name
        self._step_seconds = float(step_seconds)
        self.retention_seconds = float(retention_seconds)
        self.files_per_torrent = files_per_torrent
        self._max_active = max_active
        self._rate = requests_per_second
        self._burst = burst
        self._lock = threading.RLock()
        self._faults: list[MockFault] = []
        self._remote: MockRemote | MemoryRemote = (
            MockRemote(state_file, self._step_seconds)
            if state_file is not None
            else MemoryRemote(self._step_seconds)
        )
        #: The state file the remote side is kept in (None: in memory).
        self.state_file = self._remote.path
        # Clock time of the next item to outlive the retention (-inf: look now).
        self._next_prune = -math.inf
        self._file_cache: BoundedDict[str, tuple[JobFile, ...]] = BoundedDict(_FILE_CACHE_SIZE)
        # Started on the first resolve_download_url, stopped by close().
        self._server: FileServer | None = None
        self._urls: OrderedDict[tuple[str, int], str] = OrderedDict()
        # Unique across processes sharing a state file, cheap within one.
        self._id_prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        #: Calls per operation, for tests and benchmarks.
        self.calls: Counter[str] = Counter()
        #: Submissions refused because every slot was taken.
        self.refused_active = 0
        #: The most remote jobs ever active at once.
        self.peak_active = 0
        #: Terminal items forgotten after ``retention_seconds``.
        self.pruned = 0

    @property
    def step_seconds(self) -> float:
        """Seconds per step, fixed at construction (stored end times depend on it)."""
        return self._step_seconds

    # -- knobs ---------------------------------------------------------------
    def inject(self, kind: FaultKind, op: Operation | None = None, **options: Any) -> MockFault:
        """Queue a fault (see ``MockFault``); returns it."""
        fault = MockFault(kind=kind, op=op, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def submissions(self) -> Counter[str]:
        """How many remote jobs were created per source key (info-hash or URL).

        Cancelled items count; items forgotten after the retention no longer do.
        Reads every item: for tests.
        """
        with self._lock:
            return self._remote.counts_by_key()

    def remote_items(self) -> list[MockItem]:
        """Every remote item still remembered, oldest first. Reads every item: for tests."""
        with self._lock:
            return self._remote.all_items()

    def rate_limits(self) -> Mapping[str, RateLimit]:
        """A bucket only when ``requests_per_second`` was given."""
        if self._rate is None:
            return {}
        return {"default": RateLimit(self._rate, self._burst)}

    # -- the Provider protocol ----------------------------------------------
    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        """Create a remote job (committed before this returns)."""
        self._enter("start_job")
        with self._lock:
            now = self._now()
            if now >= self._next_prune:
                self._tidy(now)
            with self._remote.writing():
                active = 0
                if self._max_active is not None:
                    active = self._count_active(now)
                    if active >= self._max_active:
                        self.refused_active += 1
                        raise ProviderError(
                            f"{active} of {self._max_active} slots in use",
                            self.name,
                            code="ACTIVE_LIMIT",
                            retryable=True,
                        )
                remote_id = f"{self._id_prefix}{next(self._ids):x}"
                remote_fail = self._take_fault("start_job", "remote_fail") if self._faults else None
                fail_at = remote_fail.at.value if remote_fail and remote_fail.at else None
                info_hash = payload.info_hash  # parsed once: it decodes the whole source
                url = payload.url
                item = MockItem(  # by position: id, key, hash, url, name, kind, created,
                    remote_id,  # fail_at, fail_code, cancelled, ends
                    info_hash or url or "",
                    info_hash,
                    url,
                    _display_name(payload, info_hash),
                    payload.kind,
                    now,
                    fail_at,
                    remote_fail.code if remote_fail else None,
                    False,
                    end_time(now, fail_at, self._step_seconds),
                )
                self._remote.insert(item)
            self._next_prune = min(self._next_prune, item.ends + self.retention_seconds)
            if self._max_active is not None:
                # Counted only when slots are being checked.
                self.peak_active = max(self.peak_active, active + self._is_active(item, now))
            return self._status(item, now)

    def get_status(self, remote_id: str) -> JobStatusResponse:
        """One remote job's status; an unknown id is NOT_FOUND."""
        self._enter("get_status")
        with self._lock:
            now = self._now()
            self._tidy(now)
            item = self._remote.get(remote_id)
            if item is None or item.cancelled:
                raise ProviderError(f"no remote job {remote_id}", self.name, code="NOT_FOUND")
            return self._status(item, now)

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        """Every known id among ``remote_ids``, in one call."""
        self._enter("list_statuses")
        with self._lock:
            now = self._now()
            self._tidy(now)
            found = self._remote.get_many(remote_ids)
            return {
                rid: self._status(found[rid], now)
                for rid in remote_ids
                if rid in found and not found[rid].cancelled
            }

    def find_existing(
        self, payload: StartJobPayload, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        """The oldest remote job not cancelled made for the same info-hash or URL whose id
        is not in ``exclude``, if any (index-backed: only that key's live items are read)."""
        self._enter("find_existing")
        key = payload.source_key
        excluded = exclude if isinstance(exclude, Set) else frozenset(exclude)
        with self._lock:
            now = self._now()
            self._tidy(now)
            item = self._remote.live_with_key(key, excluded)
            return self._status(item, now) if item is not None else None

    def cancel(self, remote_id: str) -> CancelJobResponse:
        """Delete a remote job; an unknown one is already gone."""
        self._enter("cancel")
        with self._lock:
            now = self._now()
            self._tidy(now)
            with self._remote.writing():
                ends = self._remote.cancel(remote_id, now)
            if ends is None:
                return CancelJobResponse(remote_id, cancelled=True, already_gone=True)
            self._next_prune = min(self._next_prune, ends + self.retention_seconds)
            return CancelJobResponse(remote_id, cancelled=True)

    def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
        """Links for the selected files of a completed remote job."""
        self._enter("get_file_links")
        with self._lock:
            item = self._remote.get(remote_id)
            if item is None or item.cancelled:
                raise ProviderError(f"no remote job {remote_id}", self.name, code="NOT_FOUND")
            status, _, _, _ = self._state(item, self._now())
            if status is not JobStatus.COMPLETED:
                return FileLinksResponse(remote_id, self._files_at(item, status), ready=False)
            files = self._files(item)  # every file selected, as made
            if not payload.select.is_all:
                files = select_files(payload.select, files)
            return FileLinksResponse(remote_id, files, ready=True)

    def resolve_download_url(self, remote_id: str, file: JobFile) -> str:
        """A URL on the mock's own file server (127.0.0.1) serving ``file``'s bytes.

        The server starts on the first call; the same file gets the same URL until
        ``close`` (which stops the server) or until it falls out of the bounded map.
        """
        self._enter("resolve_download_url")
        with self._lock:
            item = self._remote.get(remote_id)
            if item is None or item.cancelled:
                raise ProviderError(f"no remote job {remote_id}", self.name, code="NOT_FOUND")
            status = self._state(item, self._now())[0]
            if status is not JobStatus.COMPLETED:
                raise ProviderError(
                    f"remote job {remote_id} is {status.value}, not completed",
                    self.name,
                    code="NOT_READY",
                    retryable=True,
                )
            made = next((f for f in self._files(item) if f.id == file.id), None)
            if made is None:
                raise ProviderError(
                    f"remote job {remote_id} has no file {file.id}", self.name, code="NO_LINK"
                )
            key = (remote_id, made.id)
            url = self._urls.get(key)
            if url is None:
                served = ServedFile(made.name.rsplit("/", 1)[-1], made.size, _seed(made.size),
                                    modified_at=_MODIFIED)
                url = self._urls[key] = self.file_server.add(served)
                if len(self._urls) > _FILE_CACHE_SIZE:
                    self.file_server.remove(self._urls.popitem(last=False)[1])
            return url

    @property
    def file_server(self) -> FileServer:
        """The server behind ``resolve_download_url``'s URLs (its ``knobs`` make it misbehave)."""
        with self._lock:
            if self._server is None:
                self._server = FileServer()
            return self._server

    def test_connection(self) -> TestConnectionResponse:
        """Always fine (unless a fault says otherwise)."""
        self._enter("test_connection")
        return TestConnectionResponse(
            self.name,
            ok=True,
            message="mock provider ready",
            account="mock-user",
            details={"step_seconds": self.step_seconds, "max_active": self._max_active},
        )

    def close(self) -> None:
        """Close the state file (reopened if the mock is used again) and stop the file server
        (its URLs die; a later ``resolve_download_url`` starts a new one); memory stays."""
        with self._lock:
            self._remote.close()
            server, self._server = self._server, None
            self._urls.clear()
        if server is not None:
            server.stop()

    # -- internals -----------------------------------------------------------
    def _now(self) -> float:
        return self.context.clock.time()

    def _tidy(self, now: float) -> None:
        """Forget a batch of items that ended ``retention_seconds`` ago, when one is due."""
        if now < self._next_prune:
            return
        with self._remote.writing():
            removed = self._remote.prune(now - self.retention_seconds, _PRUNE_BATCH)
            if removed >= _PRUNE_BATCH:
                upcoming: float | None = now  # more are due: the next call goes on
            else:
                upcoming = self._remote.earliest_end()
                if upcoming is not None:
                    upcoming += self.retention_seconds
        self.pruned += removed
        self._next_prune = math.inf if upcoming is None else upcoming

    def _count_active(self, now: float) -> int:
        """Items neither cancelled, failed nor completed at ``now``: O(active).

        Ends well past ``now`` are trusted from the index; those within a hair of
        it are checked as ``get_status`` would see them.
        """
        if self._step_seconds == 0:
            return 0
        edge = _EDGE * (abs(now) + 1.0)
        sure = self._remote.count_ending_after(now + edge)
        close = self._remote.ending_between(now - edge, now + edge)
        return sure + sum(1 for item in close if self._is_active(item, now))

    def _enter(self, op: Operation) -> None:
        self.calls[op] += 1
        if not self._faults:
            return  # nothing queued (a fault injected before this call is seen here)
        with self._lock:
            fault = self._take_fault(op, None)
        if fault is None:
            return
        if fault.kind == "crash":
            raise RuntimeError(f"injected crash in mock {op}")
        if fault.kind == "transient":
            raise ProviderError(
                f"injected transient failure in {op}",
                self.name,
                code=fault.code,
                http_status=503,
                retryable=True,
                retry_after=fault.retry_after,
            )
        if fault.kind == "rate_limit":
            raise ProviderError(
                f"injected rate limit in {op}",
                self.name,
                code="RATE_LIMITED",
                http_status=429,
                retryable=True,
                retry_after=fault.retry_after or 1.0,
            )
        raise ProviderError(f"injected failure in {op}", self.name, code=fault.code)

    def _take_fault(self, op: Operation, kind: FaultKind | None) -> MockFault | None:
        for fault in self._faults:
            if (fault.kind == "remote_fail") != (kind == "remote_fail"):
                continue
            if fault.op is not None and fault.op != op:
                continue
            fault.count -= 1
            if fault.count <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _step(self, item: MockItem, now: float) -> tuple[JobStatus, float]:
        step = self._step_seconds
        if step == 0:
            return JobStatus.COMPLETED, 100.0
        elapsed = max(0.0, now - item.created)
        index = min(3, int(elapsed // step))
        status = _STEPS[index]
        if status is JobStatus.DOWNLOADING:
            within = elapsed - 2 * step
            return status, round(min(99.9, 100.0 * within / step), 1)
        return status, 100.0 if status is JobStatus.COMPLETED else 0.0

    def _is_active(self, item: MockItem, now: float) -> bool:
        return not item.cancelled and self._state(item, now)[0] in _ACTIVE

    def _state(self, item: MockItem, now: float) -> tuple[JobStatus, float, str | None, str | None]:
        """Status, progress, error code and message of ``item`` at ``now``."""
        status, progress = self._step(item, now)
        fail_at = item.fail_at
        if fail_at is not None and status.rank >= JobStatus(fail_at).rank:
            return JobStatus.FAILED, progress, item.fail_code, f"mock job failed at {fail_at}"
        return status, progress, None, None

    def _status(self, item: MockItem, now: float) -> JobStatusResponse:
        status, progress, error_code, error_message = self._state(item, now)
        return JobStatusResponse(
            item.id,
            status,
            progress,
            self._files(item) if status in _SHOWS_FILES else (),
            _TEXT[status],
            item.hash,
            item.url,
            error_code,
            error_message,
        )

    def _files_at(self, item: MockItem, status: JobStatus) -> tuple[JobFile, ...]:
        """The files a job shows in ``status``: none before DOWNLOADING."""
        return self._files(item) if status in _SHOWS_FILES else ()

    def _files(self, item: MockItem) -> tuple[JobFile, ...]:
        # The files of the jobs asked about lately (every poll asks about each
        # active one): remade on a miss, so a daemon that runs the mock for
        # months does not keep every file list it ever made.
        cached = self._file_cache.get(item.id)
        if cached is None:
            cached = self._file_cache[item.id] = self._make_files(item)
        return cached

    def _make_files(self, item: MockItem) -> tuple[JobFile, ...]:
        # Small real files (at most ~2 MB each) that resolve_download_url serves:
        # sizes from the item, bytes from the size (see _seed).
        name = item.name
        bucket = zlib.crc32(item.key.encode()) % _SIZE_BUCKETS
        link = f"https://mock.debrid.invalid/d/{item.id}"
        if item.kind == "url":
            return (_file(0, name, 64 * 1024 + bucket * 30_011, f"{link}/0"),)
        files = [_file(0, f"{name}/{name}.mkv", 128 * 1024 + bucket * 28_001 + 7, f"{link}/0")]
        extras = ("sample.mkv", "readme.nfo", "subs.srt", "cover.jpg")
        for index in range(1, self.files_per_torrent):
            extra = extras[(index - 1) % len(extras)]
            size = (96_000 if extra.endswith(".mkv") else 4_000) + index
            files.append(_file(index, f"{name}/{extra}", size, f"{link}/{index}"))
        return tuple(files)


#: Distinct main-file sizes: files of one size share their bytes, so only this
#: many md5s are ever worked out (cached), however many jobs a mock makes.
_SIZE_BUCKETS = 64
#: Last-Modified of every mock file: fixed, so If-Range by date holds across resolves.
_MODIFIED = 1_700_000_000.0


def _seed(size: int) -> str:
    return f"mock:{size}"


def _file(index: int, name: str, size: int, link: str) -> JobFile:
    return JobFile(index, name, size, link, md5=content_md5(_seed(size), size))


_FILE_CACHE_SIZE = 4096


def _display_name(payload: StartJobPayload, info_hash: str | None) -> str:
    name: str | None = None
    if payload.magnet is not None:
        name = magnet_display_name(payload.magnet)
    elif payload.torrent is not None:
        name = torrent_name(payload.torrent)
    elif payload.url is not None:
        name = unquote(urlsplit(payload.url).path.rsplit("/", 1)[-1])
    if not name:
        name = f"mock-{info_hash[:8]}" if info_hash else "download.bin"
    return name
