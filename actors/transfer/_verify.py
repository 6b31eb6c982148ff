"""Checking a finished file: its size always, its md5 when the provider gave one.

The md5 is computed while streaming (``Md5Progress.feed`` with the bytes each
connection writes); what lies on disk past the hashed prefix (another
connection's range, or what a resume found) is read back as soon as the prefix
reaches it, never the whole file again at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from pathlib import Path

import attrs

__all__ = ["Checked", "Md5Progress", "verify"]

_READ = 1 << 20
#: Bytes held in memory for the hashing at most; beyond that they are read back.
_HELD = 16 << 20
#: Seconds an idle hashing thread waits for more before it ends.
_IDLE = 2.0


class _Read:
    """A span already on disk, to be read back and hashed by the hashing thread."""

    __slots__ = ("end", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end


class Md5Progress:
    """An md5 of a file's first ``position`` bytes, fed in order (thread-safe).

    The hashing runs on a thread of its own: the workers that feed it go on
    reading their sockets while earlier bytes are hashed, on another core (md5
    would halve a transfer on the reader's thread). Bytes that extend the
    hashed prefix are queued as they are (at most ``_HELD`` bytes in
    memory); nobody ever waits for the hashing: bytes written past a gap, by
    another connection, or while the queue is full, are remembered as a span
    on disk; as soon as the prefix reaches
    a span, the span is claimed and the hashing thread reads it back from
    ``path`` while its connection goes on (its next bytes extend the prefix
    again). So with several connections the md5 follows the download instead of
    reading three quarters of the file back at the end; after a resume the
    ranges already on disk are declared with ``written`` and read the same way.
    The thread ends when it has been idle a while and starts again with the next
    piece; ``hexdigest`` waits for what is queued and raises a read error.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._position = 0  # bytes accepted: hashed, or queued to be
        #: Spans on disk past the prefix, not yet claimed: start -> end (and back).
        self._spans: dict[int, int] = {}
        self._ends: dict[int, int] = {}
        self._queue: queue.Queue[bytes | _Read] = queue.Queue()
        self._held = 0  # bytes queued in memory, not hashed yet
        self._error: OSError | None = None
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    @property
    def position(self) -> int:
        """How many bytes from the start have been accepted (hashed, queued or claimed)."""
        return self._position

    def feed(self, offset: int, data: bytes) -> None:
        """``data`` was written at ``offset`` in ``path``: hash what extends the prefix,
        remember the rest.

        Never waits: when ``_HELD`` bytes already wait in memory (the hashing is
        behind), these are remembered as a span on disk like any other and read
        back in turn."""
        if self._path is None:
            raise ValueError("Md5Progress.feed needs the file's path")
        if not data:
            return
        with self._lock:
            end = offset + len(data)
            skip = self._position - offset
            if skip >= len(data):
                return  # nothing new
            new = len(data) - max(skip, 0)
            if skip < 0 or (self._held and self._held + new > _HELD):
                self._remember(offset, end)  # on disk: read back once reached
            else:
                piece = data if skip == 0 else bytes(memoryview(data)[skip:])
                self._position = end
                self._held += len(piece)
                self._put(piece)  # under the lock: pieces are queued in order
            self._claim()

    def written(self, start: int, end: int) -> None:
        """Bytes ``[start, end)`` are on disk in ``path``: hash them once the prefix gets there.

        Never waits (the download actor calls it on its own thread)."""
        if end <= start:
            return
        if self._path is None:
            raise ValueError("Md5Progress.written needs the file's path")
        with self._lock:
            self._remember(start, end)
            self._claim()

    def _remember(self, start: int, end: int) -> None:
        """Note ``[start, end)`` as on disk (under the lock). A span that ends where
        this one starts grows (one connection's bytes stay one span); spans may
        overlap, ``_claim`` reads each byte once all the same."""
        begun = self._ends.get(start)
        if begun is not None and self._spans.get(begun) == start:
            del self._ends[start]
            start = begun
        elif self._spans.get(start, start) >= end:
            return  # already known
        old = self._spans.get(start)
        if old is not None and self._ends.get(old) == start:
            del self._ends[old]
        self._spans[start] = end
        self._ends[end] = start

    def _claim(self) -> None:
        """Claim every remembered span the prefix now reaches (under the lock)."""
        while True:
            reached = [start for start in self._spans if start <= self._position]
            if not reached:
                return
            for start in reached:
                end = self._spans.pop(start)
                if self._ends.get(end) == start:
                    del self._ends[end]
                if end > self._position:
                    self._put(_Read(self._position, end))
                    self._position = end

    def _put(self, item: bytes | _Read) -> None:
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._hash, name="md5", daemon=True)
                self._thread.start()
            self._queue.put(item)

    def _hash(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=_IDLE)
            except queue.Empty:
                with self._thread_lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                if isinstance(item, _Read):
                    self._read_back(item)
                elif self._error is None:
                    self._md5.update(item)
            except Exception as exc:  # noqa: BLE001 - the thread must go on: join() waits
                self._error = OSError(f"hashing failed: {exc!r}")
            finally:
                if not isinstance(item, _Read):
                    with self._lock:
                        self._held -= len(item)
                self._queue.task_done()

    def _read_back(self, span: _Read) -> None:
        if self._error is not None:
            return
        if self._path is None:  # (written() refuses to run without one)
            self._error = OSError("nothing to read the bytes back from")
            return
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except OSError as exc:
            self._error = exc
            return
        try:
            position = span.start
            while position < span.end:
                data = os.pread(fd, min(_READ, span.end - position), position)
                if not data:
                    self._error = OSError(
                        f"{self._path}: ends at {position}, {span.end} bytes expected"
                    )
                    return
                self._md5.update(data)
                position += len(data)
        except OSError as exc:
            self._error = exc
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    def catch_up(self, path: Path, upto: int) -> None:
        """Read back from ``path`` whatever of ``[position, upto)`` was not fed, and wait."""
        if self._path is None:
            self._path = path
        self.written(0, upto)
        self._wait()

    def _wait(self) -> None:
        self._queue.join()
        if self._error is not None:
            raise self._error

    def hexdigest(self) -> str:
        """The md5 of the prefix accepted so far (waits for it; raises a read error)."""
        self._wait()
        return self._md5.hexdigest()


@attrs.frozen
class Checked:
    """What was checked: ``how`` is ``size`` or ``size+md5``."""

    size_ok: bool
    md5_ok: bool | None
    how: str


def verify(path: Path, size: int, md5: str | None, hasher: Md5Progress | None) -> Checked:
    """Check ``path`` has ``size`` bytes and, given ``md5``, that its md5 matches."""
    size_ok = os.stat(path).st_size == size
    if not md5:
        return Checked(size_ok, None, "size")
    progress = hasher if hasher is not None else Md5Progress()
    progress.catch_up(path, size)
    return Checked(size_ok, progress.hexdigest() == md5.strip().lower(), "size+md5")
