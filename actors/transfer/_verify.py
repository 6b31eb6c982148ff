"""Checking a finished file: its size always, its md5 when the provider gave one.

The md5 is computed while streaming (``Md5Progress.feed`` with the bytes written
at the hash's position); after a resume only the prefix already on disk is read
back (``catch_up``), never the whole file again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import attrs

__all__ = ["Checked", "Md5Progress", "verify"]

_READ = 1 << 20


class Md5Progress:
    """An md5 of a file's first ``position`` bytes, fed in order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._position = 0

    @property
    def position(self) -> int:
        """How many bytes from the start have been hashed."""
        return self._position

    def feed(self, offset: int, data: bytes) -> None:
        """Hash the part of ``data`` (written at ``offset``) that extends the prefix."""
        with self._lock:
            skip = self._position - offset
            if skip < 0 or skip >= len(data):
                return  # a gap before it (read back later), or nothing new
            self._md5.update(memoryview(data)[skip:])
            self._position = offset + len(data)

    def catch_up(self, path: Path, upto: int) -> None:
        """Read back from ``path`` whatever of ``[position, upto)`` was not fed."""
        with open(path, "rb") as handle:
            while True:
                with self._lock:
                    position = self._position
                if position >= upto:
                    return
                data = os.pread(handle.fileno(), min(_READ, upto - position), position)
                if not data:
                    raise OSError(f"{path}: ends at {position}, {upto} bytes expected")
                self.feed(position, data)

    def hexdigest(self) -> str:
        """The md5 of the prefix hashed so far."""
        with self._lock:
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
