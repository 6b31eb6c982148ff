"""One HTTP transfer: a probe of the server, and one byte range streamed into a file.

Both run on a worker thread, never on an actor's. ``fetch_range`` writes what
the server sends at its offset in the ``.part`` file (``os.pwrite`` on a file
descriptor of its own), syncs and reports a checkpoint every
``checkpoint_bytes``, and returns how the transfer ended as a ``FetchResult``:
the actor decides what comes next. Nothing is appended to the wrong bytes: a
``200`` to a ranged request, a ``206`` for another range or another file
version, or a ``416`` ends the fetch with ``RESTART_FILE`` before a byte is
written.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import attrs
import httpx

from actors.transfer._wire import Wire
from providers._log import mask_url_secrets

__all__ = [
    "Abort",
    "AbortReason",
    "FetchOutcome",
    "FetchResult",
    "HashFeed",
    "ProbeResult",
    "Validator",
    "fetch_range",
    "probe",
]

#: Answers that say this URL is no good any more: ask the provider for another.
#: (Real-Debrid's dead links answer 503/404, TorBox's expired CDN links 403.)
_LINK_GONE = frozenset({401, 403, 404, 410, 451, 503})
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)
_EXCERPT = 512


class AbortReason(enum.Enum):
    """Why a running transfer was told to end."""

    CANCEL = "cancel"
    STOP = "stop"
    STALL = "stall"


class FetchOutcome(enum.Enum):
    """How one fetch (or probe) ended."""

    DONE = "done"
    RESTART_FILE = "restart_file"  # the bytes on disk do not belong to what is served now
    LINK_EXPIRED = "link_expired"  # 401/403/404/410/451/503: another URL is needed
    CUT = "cut"  # the connection ended before the range did
    STALLED = "stalled"  # aborted for being too slow
    CANCELLED = "cancelled"  # aborted: cancel or stop
    WRITE_ERROR = "write_error"  # the local file could not be written
    HTTP_ERROR = "http_error"  # any other unexpected answer


@attrs.frozen
class Validator:
    """What a file's bytes were fetched against: its size and ETag or Last-Modified."""

    size: int
    etag: str | None = None
    last_modified: str | None = None

    def if_range_value(self) -> str | None:
        """The ``If-Range`` value: a strong ETag, else the date (weak ETags may not be used)."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    @classmethod
    def from_headers(cls, headers: httpx.Headers, size: int) -> Validator:
        """The validator a response announces for a file of ``size`` bytes."""
        return cls(size, headers.get("etag") or None, headers.get("last-modified") or None)

    def matches(self, other: Validator) -> bool:
        """True when ``other`` describes the same bytes (size, then ETag, then date)."""
        if self.size != other.size:
            return False
        if self.etag or other.etag:
            return self.etag == other.etag
        if self.last_modified or other.last_modified:
            return self.last_modified == other.last_modified
        return True


@attrs.frozen
class ProbeResult:
    """What a server says about a URL. ``outcome`` is None when it can be fetched."""

    outcome: FetchOutcome | None
    size: int | None = None
    ranged: bool = False
    validator: Validator | None = None
    http_status: int | None = None
    reason: str = ""


@attrs.frozen
class FetchResult:
    """How a fetch ended, and the offset up to which it wrote (not yet synced)."""

    outcome: FetchOutcome
    offset: int
    reason: str = ""
    http_status: int | None = None
    validator: Validator | None = None
    errno: int | None = None


class HashFeed(Protocol):
    """What a fetch feeds the bytes it writes to (an md5 kept while streaming)."""

    def feed(self, offset: int, data: bytes) -> None:
        """The bytes written at ``offset``."""


class Abort:
    """Tells a running fetch to end now, from another thread.

    A fetch blocked in a socket read is woken by shutting the socket down; one
    that has not got its answer yet sees the reason as soon as it has.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: AbortReason | None = None
        self._socket: socket.socket | None = None

    @property
    def reason(self) -> AbortReason | None:
        """Why the fetch was aborted, or None."""
        return self._reason

    def aborted(self) -> bool:
        """True once the fetch was told to end."""
        return self._reason is not None

    def trigger(self, reason: AbortReason) -> None:
        """End the fetch (the first reason given is kept)."""
        with self._lock:
            if self._reason is None:
                self._reason = reason
            sock = self._socket
        if sock is not None:
            _shut(sock)

    def attach(self, response: httpx.Response) -> None:
        """Remember the response's socket so that ``trigger`` can wake a blocked read."""
        stream = response.extensions.get("network_stream")
        sock: Any = None
        if stream is not None:
            with contextlib.suppress(Exception):
                sock = stream.get_extra_info("socket")
        self.attach_socket(sock if isinstance(sock, socket.socket) else None)

    def attach_socket(self, sock: socket.socket | None) -> None:
        """Remember the socket a fetch reads, so that ``trigger`` can wake it."""
        with self._lock:
            self._socket = sock
            triggered = self._reason is not None
        if triggered and sock is not None:
            _shut(sock)

    def detach(self) -> None:
        """The response is over: its socket may go back to the pool."""
        with self._lock:
            self._socket = None


