"""Opening the database behind a job store: SQLite by path or URL, PostgreSQL by URL.

Accepted locations::

    jobs.db, /var/lib/debrid/jobs.db, Path(...)   a SQLite file (``~`` is expanded)
    sqlite:///relative/jobs.db                    a SQLite file, relative to the working directory
    sqlite:////absolute/jobs.db                   a SQLite file, absolute (four slashes)
    sqlite:///:memory:                            a private in-memory SQLite database
    postgresql://user:secret@host:5432/db         PostgreSQL through psycopg 3 (``postgres://`` too)

The SQLite URL form follows SQLAlchemy and ``playhouse.db_url``: the path is what
follows the third slash. Every failure to open becomes a ``StoreError`` whose
message names the location (with any password hidden) and what went wrong.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import peewee

from providers._errors import StoreError, ValidationError

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "SQLITE_MEMORY",
    "close_database",
    "cursor",
    "describe_database",
    "describe_error",
    "execute",
    "is_database_error",
    "is_shared_connection",
    "open_database",
    "redact",
    "sqlite_path",
    "write_transaction",
]

#: Seconds a SQLite connection waits for another writer before giving up.
DEFAULT_BUSY_TIMEOUT = 10.0

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
#: What ``sqlite_path`` returns for a private in-memory database.
SQLITE_MEMORY = ":memory:"


class _ConnectionRegistry:
    """Every connection a database has open, with the thread that opened it.

    peewee keeps one connection per thread and ``Database.close()`` only closes
    the calling thread's; a store used from several threads must be able to
    close them all. And since a thread that ends takes its peewee state with it
    but not its connection, a long-running process whose callers come and go
    (one thread per HTTP request) would pile up connections: each new one
    therefore first closes those of threads that have ended.
    """

    def __init__(self, per_thread: bool = True) -> None:
        self._lock = threading.Lock()
        self._per_thread = per_thread
        self._connections: dict[Any, threading.Thread] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._connections)

    def add(self, connection: Any) -> None:
        with self._lock:
            orphans = [c for c, t in self._connections.items() if not t.is_alive()]
            if not self._per_thread:
                # One connection shared by every thread: its opener's end means nothing.
                orphans = []
            for orphan in orphans:
                del self._connections[orphan]
            self._connections[connection] = threading.current_thread()
        _close_quietly(orphans)

    def discard(self, connection: Any) -> None:
        with self._lock:
            self._connections.pop(connection, None)

    def close_all(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections), {}
        _close_quietly(connections)


def _close_quietly(connections: Sequence[Any]) -> None:
    for connection in connections:
        # Best effort: a connection that cannot even close is gone already.
        try:
            connection.close()
        except Exception:  # noqa: BLE001, S112
            continue


class _SqliteDatabase(peewee.SqliteDatabase):
    """SQLite with a registry of its per-thread connections."""

    def __init__(self, database: str, **kwargs: Any) -> None:
        self.registry = _ConnectionRegistry(per_thread=kwargs.get("thread_safe", True))
        super().__init__(database, **kwargs)

    def _connect(self) -> Any:
        connection = super()._connect()  # type: ignore[misc]
        self.registry.add(connection)
        return connection

    def _close(self, conn: Any) -> None:
        self.registry.discard(conn)
        conn.close()


class _PostgresqlDatabase(peewee.PostgresqlDatabase):
    """PostgreSQL with a registry of its per-thread connections."""

    def __init__(self, database: str, **kwargs: Any) -> None:
        self.registry = _ConnectionRegistry()
        super().__init__(database, **kwargs)

    def _connect(self) -> Any:
        connection = super()._connect()  # type: ignore[misc]
        self.registry.add(connection)
        return connection

    def _close(self, conn: Any) -> None:
        self.registry.discard(conn)
        conn.close()


def open_database(
    url_or_path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> peewee.Database:
    """Open (and check) the database at ``url_or_path``; see the module docstring for forms.

    SQLite gets WAL journaling, ``synchronous=NORMAL``, a busy timeout of
    ``busy_timeout`` seconds and foreign keys, on every connection; a missing
    parent directory is created. The first connection is opened here, so that a
    corrupt, locked or unreachable database fails now with a ``StoreError``.
    """
    if busy_timeout < 0:
        raise ValidationError(
            "busy_timeout",
            f"{busy_timeout!r} is negative",
            value=busy_timeout,
            expected="seconds >= 0",
        )
    path = sqlite_path(url_or_path)
    if path is None:
        return _open_postgresql(os.fspath(url_or_path))
    return _open_sqlite(path, busy_timeout)


def sqlite_path(url_or_path: str | os.PathLike[str]) -> str | None:
    """The SQLite file that ``url_or_path`` names, or None for a PostgreSQL URL.

    Accepts every form ``open_database`` does (see the module docstring): the
    path comes back with ``~`` expanded, or as ``SQLITE_MEMORY`` for a private
    in-memory database. Nothing is opened or created. A location
    ``open_database`` would refuse (empty, unknown scheme, a SQLite URL with
    two slashes) raises the same ``StoreError``.
    """
    if isinstance(url_or_path, os.PathLike):
        return _expanded(os.fspath(url_or_path))
    match = _SCHEME.match(url_or_path)
    if match is None:
        return _expanded(url_or_path)
    scheme = match["scheme"].lower()
    if scheme == "sqlite":
        path = url_or_path[match.end() :]
        # "sqlite:///x" leaves "/x": the third slash separates an (empty) host.
        if not path.startswith("/"):
            raise StoreError(
                f"cannot open job store {url_or_path!r}: a SQLite URL has three slashes "
                "(sqlite:///relative.db, sqlite:////absolute.db, sqlite:///:memory:)"
            )
        return _expanded(path[1:])
    if scheme in {"postgresql", "postgres"}:
        return None
    raise StoreError(
        f"cannot open job store {redact(url_or_path)!r}: unsupported scheme {scheme!r} "
        "(use a file path, sqlite:/// or postgresql://)"
    )


def _expanded(path: str) -> str:
    if not path:
        raise StoreError("cannot open job store: the SQLite path is empty")
    if path == SQLITE_MEMORY:
        return path
    return str(Path(path).expanduser())


def _open_sqlite(path: str, busy_timeout: float) -> peewee.Database:
    if path != SQLITE_MEMORY:
        target = Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot open job store {str(target)!r}: cannot create its directory "
                f"{str(target.parent)!r}: {exc.strerror or exc}"
            ) from exc
        path = str(target)
    pragmas = [
        # busy_timeout first, so that switching to WAL waits for a busy file too.
        ("busy_timeout", round(busy_timeout * 1000)),
        ("journal_mode", "wal"),
        ("synchronous", "normal"),
        ("foreign_keys", 1),
    ]
    database = _SqliteDatabase(
        path,
        pragmas=pragmas,
        timeout=busy_timeout,
        # A private in-memory database exists only in the connection that made
        # it, so every thread must share that one connection (the store then
        # serialises all access to it). A file gets one connection per thread.
        thread_safe=path != SQLITE_MEMORY,
        # Each connection is only ever used by its own thread; this is what
        # lets ``close_database`` close every thread's connection from one.
        check_same_thread=False,
    )
    _check_sqlite(database, path)
    return database


def _check_sqlite(database: peewee.SqliteDatabase, path: str) -> None:
    try:
        database.connect(reuse_if_open=True)
        # Reading the schema reads the file header: a file that is not SQLite
        # (or is damaged) fails here rather than at the first query.
        execute(database, "SELECT count(*) FROM sqlite_master").fetchone()
    except (peewee.PeeweeException, sqlite3.Error) as exc:
        close_database(database)
        raise StoreError(f"cannot open job store {path!r}: {describe_error(exc)}") from exc


def _open_postgresql(url: str) -> peewee.Database:
    where = redact(url)
    # peewee talks to PostgreSQL through psycopg; it is an optional dependency.
    if not _have_psycopg():
        raise StoreError(
            f"cannot open job store {where!r}: PostgreSQL needs psycopg 3 "
            "(pip install 'debrid-engine[postgres]' or 'psycopg[binary]')"
        )
    try:
        database = _PostgresqlDatabase(url, prefer_psycopg3=True)
        database.connect(reuse_if_open=True)
        execute(database, "SELECT 1").fetchone()
    except (peewee.PeeweeException, ImportError) as exc:
        raise StoreError(f"cannot open job store {where!r}: {describe_error(exc)}") from exc
    return database


def execute(database: peewee.Database, sql: str, params: Sequence[Any] = ()) -> Any:
    """Run ``sql`` on this thread's connection; return the DB-API cursor (typed wrapper)."""
    return database.execute_sql(sql, tuple(params))  # type: ignore[no-untyped-call]


