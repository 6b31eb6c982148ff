"""Files served over loopback HTTP the way download servers serve them.

``FileServer`` answers GET and HEAD for ``ServedFile``s with ``Accept-Ranges``,
``ETag`` and ``Last-Modified``; single ``Range`` requests get ``206`` with
``Content-Range``, unsatisfiable ones ``416``; an ``If-Range`` that names
another version gets the whole file (RFC 9110). Bodies are streamed in
bounded chunks from a deterministic generator, so a file of any size costs no
memory. ``FileKnobs`` make it misbehave the way real servers do: ignore
ranges, cut connections, stall, throttle, and links expire.

The mock provider serves its files from one of these (started when first
needed); the fake Real-Debrid and TorBox servers use the same answers.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import hashlib
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

import attrs

__all__ = [
    "FileKnobs",
    "FileServer",
    "ServedFile",
    "ServedRequest",
    "content_md5",
    "deterministic_bytes",
    "pattern_bytes",
    "send_file",
]

_BLOCK = 1 << 16
_CHUNK = 1 << 16
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
#: How long a stalled response holds its connection at most (real seconds).
_STALL_BOUND = 30.0
_EXPIRED_BODY = b'{"success": false, "error": "Invalid Presigned Token", "detail": ' \
    b'"Invalid Presigned Token"}'


@functools.lru_cache(maxsize=64)
def _base_block(seed: str) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < _BLOCK:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:_BLOCK])


@functools.lru_cache(maxsize=4096)
def _block(seed: str, index: int) -> bytes:
    base = _base_block(seed)
    shift = int.from_bytes(hashlib.sha256(f"{seed}/{index}".encode()).digest()[:4], "big")
    shift %= _BLOCK
    return base[shift:] + base[:shift]


def deterministic_bytes(seed: str, offset: int, length: int) -> bytes:
    """The bytes a fake serves for a file of ``seed`` (its first version)."""
    return pattern_bytes(f"{seed}#0", offset, length)


def pattern_bytes(seed: str, offset: int, length: int) -> bytes:
    """``length`` bytes of the stream ``seed`` from ``offset``: reproducible, cheap at
    any offset, and different at every 64 KiB block (a misplaced range shows)."""
    if length <= 0:
        return b""
    index, skip = divmod(offset, _BLOCK)
    parts = []
    remaining = length
    while remaining > 0:
        block = _block(seed, index)
        piece = block[skip : skip + remaining]
        parts.append(piece)
        remaining -= len(piece)
        index, skip = index + 1, 0
    return b"".join(parts)


@attrs.define(eq=False)
class ServedFile:
    """A file with deterministic content; bumping ``version`` makes it another file
    (other bytes, another ETag and date), as when a server's copy changes."""

    name: str
    size: int
    seed: str = "file"
    version: int = 0
    modified_at: float = 1_700_000_000.0
    _md5: dict[int, str] = attrs.field(factory=dict, repr=False)

    @property
    def etag(self) -> str:
        """A strong ETag of this version."""
        digest = hashlib.sha1(f"{self.seed}:{self.size}:{self.version}".encode(),
                              usedforsecurity=False).hexdigest()
        return f'"{digest[:20]}"'

    @property
    def last_modified(self) -> str:
        """The HTTP date of this version."""
        return email.utils.formatdate(self.modified_at + self.version * 60, usegmt=True)

    def content(self, offset: int = 0, length: int | None = None) -> bytes:
        """The bytes at ``offset`` (to the end of the file unless ``length`` says less)."""
        length = self.size - offset if length is None else length
        length = max(0, min(length, self.size - offset))
        return pattern_bytes(f"{self.seed}#{self.version}", offset, length)

    def bump(self) -> None:
        """The file changes on the server: other bytes, another ETag and date."""
        self.version += 1

    def chunks(self, start: int, end: int, size: int = _CHUNK) -> Iterator[bytes]:
        """The bytes ``[start, end)`` in pieces of at most ``size``."""
        for offset in range(start, end, size):
            yield self.content(offset, min(size, end - offset))

    @property
    def md5(self) -> str:
        """The md5 of the whole content of this version (computed once)."""
        cached = self._md5.get(self.version)
        if cached is None:
            digest = hashlib.md5(usedforsecurity=False)
            for chunk in self.chunks(0, self.size, 1 << 20):
                digest.update(chunk)
            cached = self._md5[self.version] = digest.hexdigest()
        return cached


@functools.lru_cache(maxsize=1024)
def content_md5(seed: str, size: int) -> str:
    """The md5 of ``ServedFile(..., size, seed)``'s first version (computed once)."""
    return ServedFile("", size, seed).md5