def _shut(sock: socket.socket) -> None:
    """Shut the connection down under a blocked read. For TLS this is the plain
    socket's shutdown: ``SSLSocket.shutdown`` drops the TLS state, after which a
    read would hand over the raw records still queued (ciphertext written to the
    file); this way the TLS read sees the end of the stream."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def probe(client: httpx.Client, url: str) -> ProbeResult:
    """Ask for byte 0 only: the answer gives the size, the validator and range support."""
    headers = {"Range": "bytes=0-0", "Accept-Encoding": "identity"}
    try:
        with client.stream("GET", url, headers=headers) as response:
            return _probed(response)
    except httpx.HTTPError as exc:
        return ProbeResult(FetchOutcome.CUT, reason=_describe(exc))


def _probed(response: httpx.Response) -> ProbeResult:
    status = response.status_code
    if status == 206:
        span = _content_range(response.headers.get("content-range"))
        if span is None or span[2] is None:
            return ProbeResult(FetchOutcome.HTTP_ERROR, http_status=status,
                               reason="206 without a usable Content-Range")
        size = span[2]
        return ProbeResult(None, size, True, Validator.from_headers(response.headers, size),
                           status)
    if status == 200:
        length = _content_length(response)
        validator = Validator.from_headers(response.headers, length) if length is not None \
            else None
        return ProbeResult(None, length, False, validator, status)
    if status == 416:
        span = _content_range(response.headers.get("content-range"))
        if span is not None and span[2] == 0:  # an empty file has no byte 0
            return ProbeResult(None, 0, True, Validator.from_headers(response.headers, 0),
                               status)
        return ProbeResult(FetchOutcome.HTTP_ERROR, http_status=status,
                           reason="416 to a request for byte 0")
    outcome = FetchOutcome.LINK_EXPIRED if status in _LINK_GONE else FetchOutcome.HTTP_ERROR
    return ProbeResult(outcome, http_status=status, reason=_excerpt(_HttpxAnswer(response)))


def fetch_range(
    client: httpx.Client,
    url: str,
    start: int,
    end: int,
    *,
    fd: int,
    validator: Validator | None,
    ranged: bool,
    on_data: Callable[[int, int], None],
    bandwidth_take: Callable[[int], bool],
    checkpoint: Callable[[int], None],
    checkpoint_bytes: int,
    abort: Abort,
    chunk_size: int | None,
    hasher: HashFeed | None = None,
    wire: Wire | None = None,
) -> FetchResult:
    """Stream bytes ``[start, end)`` of ``url`` into ``fd`` at their offsets.

    ``ranged`` asks for the range (with ``If-Range`` from ``validator``); without
    it the whole body is expected from byte 0. ``on_data(offset, n)`` follows
    every write; ``checkpoint(upto)`` is called after the bytes up to ``upto`` are
    synced; ``bandwidth_take(n)`` waits for the caps and returns False once the
    transfer is cancelled. The caller syncs what was written past the last
    checkpoint (``result.offset``). With a ``wire`` the body is read from the
    socket straight into a buffer (``_wire``); a redirect, or no wire, goes
    through ``client``.
    """
    headers = {"Accept-Encoding": "identity"}
    if ranged:
        headers["Range"] = f"bytes={start}-{end - 1}"
        if validator is not None and (value := validator.if_range_value()):
            headers["If-Range"] = value
    position = start
    if abort.aborted():  # before it began: not even a connection
        return _aborted(abort, position)
    syncer = _Syncer(fd, checkpoint)
    try:
        with _answer(client, wire, url, headers, abort) as answer:
            try:
                refused = _refusal(answer, start, end, validator)
                if refused is not None:
                    return refused
                if abort.reason is not None:
                    return _aborted(abort, position)
                asked = start
                for chunk in answer.chunks(chunk_size, fresh=hasher is not None):
                    data = chunk[: end - position]
                    if data:
                        _write_all(fd, data, position)
                        if hasher is not None:
                            hasher.feed(position, bytes(data))  # (no copy when bytes)
                        on_data(position, len(data))
                        position += len(data)
                    if position - asked >= checkpoint_bytes:
                        # Synced and reported by the syncer while we read on.
                        syncer.sync_upto(position)
                        asked = position
                    if position >= end:
                        syncer.finish()
                        os.fdatasync(fd)
                        checkpoint(position)
                        return FetchResult(FetchOutcome.DONE, position)
                    if abort.reason is not None or not bandwidth_take(len(data)):
                        return _aborted(abort, position)
            finally:
                abort.detach()
                syncer.finish()  # (again is a no-op) nothing reports after we return
    except OSError as exc:  # the local file (httpx's own errors are not OSError)
        return FetchResult(FetchOutcome.WRITE_ERROR, position, exc.strerror or str(exc),
                           errno=exc.errno)
    except httpx.HTTPError as exc:
        return _short(abort, position, _describe(exc))
    return _short(abort, position, "the body ended early")


class _Syncer:
    """Syncs a fetch's file and reports checkpoints on a thread of its own, so the
    reader goes on while the disk catches up; requests coalesce (the latest
    offset wins). ``finish`` waits for the last one and raises its write error."""

    def __init__(self, fd: int, checkpoint: Callable[[int], None]) -> None:
        self._fd = fd
        self._checkpoint = checkpoint
        self._cond = threading.Condition()
        self._wanted: int | None = None
        self._closing = False
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None

    def sync_upto(self, offset: int) -> None:
        """Sync, then report, everything written before ``offset``."""
        with self._cond:
            if self._error is not None:
                raise self._error
            self._wanted = offset
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sync", daemon=True)
                self._thread.start()
            self._cond.notify()

    def finish(self) -> None:
        """Wait for the pending sync; raise the error one of them met."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._cond:
            error, self._error = self._error, None
            self._thread = None
            self._closing = False
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._closing:
                    self._cond.wait()
                wanted, self._wanted = self._wanted, None
                if wanted is None:
                    return
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                with self._cond:
                    self._error = exc
                return
            self._checkpoint(wanted)