def cursor(database: peewee.Database) -> Any:
    """A DB-API cursor on this thread's connection, connecting first if need be."""
    return database.cursor()  # type: ignore[no-untyped-call]


def _have_psycopg() -> bool:
    return importlib.util.find_spec("psycopg") is not None


def close_database(database: peewee.Database) -> None:
    """Close every connection of ``database``, on every thread (not only the caller's)."""
    try:
        # Resets this thread's peewee state; other threads find their
        # connection closed and get an error instead of a silent reconnect.
        database.close()
    except (peewee.PeeweeException, sqlite3.Error):
        # A connection that fails to close (say, mid-transaction after a
        # crash) is closed below regardless.
        database.dispose()
    registry = getattr(database, "registry", None)
    if isinstance(registry, _ConnectionRegistry):
        registry.close_all()


def is_database_error(exc: BaseException) -> bool:
    """True for an error raised by peewee or a database driver (sqlite3, psycopg).

    Drivers are recognised by module, so that psycopg is never imported just
    to name its exception class.
    """
    if isinstance(exc, (peewee.PeeweeException, sqlite3.Error)):
        return True
    module = type(exc).__module__ or ""
    return module == "psycopg" or module.startswith("psycopg.")


def is_shared_connection(database: peewee.Database) -> bool:
    """True when all threads share one connection (an in-memory SQLite database)."""
    return not bool(database.thread_safe)