@attrs.define
class FileKnobs:
    """How a ``FileServer`` misbehaves (read at the start of each response)."""

    #: Answer 200 with the whole body to a ranged request (and offer no ranges).
    ignore_range: bool = False
    #: Close each response's connection after this many body bytes.
    cut_after: int | None = None
    #: Send nothing past this offset of the file: a response that reaches it holds
    #: its connection, silent, until ``release_stalls`` (which cuts it).
    stall_after: int | None = None
    #: Pace each response at this many bytes per second (real time).
    throttle_bps: float | None = None
    #: Answer the next ranged request that starts at this offset or later with 416.
    answer_416_at: int | None = None


@attrs.frozen
class ServedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    range: str | None
    if_range: str | None
    status: int


@attrs.define
class _Entry:
    file: ServedFile
    expired: bool = False
    served: int = 0
    requests: int = 0


def _wanted_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """``(start, end)`` half-open, None for no usable range, False if unsatisfiable."""
    if not header or "," in header:
        return None  # none, or several: the whole file (allowed by RFC 9110)
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size
    start = int(first)
    if start >= size:
        return False
    if last and int(last) < start:
        return None  # an invalid range is ignored (RFC 9110 14.2): the whole file
    end = min(size, int(last) + 1) if last else size
    return start, end


