"""A file-backed secret store: one JSON file, readable by the owner only, parsed once.

The parsed content is kept in memory with the file's identity (``st_mtime_ns``,
``st_size``, ``st_ino``); each read stats the file and parses it again only when
that identity changed, so another process that rewrote the file (a login run
from the command line) is seen on the next read. Every write replaces the file
atomically (a fresh 0600 file beside it, fsynced, then renamed over it).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from providers._secrets import apply_changes

__all__ = ["FileSecretStore"]

_Stamp = tuple[int, int, int]


def _stamp(info: os.stat_result) -> _Stamp:
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _parse(raw: bytes) -> dict[str, str]:
    """The file's secrets; a file that is not a JSON object of strings counts as empty."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


class FileSecretStore:
    """Keeps secrets (OAuth tokens) in a 0600 JSON file, never in the job database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, str] = {}
        self._seen: _Stamp | None = None  # the identity of the file _data was read from

    def __repr__(self) -> str:
        return f"FileSecretStore({str(self.path)!r})"

    def _current(self) -> dict[str, str]:
        """The file's content, parsed again only if the file changed since the last read."""
        try:
            stamp = _stamp(os.stat(self.path))
        except OSError:  # absent (or unreadable): nothing stored
            self._data, self._seen = {}, None
            return self._data
        if stamp == self._seen:
            return self._data
        try:
            with open(self.path, "rb") as handle:
                # The identity of what was read, not of what the stat saw a moment before.
                stamp = _stamp(os.fstat(handle.fileno()))
                raw = handle.read()
        except OSError:
            self._data, self._seen = {}, None
            return self._data
        self._data, self._seen = _parse(raw), stamp
        return self._data

    def _write(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp makes a 0600 file with a name of its own: two writers never share it.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
                stamp = _stamp(os.fstat(handle.fileno()))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._data, self._seen = data, stamp

    def get(self, key: str) -> str | None:
        """The secret under ``key``, or None."""
        with self._lock:
            return self._current().get(key)

    def snapshot(self) -> Mapping[str, str]:
        """Every secret as it stands now (a copy)."""
        with self._lock:
            return dict(self._current())

    def set(self, key: str, value: str) -> None:
        """Store a secret."""
        self.update({key: value})

    def delete(self, key: str) -> None:
        """Forget a secret."""
        self.update({key: None})

    def update(self, changes: Mapping[str, str | None]) -> None:
        """Set or (with None) delete several keys in one atomic write (none if nothing changes)."""
        with self._lock:
            data = dict(self._current())
            apply_changes(data, changes)
            if data != self._data:
                self._write(data)
