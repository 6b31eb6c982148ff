"""The mock provider's "remote side": its items, one SQLite row each.

With a path the rows live in a SQLite file and outlive the process, as a real
service's items do: every change is committed before the call that made it
returns (WAL, ``synchronous=NORMAL``: a crash of the engine right after cannot
make the remote side forget it; a power cut may roll back the last commits, as
for the job store). Without a path the same tables live in an in-memory database.

Nothing here reads every row, except ``counts_by_key`` and ``all_items`` (for
tests). An item is found by its id (the primary key), by its source key among
the live items (a partial index), and by ``ends``, the clock time it stops being
active: when it completes or fails, or when it was cancelled if that came first.
Two partial indexes on it, one for the items not cancelled and one for the
cancelled, serve both counting the active items (live ``ends`` still ahead, so
O(active) whatever the number of cancelled items) and forgetting the terminal
ones (``ends`` older than the retention, oldest first). ``ends`` depends on
``step_seconds``: a file opened with another step has the ends of its live
items worked out again, once.

An older mock kept its items in one JSON file; such a file is migrated in place
(the JSON is kept beside it as ``<name>.bak``).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import shutil
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from providers._status import JobStatus

__all__ = ["MockItem", "MockRemote", "end_time"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    key TEXT NOT NULL,
    hash TEXT,
    url TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    fail_at TEXT,
    fail_code TEXT,
    cancelled INTEGER NOT NULL DEFAULT 0,
    ends REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_live_key ON items (key) WHERE cancelled = 0;
CREATE INDEX IF NOT EXISTS items_live_ends ON items (ends) WHERE cancelled = 0;
CREATE INDEX IF NOT EXISTS items_cancelled_ends ON items (ends) WHERE cancelled = 1;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = "id, key, hash, url, name, kind, created, fail_at, fail_code, cancelled, ends"
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Ids per ``IN (...)`` query: well under SQLite's oldest limit of 999 variables.
_CHUNK = 500
#: Seconds a second process sharing the file may hold the write lock.
_BUSY_TIMEOUT = 10.0


class MockItem(NamedTuple):
    """One remote item of the mock, as stored."""

    id: str
    key: str  #: info-hash, or URL: what ``find_existing`` looks for
    hash: str | None
    url: str | None
    name: str
    kind: str
    created: float  #: clock time (``context.clock.time()``) of the submission
    fail_at: str | None  #: the status at which an injected remote failure strikes
    fail_code: str | None
    cancelled: bool
    ends: float  #: clock time it stops being active (see the module docstring)


def end_time(created: float, fail_at: str | None, step_seconds: float) -> float:
    """When an item made at ``created`` stops being active: it fails, or completes after 3 steps."""
    steps = 3
    if fail_at is not None:
        steps = min(3, JobStatus(fail_at).rank)
    return created + steps * step_seconds


def _item(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> MockItem:
    values = list(row)
    values[9] = bool(values[9])
    return MockItem(*values)


class MockRemote:
    """The table of a mock's remote items (see the module docstring).

    Not thread-safe by itself: the provider holds its lock around every call. The
    connection may be used from different threads in turn (the engine restarts the
    provider's actor on a new thread), hence ``check_same_thread=False``.
    """

    def __init__(self, path: str | os.PathLike[str] | None, step_seconds: float) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self.step_seconds = step_seconds
        self._conn: sqlite3.Connection | None = None
        self._depth = 0
        self._connection()  # a bad path or a foreign file fails now, not on first use

    # -- the connection ------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if _holds_json(self.path):
                _migrate_json(self.path, self.step_seconds)
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as error:
                conn.close()
                raise ValueError(
                    f"state_file: {str(self.path)!r} is not a mock state file ({error})"
                ) from error
        conn.executescript(_SCHEMA)
        self._check_step(conn)
        return conn

    def _check_step(self, conn: sqlite3.Connection) -> None:
        """Work out the ends of live items again when the file was made with another step."""
        row = conn.execute("SELECT value FROM meta WHERE name = 'step_seconds'").fetchone()
        stored = float(row[0]) if row is not None else None
        if stored == self.step_seconds:
            return
        with self._writing(conn):
            if stored is not None:
                live = conn.execute(
                    "SELECT seq, created, fail_at FROM items WHERE cancelled = 0"
                ).fetchall()
                conn.executemany(
                    "UPDATE items SET ends = ? WHERE seq = ?",
                    [(end_time(c, f, self.step_seconds), seq) for seq, c, f in live],
                )
            conn.execute(
                "INSERT OR REPLACE INTO meta (name, value) VALUES ('step_seconds', ?)",
                (repr(self.step_seconds),),
            )

    def close(self) -> None:
        """Close a file's connection (reopened on next use); an in-memory table stays."""
        if self.path is not None and self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """One transaction, committed on the way out (nested uses join the outer one)."""
        with self._writing(self._connection()):
            yield

    @contextlib.contextmanager
    def _writing(self, conn: sqlite3.Connection) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            conn.execute("ROLLBACK")
            raise
        self._depth = 0
        conn.execute("COMMIT")

    # -- reads ---------------------------------------------------------------
    def _items(self, where: str, params: Sequence[Any] = ()) -> Iterator[MockItem]:
        """The items of ``SELECT ... FROM items <where>``, read as the cursor goes."""
        cursor = self._connection().cursor()
        cursor.row_factory = _item
        try:
            yield from cursor.execute(f"SELECT {_COLUMNS} FROM items {where}", params)  # noqa: S608
        finally:
            cursor.close()

    def get(self, remote_id: str) -> MockItem | None:
        """The item with this id (cancelled or not), or None."""
        return next(self._items("WHERE id = ?", (remote_id,)), None)

    def get_many(self, remote_ids: Sequence[str]) -> dict[str, MockItem]:
        """The items among ``remote_ids`` that exist, by id."""
        found: dict[str, MockItem] = {}
        for at in range(0, len(remote_ids), _CHUNK):
            chunk = tuple(remote_ids[at : at + _CHUNK])
            marks = ",".join("?" * len(chunk))
            found.update((item.id, item) for item in self._items(f"WHERE id IN ({marks})", chunk))
        return found

    def live_with_key(self, key: str, exclude: Collection[str]) -> MockItem | None:
        """The oldest item not cancelled with this source key whose id is not in ``exclude``.

        Only that key's live items are read (the partial index), up to the first one
        not excluded.
        """
        live = self._items("WHERE key = ? AND cancelled = 0 ORDER BY seq", (key,))
        return next((item for item in live if item.id not in exclude), None)

    def count_ending_after(self, when: float) -> int:
        """How many items not cancelled have ``ends`` after ``when`` (an index range)."""
        row = (
            self._connection()
            .execute("SELECT COUNT(*) FROM items WHERE ends > ? AND cancelled = 0", (when,))
            .fetchone()
        )
        return int(row[0])

    def ending_between(self, after: float, until: float) -> list[MockItem]:
        """Items not cancelled with ``after < ends <= until`` (an index range)."""
        return list(self._items("WHERE ends > ? AND ends <= ? AND cancelled = 0", (after, until)))

    def earliest_end(self) -> float | None:
        """The smallest ``ends`` of any item (the next one to outlive the retention)."""
        conn = self._connection()
        ends = [
            conn.execute(f"SELECT MIN(ends) FROM items WHERE cancelled = {flag}").fetchone()[0]  # noqa: S608
            for flag in (0, 1)
        ]
        known = [float(end) for end in ends if end is not None]
        return min(known) if known else None

    def counts_by_key(self) -> Counter[str]:
        """How many items (cancelled ones too) exist per source key: reads every row."""
        conn = self._connection()
        rows = conn.execute("SELECT key, COUNT(*) FROM items GROUP BY key").fetchall()
        return Counter({key: count for key, count in rows})

    def all_items(self) -> list[MockItem]:
        """Every item, oldest first: reads every row (for tests)."""
        return list(self._items("ORDER BY seq"))

    # -- changes -------------------------------------------------------------
    def insert(self, item: MockItem) -> None:
        """Store a new item."""
        values = (*item[:9], int(item.cancelled), item.ends)
        self._connection().execute(
            f"INSERT INTO items ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            values,
        )

    def cancel(self, remote_id: str, now: float) -> float | None:
        """Mark the item cancelled at ``now``; its new ``ends``, or None when it is unknown
        or already cancelled. An item that had already ended keeps its end."""
        item = self.get(remote_id)
        if item is None or item.cancelled:
            return None
        ends = min(item.ends, now)
        self._connection().execute(
            "UPDATE items SET cancelled = 1, ends = ? WHERE id = ?", (ends, remote_id)
        )
        return ends

    def prune(self, ended_by: float, batch: int) -> int:
        """Forget at most ``batch`` items that ended by ``ended_by``, oldest first; how many."""
        conn = self._connection()
        removed = 0
        for flag in (1, 0):
            cursor = conn.execute(
                "DELETE FROM items WHERE seq IN (SELECT seq FROM items "  # noqa: S608
                f"WHERE cancelled = {flag} AND ends <= ? ORDER BY ends LIMIT ?)",
                (ended_by, batch - removed),
            )
            removed += cursor.rowcount
            if removed >= batch:
                break
        return removed


def _holds_json(path: Path) -> bool:
    """True for a non-empty file that is not SQLite: the JSON of an older mock (or junk)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return False
    return bool(head) and head != _SQLITE_MAGIC


def _migrate_json(path: Path, step_seconds: float) -> None:
    """Turn an older mock's JSON state file into the SQLite one, in place.

    The JSON is copied to ``<name>.bak`` first and the new file replaces it
    in one rename, so a crash midway leaves the JSON where it was (and the
    migration runs again). A cancelled item's cancel time was not kept: its
    retention counts from when it would have ended.
    """
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        items = [
            MockItem(
                str(raw["id"]),
                str(raw["key"]),
                raw.get("hash"),
                raw.get("url"),
                str(raw["name"]),
                str(raw["kind"]),
                float(raw["created"]),
                raw.get("fail_at"),
                raw.get("fail_code"),
                bool(raw.get("cancelled")),
                end_time(float(raw["created"]), raw.get("fail_at"), step_seconds),
            )
            for raw in data.values()
        ]
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
        raise ValueError(
            f"state_file: {str(path)!r} is neither a mock state file (SQLite) nor the JSON "
            f"of an older mock ({type(error).__name__}: {error}); move it away or pick "
            "another path"
        ) from error
    backup = path.with_name(path.name + ".bak")
    shutil.copyfile(path, backup)
    staging = path.with_name(path.name + ".migrating")
    staging.unlink(missing_ok=True)
    conn = sqlite3.connect(staging, isolation_level=None)
    try:
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO items ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            [(*item[:9], int(item.cancelled), item.ends) for item in items],
        )
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('step_seconds', ?)", (repr(step_seconds),)
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    with staging.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(staging, path)


#: What ``MemoryRemote.writing`` gives: nothing to begin or commit.
_IN_PLACE: contextlib.nullcontext[None] = contextlib.nullcontext()


class MemoryRemote:
    """The same table as ``MockRemote``, in plain Python objects, for a mock without a file.

    SQLite in memory would do too, but every statement releases and takes back
    the GIL, and in an engine of many busy threads each take can wait a whole
    switch interval: a submission cost a few hundred microseconds where these
    dictionaries cost a few. Same answers as ``MockRemote`` (the mock's tests run
    against both).

    Items are kept as plain tuples and made ``MockItem``s when read: the garbage
    collector stops tracking a plain tuple of strings and numbers, never a tuple
    subclass, and every full collection of a long-running engine would otherwise
    walk each item the mock still remembers.
    """

    path: Path | None = None

    def __init__(self, step_seconds: float) -> None:
        self.step_seconds = step_seconds
        self._items: dict[str, tuple[Any, ...]] = {}  # as MockItem fields; ``seq`` order
        self._by_key: dict[str, dict[str, None]] = {}  # live (not cancelled), oldest first
        self._active: dict[str, float] = {}  # not cancelled and not ended when last counted
        self._ends: list[tuple[float, str]] = []  # heap of every item's end (stale ones skipped)

    def close(self) -> None:
        """Nothing to close."""

    def writing(self) -> contextlib.nullcontext[None]:
        """Changes are made in place: nothing to commit."""
        return _IN_PLACE

    def get(self, remote_id: str) -> MockItem | None:
        """The item with this id (cancelled or not), or None."""
        row = self._items.get(remote_id)
        return None if row is None else _as_item(row)

    def get_many(self, remote_ids: Sequence[str]) -> dict[str, MockItem]:
        """The items among ``remote_ids`` that exist, by id."""
        items = self._items
        return {rid: _as_item(items[rid]) for rid in remote_ids if rid in items}

    def live_with_key(self, key: str, exclude: Collection[str]) -> MockItem | None:
        """The oldest item not cancelled with this source key whose id is not in ``exclude``."""
        for remote_id in self._by_key.get(key, ()):
            if remote_id not in exclude:
                return _as_item(self._items[remote_id])
        return None

    def count_ending_after(self, when: float) -> int:
        """How many items not cancelled have ``ends`` after ``when``.

        Items that ended a minute before ``when`` leave the index for good (the
        clock only goes forward; ``ending_between`` asks about a hair around
        now), so the cost is that of the active items.
        """
        active = self._active
        for remote_id in [rid for rid, ends in active.items() if ends <= when - 60.0]:
            del active[remote_id]
        return sum(1 for ends in active.values() if ends > when)

    def ending_between(self, after: float, until: float) -> list[MockItem]:
        """Items not cancelled with ``after < ends <= until``."""
        items = self._items
        return [
            _as_item(items[rid])
            for rid, ends in self._active.items()
            if after < ends <= until and rid in items
        ]

    def earliest_end(self) -> float | None:
        """The smallest ``ends`` of any item (the next one to outlive the retention)."""
        heap = self._ends
        while heap and self._stale(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def counts_by_key(self) -> Counter[str]:
        """How many items (cancelled ones too) exist per source key."""
        return Counter(row[1] for row in self._items.values())  # the key

    def all_items(self) -> list[MockItem]:
        """Every item, oldest first."""
        return [_as_item(row) for row in self._items.values()]

    def insert(self, item: MockItem) -> None:
        """Store a new item."""
        self._items[item.id] = tuple(item)
        if not item.cancelled:
            self._by_key.setdefault(item.key, {})[item.id] = None
            self._active[item.id] = item.ends
        heapq.heappush(self._ends, (item.ends, item.id))

    def cancel(self, remote_id: str, now: float) -> float | None:
        """Mark the item cancelled at ``now``; its new ``ends``, or None when it is unknown
        or already cancelled. An item that had already ended keeps its end."""
        item = self.get(remote_id)
        if item is None or item.cancelled:
            return None
        ends = min(item.ends, now)
        self._items[remote_id] = tuple(item._replace(cancelled=True, ends=ends))
        live = self._by_key.get(item.key)
        if live is not None:
            live.pop(remote_id, None)
            if not live:
                del self._by_key[item.key]
        self._active.pop(remote_id, None)
        heapq.heappush(self._ends, (ends, remote_id))
        return ends

    def prune(self, ended_by: float, batch: int) -> int:
        """Forget at most ``batch`` items that ended by ``ended_by``, oldest first; how many."""
        heap = self._ends
        removed = 0
        while heap and removed < batch and heap[0][0] <= ended_by:
            entry = heapq.heappop(heap)
            if self._stale(entry):
                continue
            item = _as_item(self._items.pop(entry[1]))
            live = self._by_key.get(item.key)
            if live is not None:
                live.pop(item.id, None)
                if not live:
                    del self._by_key[item.key]
            self._active.pop(item.id, None)
            removed += 1
        return removed

    def _stale(self, entry: tuple[float, str]) -> bool:
        row = self._items.get(entry[1])
        return row is None or row[10] != entry[0]  # the ends


_as_item = MockItem._make