def describe_database(database: peewee.Database) -> str:
    """Where ``database`` lives, fit for a message (a path, or a URL without its password)."""
    return redact(str(database.database))


def redact(location: str) -> str:
    """``location`` with the password of a URL replaced by ``***``."""
    parts = urlsplit(location) if _SCHEME.match(location) else None
    if parts is None or parts.password is None:
        return location
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


#: Plain words for the SQLite errors a user can meet and act on.
_SQLITE_HINTS = (
    ("database is locked", "the database is locked by another connection or process"),
    ("file is not a database", "the file is not a SQLite database (corrupt, or another kind)"),
    ("database disk image is malformed", "the database file is corrupt (malformed)"),
    ("unable to open database file", "the file cannot be opened (a directory, or no permission?)"),
    ("attempt to write a readonly database", "the database is read-only"),
    ("database or disk is full", "the disk is full"),
    ("disk i/o error", "a disk I/O error occurred"),
)


def describe_error(exc: BaseException) -> str:
    """A one-line, human explanation of a database error (the driver's text kept at the end)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    for needle, hint in _SQLITE_HINTS:
        if needle in lowered:
            return f"{hint} ({text})"
    return text


def write_transaction(database: peewee.Database) -> Any:
    """A transaction (or savepoint, when nested) meant to write.

    On SQLite it starts with ``BEGIN IMMEDIATE``: it takes the write lock at once
    (waiting up to the busy timeout) instead of at its first write, where a
    deferred transaction that has read can fail at once with "database is
    locked" when another connection wrote meanwhile.
    """
    if isinstance(database, peewee.SqliteDatabase):
        return database.atomic("IMMEDIATE")
    return database.atomic()
