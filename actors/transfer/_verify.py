"""Checking a finished file: its size always, its md5 when the provider gave one.

The md5 is computed while streaming (``Md5Progress.feed`` with the bytes written
at the hash's position); after a resume only the prefix already on disk is read
back (``catch_up``), never the whole file again.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from pathlib import Path

import attrs

__all__ = ["Checked", "Md5Progress", "verify"]

_READ = 1 << 18
#: Pieces waiting to be hashed at most (a few MiB): the feeder waits beyond that.
_QUEUED = 16
#: Seconds an idle hashing thread waits for more before it ends.
_IDLE = 2.0


class Md5Progress:
    """An md5 of a file's first ``position`` bytes, fed in order (thread-safe).

    The hashing runs on a thread of its own behind a bounded queue (``_QUEUED``
    pieces): the worker that feeds it goes on reading the socket while the
    previous chunk is hashed, on another core (md5 would halve a transfer on
    the reader's thread). The thread ends when it has been idle a while and
    starts again with the next piece; ``hexdigest`` waits for what is queued.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._position = 0  # bytes accepted: hashed, or queued to be
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=_QUEUED)
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    @property
    def position(self) -> int:
        """How many bytes from the start have been fed (hashed or queued)."""
        return self._position

    def feed(self, offset: int, data: bytes) -> None:
        """Hash the part of ``data`` (written at ``offset``) that extends the prefix."""
        with self._lock:
            skip = self._position - offset
            if skip < 0 or skip >= len(data):
                return  # a gap before it (read back later), or nothing new
            self._position = offset + len(data)
            piece = data if skip == 0 else bytes(memoryview(data)[skip:])
            self._enqueue(piece)  # under the lock: pieces are queued in order

    def _enqueue(self, piece: bytes) -> None:
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._hash, name="md5", daemon=True)
                self._thread.start()
            self._queue.put(piece)

    def _hash(self) -> None:
        while True:
            try:
                piece = self._queue.get(timeout=_IDLE)
            except queue.Empty:
                with self._thread_lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            self._md5.update(piece)
            self._queue.task_done()

    def catch_up(self, path: Path, upto: int) -> None:
        """Read back from ``path`` whatever of ``[position, upto)`` was not fed."""
        with open(path, "rb") as handle:
            while True:
                position = self._position
                if position >= upto:
                    return
                data = os.pread(handle.fileno(), min(_READ, upto - position), position)
                if not data:
                    raise OSError(f"{path}: ends at {position}, {upto} bytes expected")
                self.feed(position, data)

    def hexdigest(self) -> str:
        """The md5 of the prefix fed so far (waits for the queued pieces)."""
        self._queue.join()
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
