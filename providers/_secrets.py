"""Where providers keep secrets they obtain at run time (OAuth tokens)."""

from __future__ import annotations

import threading
from typing import Protocol

__all__ = ["MemorySecretStore", "SecretStore"]


class SecretStore(Protocol):
    """A small key-value store for secrets, kept out of logs and the job database."""

    def get(self, key: str) -> str | None:
        """The secret stored under ``key``, or None."""

    def set(self, key: str, value: str) -> None:
        """Store (or replace) a secret."""

    def delete(self, key: str) -> None:
        """Forget a secret (no error when absent)."""


class MemorySecretStore:
    """A process-local ``SecretStore`` (the engine supplies a file-backed one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """See ``SecretStore.get``."""
        with self._lock:
            return self._data.get(key)

    def set(self, key: str, value: str) -> None:
        """See ``SecretStore.set``."""
        with self._lock:
            self._data[key] = value

    def delete(self, key: str) -> None:
        """See ``SecretStore.delete``."""
        with self._lock:
            self._data.pop(key, None)
