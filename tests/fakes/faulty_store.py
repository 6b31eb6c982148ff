"""A JobStore wrapper that fails chosen calls on demand (a dropped connection, a locked file)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from persistence import JobStore
from providers import StoreError

#: Methods that write; every other public method reads.
WRITES = frozenset(
    {
        "save",
        "save_batch",
        "delete",
        "delete_terminal",
        "delete_finished",
        "save_provider_state",
        "replace_pending_cleanups",
    }
)


class FaultyStore:
    """Delegates to a real ``JobStore``; ``fail_next(method, count)`` makes calls raise.

    ``method`` is a store method name, or ``"read"`` / ``"write"`` for any
    read or write. Calls are counted per method in ``calls``; faults raised in
    ``raised``. Thread-safe: the supervisor calls it from its thread, tests from theirs.
    """

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._faults: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.raised: Counter[str] = Counter()
        #: Only calls from threads whose name starts with this fail (None: any thread).
        self.only_thread: str | None = None

    def fail_next(self, method: str, count: int = 1) -> None:
        """Make the next ``count`` calls of ``method`` (or any read / write) raise StoreError."""
        with self._lock:
            self._faults[method] += count

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target) or name.startswith("_"):
            return target
        kind = "write" if name in WRITES else "read"

        def call(*args: Any, **kwargs: Any) -> Any:
            self._maybe_fail(name, kind)
            return target(*args, **kwargs)

        return call

    def _maybe_fail(self, name: str, kind: str) -> None:
        with self._lock:
            self.calls[name] += 1
            name_now = threading.current_thread().name
            if self.only_thread is not None and not name_now.startswith(self.only_thread):
                return
            for key in (name, kind):
                if self._faults[key] > 0:
                    self._faults[key] -= 1
                    self.raised[name] += 1
                    raise StoreError(f"injected store failure in {name}")