class _Answer(Protocol):
    """What a fetch reads: an httpx response, or a ``WireAnswer``."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...

    def chunks(self, size: int | None, *, fresh: bool) -> Iterator[memoryview | bytes]:
        """The body in pieces."""

    def excerpt(self, limit: int) -> bytes:
        """The first bytes of the body."""


class _HttpxAnswer:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        self.headers = response.headers

    def chunks(self, size: int | None, *, fresh: bool) -> Iterator[memoryview | bytes]:
        yield from self.response.iter_raw(size)

    def excerpt(self, limit: int) -> bytes:
        taken = bytearray()
        with contextlib.suppress(httpx.HTTPError):
            for chunk in self.response.iter_raw(limit):
                taken += chunk
                if len(taken) >= limit:
                    break
        return bytes(taken[:limit])


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@contextlib.contextmanager
def _answer(
    client: httpx.Client, wire: Wire | None, url: str, headers: dict[str, str], abort: Abort
) -> Iterator[_Answer]:
    """The answer to ``GET url``: by the wire when there is one and it is not sent
    elsewhere, else by httpx (which follows redirects)."""
    if wire is not None and wire.handles(url):
        with wire.get(url, headers, abort.attach_socket) as answer:
            if answer.status_code not in _REDIRECTS:
                yield answer
                return
    with client.stream("GET", url, headers=headers) as response:
        abort.attach(response)
        yield _HttpxAnswer(response)


def _refusal(
    response: _Answer, start: int, end: int, validator: Validator | None
) -> FetchResult | None:
    """The answer that must not be written, as a result; None when it can be."""
    status = response.status_code
    if status == 206:
        span = _content_range(response.headers.get("content-range"))
        if span is None or span[0] != start:
            return FetchResult(FetchOutcome.RESTART_FILE, start, "range_mismatch", status)
        size = span[2] if span[2] is not None else (validator.size if validator else end)
        seen = Validator.from_headers(response.headers, size)
        if validator is not None and not validator.matches(seen):
            return FetchResult(FetchOutcome.RESTART_FILE, start, "validator_changed", status,
                               seen)
        return None
    if status == 200:
        length = _content_length(response)
        if validator is not None:
            seen = Validator.from_headers(response.headers, length if length is not None
                                          else validator.size)
            if not validator.matches(seen):
                return FetchResult(FetchOutcome.RESTART_FILE, start, "validator_changed",
                                   status, seen)
        if start > 0:
            return FetchResult(FetchOutcome.RESTART_FILE, start, "range_ignored", status)
        return None
    if status == 416:
        return FetchResult(FetchOutcome.RESTART_FILE, start, "range_not_satisfiable", status)
    outcome = FetchOutcome.LINK_EXPIRED if status in _LINK_GONE else FetchOutcome.HTTP_ERROR
    return FetchResult(outcome, start, _excerpt(response), status)


def _short(abort: Abort, position: int, reason: str) -> FetchResult:
    """The transfer ended before its range did: aborted, or cut."""
    if abort.reason is not None:
        return _aborted(abort, position)
    return FetchResult(FetchOutcome.CUT, position, reason)


def _aborted(abort: Abort, position: int) -> FetchResult:
    if abort.reason is AbortReason.STALL:
        return FetchResult(FetchOutcome.STALLED, position, "below the speed floor")
    return FetchResult(FetchOutcome.CANCELLED, position, "aborted")


def _write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """``(first, last, size)`` of a Content-Range header (None where it says ``*``)."""
    if not value:
        return None
    match = _CONTENT_RANGE.match(value)
    if match is None:
        return None
    first, last, size = match.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(size) if size != "*" else None,
    )


def _content_length(response: _Answer | httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _excerpt(response: _Answer) -> str:
    """The first bytes of an error body, for the log (never the whole body)."""
    taken = response.excerpt(_EXCERPT)
    text = mask_url_secrets(taken[:_EXCERPT].decode("utf-8", "replace").strip())
    return f"{response.status_code}: {text}" if text else str(response.status_code)


def _describe(exc: BaseException) -> str:
    """An HTTP error for the log, with any credential in a URL masked."""
    return mask_url_secrets(f"{type(exc).__name__}: {exc}")
