"""Where providers keep secrets they obtain at run time (OAuth tokens), and their view of them.

A store may offer two more methods than the protocol asks for: ``snapshot()``
(every key at once, as it stands now) and ``update(changes)`` (several keys in
one write, None deleting). The engine's and the memory store have both; for a
store without them ``SecretView`` falls back to one ``get`` per key and one
``set`` or ``delete`` per change.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Protocol, runtime_checkable

__all__ = ["MemorySecretStore", "SecretStore", "SecretView", "apply_changes", "digest", "write"]


class SecretStore(Protocol):
    """A small key-value store for secrets, kept out of logs and the job database."""

    def get(self, key: str) -> str | None:
        """The secret stored under ``key``, or None."""

    def set(self, key: str, value: str) -> None:
        """Store (or replace) a secret."""

    def delete(self, key: str) -> None:
        """Forget a secret (no error when absent)."""


@runtime_checkable
class _WholeStore(Protocol):
    """The optional methods: read everything at once, write several keys in one go."""

    def snapshot(self) -> Mapping[str, str]: ...

    def update(self, changes: Mapping[str, str | None]) -> None: ...


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

    def snapshot(self) -> Mapping[str, str]:
        """Every secret as it stands now (a copy)."""
        with self._lock:
            return dict(self._data)

    def update(self, changes: Mapping[str, str | None]) -> None:
        """Set or (with None) delete several keys at once."""
        with self._lock:
            apply_changes(self._data, changes)


def apply_changes(data: dict[str, str], changes: Mapping[str, str | None]) -> None:
    """Set each key of ``changes`` in ``data``, or delete it where the value is None or empty."""
    for key, value in changes.items():
        if value:
            data[key] = value
        else:
            data.pop(key, None)


def write(store: SecretStore, changes: Mapping[str, str | None]) -> None:
    """Set or (with None) delete several keys of ``store``, in one write where it can."""
    if isinstance(store, _WholeStore):
        store.update(changes)
        return
    for key, value in changes.items():
        if value:
            store.set(key, value)
        else:
            store.delete(key)


def digest(value: str) -> str:
    """A one-way fingerprint of a secret, to recognise it again without keeping it."""
    return hashlib.sha256(value.encode()).hexdigest()


class SecretView:
    """One provider's keys in a store, read once and kept in memory until ``sync``.

    A provider calls ``sync`` once per operation (for the engine's file store
    that is one ``stat`` while the file is unchanged); reads in between come from
    memory, so an operation sees one consistent set of credentials. Writes go
    through to the store at once. ``generation`` grows each time the values
    change, whoever changed them: the provider's own writes, or the store's
    content as read by ``sync`` (another process logging in rewrote the file).

    Slotted, with a repr that shows no value: the secrets it holds never appear
    in a log line, a traceback's locals dump or an attribute walk.
    """

    __slots__ = ("_keys", "_lock", "_store", "_values", "generation")

    def __init__(self, store: Callable[[], SecretStore], keys: Collection[str]) -> None:
        self._store = store
        self._keys = tuple(keys)
        self._lock = threading.Lock()
        self._values: dict[str, str] | None = None
        self.generation = 0

    def __repr__(self) -> str:
        return f"<SecretView of {len(self._keys)} keys>"

    def sync(self) -> None:
        """Read the store again (cheap when it has not changed)."""
        self._take(self._read(self._store()))

    def forget(self) -> None:
        """Drop what was read: the next use reads the store again (it may be another one)."""
        with self._lock:
            self._values = None

    def get(self, key: str) -> str | None:
        """The value of ``key`` as last read (the store is read on the first use)."""
        if self._values is None:
            self.sync()
        return (self._values or {}).get(key)

    def update(self, changes: Mapping[str, str | None]) -> None:
        """Write ``changes`` (None deletes) to the store in one go, and remember them."""
        unknown = set(changes) - set(self._keys)
        if unknown:
            raise KeyError(f"not a key of this view: {sorted(unknown)}")
        store = self._store()
        write(store, changes)
        self._take(self._read(store))  # the store merged the changes into what it holds

    def _take(self, values: dict[str, str]) -> None:
        with self._lock:
            if values != self._values:
                self._values = values
                self.generation += 1

    def read(self, store: SecretStore) -> dict[str, str]:
        """This view's keys in ``store`` (any store, not only its own), the empty ones left out."""
        return self._read(store)

    def _read(self, store: SecretStore) -> dict[str, str]:
        if isinstance(store, _WholeStore):
            data = store.snapshot()
            return {key: data[key] for key in self._keys if data.get(key)}
        values = {key: store.get(key) for key in self._keys}
        return {key: value for key, value in values.items() if value}
