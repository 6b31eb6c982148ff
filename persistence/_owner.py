"""One engine per SQLite database: an exclusive lock on a file beside it.

SQLite keeps two writers from corrupting a file, but not two engines from both
resuming the same jobs and submitting them twice. The engine therefore claims
its SQLite store before starting: ``DatabaseOwner.claim`` takes an exclusive,
non-blocking ``flock`` on ``<database file>.owner`` and writes there who holds it
(pid, host, since when), so that a second engine is refused with a message
naming the first.

An ``flock`` lock belongs to the open file, so it dies with the process that
holds it, however it ends (even SIGKILL): there is no stale lock to clean up.
A second claim in the same process fails too (it opens the file again, and two
open files conflict). A child forked without ``exec`` closes its inherited copy
at once, so that it never keeps its parent's lock alive.

The lock file is never deleted: a process may have opened it a moment before,
and would then lock a file that no longer has a name while a third process
locks a new one. Readers (a ``JobStore`` opened by a test or a CLI) never claim
anything.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import threading
import weakref
from types import TracebackType
from typing import Self

from persistence._database import SQLITE_MEMORY, redact, sqlite_path
from providers._errors import StoreError

__all__ = ["OWNER_SUFFIX", "DatabaseOwner"]

#: What the lock file adds to the database file's name.
OWNER_SUFFIX = ".owner"

# Enough for any owner record; a longer file is not one of ours.
_RECORD_MAX = 4096


class DatabaseOwner:
    """The claim of one process on one SQLite job store (see the module docstring).

    Get one with ``DatabaseOwner.claim(target)``; hold it for as long as the
    engine runs; ``release()`` (or leaving the ``with`` block) gives it up. For
    an in-memory database or a PostgreSQL URL the owner holds nothing
    (``holds_lock`` is False): an in-memory database has a single user anyway,
    and sharing a PostgreSQL store between processes is for the store to arrange.
    """

    def __init__(
        self, location: str, *, lock_path: str | None = None, fd: int | None = None
    ) -> None:
        """Internal: use ``DatabaseOwner.claim``."""
        self._location = location
        self._lock_path = lock_path
        self._fd = fd
        self._pid = os.getpid()
        self._lock = threading.Lock()
        if fd is not None:
            _held.add(self)

    @classmethod
    def claim(cls, target: str | os.PathLike[str]) -> DatabaseOwner:
        """Claim the store at ``target``, in any form ``open_database`` accepts.

        For a SQLite file, takes the lock on ``<file>.owner`` (creating the
        file, and the database's directory, if need be) and records this process
        in it. Raises ``StoreError`` when another process, or another claim of
        this one, holds it (the message names the database and the holder's pid,
        host and start time), or when the lock file cannot be opened or locked.
        The database itself is neither opened nor created.
        """
        path = sqlite_path(target)
        if path is None:
            return cls(redact(os.fspath(target)))
        if path == SQLITE_MEMORY:
            return cls(path)
        database = os.path.abspath(path)
        try:
            os.makedirs(os.path.dirname(database), exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot claim job store {database!r}: cannot create its directory "
                f"{os.path.dirname(database)!r}: {exc.strerror or exc}"
            ) from exc
        # Beside the real file: two names (symlinks) of one database share one lock.
        lock_path = os.path.realpath(database) + OWNER_SUFFIX
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot claim job store {database!r}: cannot open its lock file "
                f"{lock_path!r}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"job store {database!r} is in use by {_holder(lock_path)}; one engine per "
                "SQLite database: use PostgreSQL to share a store"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(
                f"cannot claim job store {database!r}: cannot lock {lock_path!r}: "
                f"{exc.strerror or exc}"
            ) from exc
        try:
            _write_record(fd, database)
        except OSError as exc:
            _unlock_and_close(fd)
            raise StoreError(
                f"cannot claim job store {database!r}: cannot write its lock file "
                f"{lock_path!r}: {exc.strerror or exc}"
            ) from exc
        return cls(database, lock_path=lock_path, fd=fd)

    @property
    def location(self) -> str:
        """The store claimed: an absolute path, ``:memory:``, or a URL without its password."""
        return self._location

    @property
    def lock_path(self) -> str | None:
        """The lock file (``<database file>.owner``); None when nothing is locked."""
        return self._lock_path

    @property
    def holds_lock(self) -> bool:
        """True while this owner holds the lock of a SQLite file."""
        return self._fd is not None

    def release(self) -> None:
        """Give up the claim: empty the record, unlock, close. Releasing twice is harmless."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        _held.discard(self)
        if os.getpid() != self._pid:
            # Inherited through a fork: unlocking would take the lock from the parent.
            os.close(fd)
            return
        # No record of an owner that is gone (failing that, the record is merely
        # stale: the lock is what counts).
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        _unlock_and_close(fd)

    def _forget_inherited(self) -> None:
        # In a child just forked: no lock may be taken (another thread of the
        # parent may have held it at the fork), and the lock stays the parent's.
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "holding its lock" if self.holds_lock else "holding nothing"
        return f"<DatabaseOwner {self._location!r} {state}>"


# Owners that hold a lock in this process, for the fork hook below.
_held: weakref.WeakSet[DatabaseOwner] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for owner in list(_held):
        owner._forget_inherited()
    _held.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _write_record(fd: int, database: str) -> None:
    record = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "database": database,
    }
    data = (json.dumps(record) + "\n").encode()
    # Emptied first: a reader sees either no record or the whole new one, never
    # the start of ours over the end of a dead owner's.
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _unlock_and_close(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(lock_path: str) -> str:
    """Who holds the lock, as the record in ``lock_path`` tells it."""
    try:
        with open(lock_path, encoding="utf-8") as file:
            record = json.loads(file.read(_RECORD_MAX))
        pid = int(record["pid"])
        host = str(record["hostname"])
        since = str(record["started_at"])
    except (OSError, ValueError, KeyError, TypeError):
        # The holder has just locked and not written yet, or the file was edited.
        return f"another process (no readable owner record in {lock_path!r})"
    mine = pid == os.getpid() and host == socket.gethostname()
    return f"process {pid} on host {host} (since {since}{'; this process' if mine else ''})"
