"""A file-backed secret store: one JSON file, readable by the owner only."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

__all__ = ["FileSecretStore"]


class FileSecretStore:
    """Keeps secrets (OAuth tokens) in a 0600 JSON file, never in the job database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileSecretStore({str(self.path)!r})"

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)

    def get(self, key: str) -> str | None:
        """The secret under ``key``, or None."""
        with self._lock:
            return self._read().get(key)

    def set(self, key: str, value: str) -> None:
        """Store a secret."""
        with self._lock:
            data = self._read()
            data[key] = value
            self._write(data)

    def delete(self, key: str) -> None:
        """Forget a secret."""
        with self._lock:
            data = self._read()
            if data.pop(key, None) is not None:
                self._write(data)