def send_file(
    handler: BaseHTTPRequestHandler,
    file: ServedFile,
    knobs: FileKnobs,
    *,
    on_bytes: Any = None,
    stalls: threading.Condition | None = None,
    stall_generation: Any = None,
    headers: dict[str, str] | None = None,
) -> int:
    """Answer ``handler``'s GET or HEAD with ``file``; returns the status sent.

    ``on_bytes(n)`` counts the body bytes written. A stalled response waits on
    ``stalls`` until ``stall_generation()`` changes, then cuts the connection.
    ``headers`` are sent as well (a ``Content-Disposition``).
    """
    size = file.size
    header = handler.headers.get("Range")
    if_range = handler.headers.get("If-Range")
    if if_range is not None and if_range.strip() not in (file.etag, file.last_modified):
        header = None  # another version: the whole of this one
    if knobs.ignore_range:
        header = None
    wanted: tuple[int, int] | bool | None = _wanted_range(header, size)
    at = knobs.answer_416_at
    if isinstance(wanted, tuple) and at is not None and wanted[0] >= at:
        knobs.answer_416_at = None
        wanted = False
    common = {
        "ETag": file.etag,
        "Last-Modified": file.last_modified,
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "none" if knobs.ignore_range else "bytes",
        **(headers or {}),
    }
    if wanted is False:
        handler.send_response(416)
        for key, value in common.items():
            handler.send_header(key, value)
        handler.send_header("Content-Range", f"bytes */{size}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return 416
    if isinstance(wanted, tuple):
        start, end = wanted
        status = 206
    else:
        start, end, status = 0, size, 200
    handler.send_response(status)
    for key, value in common.items():
        handler.send_header(key, value)
    if status == 206:
        handler.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
    handler.send_header("Content-Length", str(end - start))
    handler.end_headers()
    if handler.command == "HEAD":
        return status
    _stream(handler, file, start, end, knobs, on_bytes, stalls, stall_generation)
    return status


def _stream(
    handler: BaseHTTPRequestHandler,
    file: ServedFile,
    start: int,
    end: int,
    knobs: FileKnobs,
    on_bytes: Any,
    stalls: threading.Condition | None,
    stall_generation: Any,
) -> None:
    # Taken before a byte goes out: a release that comes once the client has the
    # bytes (and may come before this answer has reached its wait) still counts.
    generation = stall_generation() if stall_generation is not None else None
    cut, rate = knobs.cut_after, knobs.throttle_bps
    stall = None if knobs.stall_after is None else max(0, knobs.stall_after - start)
    limit = min(x for x in (cut, stall, end - start) if x is not None)
    sent = 0
    began = time.monotonic()
    try:
        for chunk in file.chunks(start, start + limit):
            if rate:  # a chunk goes out when the pace allows all of it
                ahead = (sent + len(chunk)) / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
            if on_bytes is not None:  # counted first: a client that has it sees it counted
                on_bytes(len(chunk))
            handler.wfile.write(chunk)
            sent += len(chunk)
        handler.wfile.flush()
        if sent < end - start and stall is not None and sent >= stall and stalls is not None:
            deadline = time.monotonic() + _STALL_BOUND
            with stalls:
                while stall_generation() == generation and time.monotonic() < deadline:
                    stalls.wait(deadline - time.monotonic())
    except OSError:
        pass  # the client went away
    if sent < end - start:
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def setup(self) -> None:
        """Remember the connection, so that ``stop`` can close it (keep-alive)."""
        super().setup()
        self.server.owner.opened(self.connection)

    def finish(self) -> None:
        """Forget the connection."""
        self.server.owner.closed(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _answer(self) -> None:
        owner = self.server.owner
        path = urlsplit(self.path).path
        parts = path.split("/")
        entry = owner.entry(parts[2]) if len(parts) >= 3 and parts[1] == "f" else None
        if entry is None:
            self._plain(404, b"not found")
            status = 404
        elif entry.expired:
            owner.answered(entry)
            self._plain(403, _EXPIRED_BODY)
            status = 403
        else:
            owner.answered(entry)
            status = send_file(self, entry.file, owner.knobs,
                               on_bytes=functools.partial(owner.count, entry),
                               stalls=owner.stalls, stall_generation=owner.stall_generation)
        owner.log(ServedRequest(self.command, path, self.headers.get("Range"),
                                self.headers.get("If-Range"), status))

    def _plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _answer  # noqa: N815 - http.server's names


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is normal here: no traceback."""


class FileServer:
    """Serves ``ServedFile``s on 127.0.0.1 (a free port), started on first use."""

    def __init__(self) -> None:
        self.knobs = FileKnobs()
        self.requests: list[ServedRequest] = []
        self.stalls = threading.Condition()
        self._generation = 0
        self._lock = threading.Lock()
        #: Notified at each logged request (``wait_logged``).
        self._logged = threading.Condition(self._lock)
        self._logged_total = 0
        self._entries: dict[str, _Entry] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # -- life ----------------------------------------------------------------
    def start(self) -> FileServer:
        """Listen (idempotent)."""
        with self._lock:
            if self._server is not None:
                return self
            server = _Server(("127.0.0.1", 0), _Handler)
            server.owner = self
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, name="file-server",
                                            kwargs={"poll_interval": 0.1}, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, end stalled answers, and join the thread."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
        self.release_stalls()
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # kept-alive ones would go on being served
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(5)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (the server starts if it has not yet)."""
        return f"http://127.0.0.1:{self.port}"

    def request_count(self, what: str | ServedFile) -> int:
        """Requests answered for a URL, or for a file over all its URLs."""
        with self._lock:
            if isinstance(what, ServedFile):
                return sum(e.requests for e in self._entries.values() if e.file is what)
            entry = self._entries.get(_token(what))
            return entry.requests if entry is not None else 0

    @property
    def running(self) -> bool:
        """True while it listens."""
        return self._server is not None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port (the server starts if it has not yet)."""
        self.start()
        assert self._server is not None
        return int(self._server.server_address[1])

    # -- files ---------------------------------------------------------------
    def add(self, file: ServedFile) -> str:
        """Serve ``file`` at a new URL of its own, which is returned."""
        port = self.port
        token = secrets.token_urlsafe(12)
        with self._lock:
            self._entries[token] = _Entry(file)
        name = quote(file.name.replace("\\", "/").rsplit("/", 1)[-1] or "file")
        return f"http://127.0.0.1:{port}/f/{token}/{name}"

    def expire(self, url: str) -> None:
        """From now on ``url`` answers 403 ``Invalid Presigned Token``."""
        self._entry_of(url).expired = True

    def remove(self, url: str) -> None:
        """Forget ``url`` (it answers 404 from now on)."""
        with self._lock:
            self._entries.pop(_token(url), None)

    def file(self, url: str) -> ServedFile:
        """The file ``url`` serves."""
        return self._entry_of(url).file

    def served_bytes(self, what: str | ServedFile) -> int:
        """Body bytes sent for a URL, or for a file over all its URLs."""
        with self._lock:
            if isinstance(what, ServedFile):
                return sum(e.served for e in self._entries.values() if e.file is what)
            entry = self._entries.get(_token(what))
            return entry.served if entry is not None else 0

    def release_stalls(self) -> None:
        """End every stalled answer now (its connection is cut)."""
        with self.stalls:
            self._generation += 1
            self.stalls.notify_all()

    # -- for the handler ---------------------------------------------------------
    def entry(self, token: str) -> _Entry | None:
        with self._lock:
            return self._entries.get(token)

    def count(self, entry: _Entry, n: int) -> None:
        with self._lock:
            entry.served += n

    def log(self, request: ServedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            if len(self.requests) > 10_000:
                del self.requests[:5_000]
            self._logged_total += 1
            self._logged.notify_all()

    def wait_logged(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` requests in all have been logged. A request is logged
        once its answer is sent, so a client can see the answer first."""
        with self._logged:
            return self._logged.wait_for(lambda: self._logged_total >= count, timeout)

    def answered(self, entry: _Entry) -> None:
        with self._lock:
            entry.requests += 1

    def opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def stall_generation(self) -> int:
        return self._generation

    def _entry_of(self, url: str) -> _Entry:
        entry = self.entry(_token(url))
        if entry is None:
            raise KeyError(f"url: not served here: {url!r}")
        return entry


def _token(url: str) -> str:
    parts = urlsplit(url).path.split("/")
    return parts[2] if len(parts) >= 3 else ""
