"""``JobStore``: every job and every transition, durable, in SQLite or PostgreSQL.

The engine's supervisor is the store's one writer in normal operation and hands
it a whole mailbox drain at a time (``save_batch``), but the store does not rely
on that: any thread may call any method.

Threads: peewee gives each thread its own connection, opened on first use;
``close()`` closes all of them. On SQLite the store also serialises its own
writes with a lock, so its threads queue in Python instead of spinning in
SQLite's busy handler; other processes are still kept out by SQLite's locks
(WAL lets readers run beside the writer). An in-memory database has one
connection that every thread shares, so there every call takes the lock.

Large stores: a restart reads the unfinished jobs a page at a time
(``non_terminal_page``, keyset pages off partial indexes, see ``_resume``), and
finished jobs are cleared a chunk at a time (``delete_terminal(limit=...)``), so
that neither costs more as the store grows. One engine per SQLite file is
``DatabaseOwner``'s business (``_owner``), not the store's: a store opened to
read (a test, a CLI) never needs that lock.

Errors: any database failure (corrupt file, lock held past the busy timeout,
server gone) is raised as ``StoreError`` naming the store and what went wrong;
a failed write leaves nothing of itself behind (one transaction per call).
"""

from __future__ import annotations

import builtins
import itertools
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, Self, cast

import peewee

from persistence._database import (
    DEFAULT_BUSY_TIMEOUT,
    close_database,
    cursor,
    describe_database,
    describe_error,
    execute,
    is_database_error,
    is_shared_connection,
    open_database,
    write_transaction,
)
from persistence._migrations import migrate
from persistence._models import Tables, bind_tables
from persistence._resume import (
    ResumeKey,
    check_resume_key,
    live_remote_ids_query,
    page_query,
    resume_key,
)
from persistence._rows import (
    IDENTITY_COLUMNS,
    JOB_COLUMNS,
    TRANSITION_COLUMNS,
    job_from_row,
    job_to_row,
    transition_from_row,
    transition_to_row,
)
from persistence._search import fold
from providers._errors import JobNotFound, StoreError, UnstorableValue, ValidationError
from providers._job import Job, Transition
from providers._status import TERMINAL, JobStatus

__all__ = ["CLEANUP_KINDS", "ORDER_COLUMNS", "CleanupChange", "JobStore"]

#: One owed remote cleanup to record (``owed``) or forget: (provider, kind, key, owed).
CleanupChange = tuple[str, str, str, bool]
#: The kinds of owed cleanup: a delete by remote id, a lookup by job id.
CLEANUP_KINDS = frozenset({"delete", "lookup"})

#: Columns ``JobStore.list`` may order by.
ORDER_COLUMNS = frozenset(
    {"id", "provider", "status", "priority", "progress", "attempt", "created_at", "updated_at"}
)

_NON_TERMINAL = tuple(status.value for status in JobStatus if status not in TERMINAL)
_PREFIX = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*)?$")
#: Seconds ``close`` waits for the reads still running on other threads.
_CLOSE_WAIT = 30.0
# Ids per IN (...) list: under SQLite's oldest default limit of 999 bound
# parameters, and PostgreSQL's 65535.
_IN_CHUNK = 900


class JobStore:
    """The durable record of every job: its current row and its transition history.

    ``database`` is a SQLite path, a ``sqlite:///`` URL or a ``postgresql://``
    URL (see ``open_database``). Opening applies pending schema migrations.
    ``busy_timeout`` (seconds) is how long a SQLite write waits for another
    process's lock; ``table_prefix`` names the tables ``prefix + "jobs"``...,
    so that several stores can share one PostgreSQL database.

    Usable as a context manager, which closes it.
    """

    def __init__(
        self,
        database: str | os.PathLike[str],
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        table_prefix: str = "",
    ) -> None:
        if not _PREFIX.match(table_prefix):
            raise ValidationError(
                "table_prefix",
                f"{table_prefix!r} is not a valid table-name prefix",
                value=table_prefix,
                expected="letters, digits and underscores, not starting with a digit",
            )
        self._db = open_database(database, busy_timeout=busy_timeout)
        self._where = describe_database(self._db)
        self._closed = False
        self._write_lock = threading.RLock()
        self._read_lock: AbstractContextManager[Any] = (
            self._write_lock if is_shared_connection(self._db) else nullcontext()
        )
        # Reads run without a lock on a file or a server, each thread on its own
        # connection; ``close`` closes every thread's, so it waits for the reads in
        # flight first: closing a SQLite connection under a running statement
        # crashes the process.
        self._gate = threading.Condition()
        self._readers = 0
        try:
            with self._write_lock:
                self._schema_version = migrate(self._db, table_prefix)
        except BaseException:
            close_database(self._db)
            raise
        self._tables: Tables = bind_tables(self._db, table_prefix)
        self._upsert_sql = self._build_upsert_sql()
        self._append_sql = self._build_append_sql()

    @classmethod
    def open(
        cls,
        database: str | os.PathLike[str],
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        table_prefix: str = "",
    ) -> JobStore:
        """Same as ``JobStore(...)``."""
        return cls(database, busy_timeout=busy_timeout, table_prefix=table_prefix)

    # -- lifecycle ---------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The schema version of the database (``SCHEMA_VERSION``, once opened)."""
        return self._schema_version

    @property
    def location(self) -> str:
        """Where the store lives: a path, or a URL with its password hidden."""
        return self._where

    @property
    def database(self) -> peewee.Database:
        """The underlying peewee database (diagnostics and tests; do not write through it)."""
        return self._db

    @property
    def tables(self) -> Tables:
        """The peewee models bound to this store's database."""
        return self._tables

    @property
    def closed(self) -> bool:
        """True once ``close()`` has been called."""
        return self._closed

    def close(self) -> None:
        """Close every connection of the store, on every thread. Closing twice is harmless."""
        with self._write_lock:
            with self._gate:
                if self._closed:
                    return
                self._closed = True  # no read starts from now on
                if not self._gate.wait_for(lambda: self._readers == 0, _CLOSE_WAIT):
                    raise StoreError(
                        f"cannot close job store {self._where!r}: {self._readers} reads "
                        f"still running after {_CLOSE_WAIT:g} s"
                    )
            close_database(self._db)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"schema v{self.schema_version}"
        return f"<JobStore {self._where!r} {state}>"

    # -- writing -----------------------------------------------------------

    def save(self, job: Job, transitions: Sequence[Transition] = ()) -> None:
        """Insert or update ``job`` and append ``transitions``, in one transaction.

        A job's identity (``id``, ``provider``, ``payload``, ``created_at``) is
        written when it is first saved; saving it again updates its state only
        (status, progress, files, metadata, error, attempt, remote id,
        ``submitted``, ``updated_at``).
        """
        self.save_batch([(job, transitions)])

    def save_batch(
        self,
        changes: Sequence[tuple[Job, Sequence[Transition]]],
        cleanups: Sequence[CleanupChange] = (),
    ) -> None:
        """Insert or update every job (see ``save``), append every transition: ONE transaction.

        A job given several times is stored as its last version; transitions
        are appended in the order given. Every transition must belong to a job
        of the batch (``ValidationError`` otherwise, before anything is written).

        ``cleanups`` (provider, kind, key, owed) record an owed remote cleanup
        (``owed``; recorded twice is recorded once) or forget it, in the same
        transaction (see ``pending_cleanups``).
        """
        jobs: dict[str, tuple[Any, ...]] = {}
        steps: list[tuple[Any, ...]] = []
        for job, transitions in changes:
            jobs[job.id] = job_to_row(job)
            for transition in transitions:
                if transition.job_id != job.id:
                    raise ValidationError(
                        "transitions",
                        f"transition of job {transition.job_id!r} given with job {job.id!r}",
                        value=transition,
                        expected="transitions of the job they are saved with",
                    )
                steps.append(transition_to_row(transition))
        for provider, kind, key, _ in cleanups:
            if kind not in CLEANUP_KINDS or not provider or not key:
                raise ValidationError(
                    "cleanups",
                    f"owed cleanup ({provider!r}, {kind!r}, {key!r})",
                    value=(provider, kind, key),
                    expected=f"a provider, a kind of {sorted(CLEANUP_KINDS)} and a key",
                )
        if not jobs and not cleanups:
            return
        # Ordered by id so that concurrent batches lock rows in one order
        # (PostgreSQL would otherwise be free to deadlock them).
        rows = [jobs[job_id] for job_id in sorted(jobs)]
        with self._writing("save jobs"):
            if rows:
                dbapi = cursor(self._db)
                dbapi.executemany(self._upsert_sql, rows)
                if steps:
                    dbapi.executemany(self._append_sql, steps)
            if cleanups:
                self._write_cleanups(cleanups)

    def _write_cleanups(self, cleanups: Sequence[CleanupChange]) -> None:
        table = self._tables.pending_cleanups
        owed = sorted({(p, kind, key) for p, kind, key, is_owed in cleanups if is_owed})
        settled = sorted({(p, kind, key) for p, kind, key, is_owed in cleanups if not is_owed})
        fields = [table.provider, table.kind, table.key]
        for start in range(0, len(owed), 300):
            rows = owed[start : start + 300]
            table.insert_many(rows, fields=fields).on_conflict_ignore().execute()
        for (provider, kind), group in itertools.groupby(settled, key=lambda row: row[:2]):
            keys = [key for _, _, key in group]
            for chunk in _chunks(keys):
                table.delete().where(
                    (table.provider == provider) & (table.kind == kind) & table.key.in_(chunk)
                ).execute()

    def delete(self, job_ids: Iterable[str]) -> int:
        """Delete the given jobs and their transitions; return how many jobs were deleted."""
        ids = _unique(job_ids)
        if not ids:
            return 0
        jobs, steps = self._tables.jobs, self._tables.transitions
        deleted = 0
        with self._writing("delete jobs"):
            for chunk in _chunks(ids):
                steps.delete().where(steps.job_id.in_(chunk)).execute()
                deleted += jobs.delete().where(jobs.id.in_(chunk)).execute()
        return deleted

    def delete_finished(self, job_ids: Iterable[str]) -> set[str]:
        """Delete those of ``job_ids`` that are finished (COMPLETED, FAILED, CANCELLED)
        when the transaction runs, with their transitions; return the ids deleted.

        The pick and the delete are one transaction, the rows locked between them
        on PostgreSQL: a job another process retried in the meantime is kept.
        """
        ids = _unique(job_ids)
        if not ids:
            return set()
        jobs, steps = self._tables.jobs, self._tables.transitions
        finished = sorted(s.value for s in JobStatus if s.terminal)
        deleted: set[str] = set()
        with self._writing("delete finished jobs"):
            for chunk in _chunks(ids):
                chosen = jobs.select(jobs.id).where(jobs.id.in_(chunk) & jobs.status.in_(finished))
                if isinstance(self._db, peewee.PostgresqlDatabase):
                    chosen = chosen.for_update()
                picked = [str(job_id) for (job_id,) in _tuples(chosen)]
                if picked:
                    steps.delete().where(steps.job_id.in_(picked)).execute()
                    jobs.delete().where(jobs.id.in_(picked)).execute()
                deleted.update(picked)
        return deleted

    def delete_terminal(
        self,
        statuses: Iterable[JobStatus] = (JobStatus.COMPLETED,),
        *,
        limit: int | None = None,
    ) -> int:
        """Delete the jobs in one of ``statuses`` (terminal ones only), with their transitions.

        Returns how many jobs were deleted. Without ``limit``, every such job
        goes, in one transaction. With ``limit``, at most that many go, in one
        short transaction (ids picked on the status index, then deleted by id):
        call again until it returns less than ``limit``, so that clearing a
        million jobs never holds the writer for more than one chunk. A
        non-terminal status is refused (``ValidationError``): those jobs are
        still being worked on.
        """
        wanted = _statuses(statuses, "statuses")
        live = sorted(s.value for s in wanted if not s.terminal)
        if live:
            raise ValidationError(
                "statuses",
                f"cannot delete jobs that are not finished ({', '.join(live)})",
                value=live,
                expected="COMPLETED, FAILED or CANCELLED",
            )
        if limit is not None:
            _check_int(limit, "limit", "a chunk size", 1, "an int >= 1, or None for all at once")
        if not wanted:
            return 0
        values = sorted(s.value for s in wanted)
        jobs, steps = self._tables.jobs, self._tables.transitions
        if limit is None:
            with self._writing("delete finished jobs"):
                doomed = jobs.select(jobs.id).where(jobs.status.in_(values))
                steps.delete().where(steps.job_id.in_(doomed)).execute()
                deleted: int = jobs.delete().where(jobs.status.in_(values)).execute()
            return deleted
        deleted = 0
        with self._writing("delete finished jobs"):
            doomed_ids = [row[0] for row in _tuples(self._finished_chunk(values, limit))]
            for chunk in _chunks(doomed_ids):
                steps.delete().where(steps.job_id.in_(chunk)).execute()
                deleted += jobs.delete().where(jobs.id.in_(chunk)).execute()
        return deleted

    def save_provider_state(
        self, name: str, slot_limit: int | None, *, at: int | None = None
    ) -> None:
        """Record what provider ``name`` taught about its slot limit, replacing what was there.

        ``slot_limit`` is how many jobs it may hold at once (None: no limit
        known). ``at`` is the time of the change in epoch milliseconds (now by
        default). Kept across restarts, so that an engine that starts again does
        not fall back to one job at a time while it learns the limit anew.
        """
        if not isinstance(name, str) or not name:
            raise ValidationError(
                "name", f"{name!r} is not a provider name", value=name, expected="a non-empty str"
            )
        if slot_limit is not None:
            _check_int(
                slot_limit, "slot_limit", "a slot limit", 0, "an int >= 0, or None when not known"
            )
        if at is not None:
            _check_int(at, "at", "a time", None, "epoch milliseconds (an int)")
        stamp = time.time_ns() // 1_000_000 if at is None else at
        table = self._tables.provider_state
        upsert = table.insert(name=name, slot_limit=slot_limit, updated_at=stamp).on_conflict(
            conflict_target=[table.name], preserve=[table.slot_limit, table.updated_at]
        )
        with self._writing("save provider state"):
            upsert.execute()

    # -- reading -----------------------------------------------------------

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; raises ``JobNotFound`` when there is none."""
        jobs = self._tables.jobs
        with self._reading("read a job"):
            row = _first(jobs.select().where(jobs.id == job_id))
        if row is None:
            raise JobNotFound(job_id)
        return job_from_row(row)

    def get_many(self, job_ids: Iterable[str]) -> dict[str, Job]:
        """The jobs of ``job_ids`` that exist, by id (missing ids are left out)."""
        jobs = self._tables.jobs
        found: dict[str, Job] = {}
        with self._reading("read jobs"):
            for chunk in _chunks(_unique(job_ids)):
                for row in _rows(jobs.select().where(jobs.id.in_(chunk))):
                    found[row["id"]] = job_from_row(row)
        return found

    def list(
        self,
        status: JobStatus | Iterable[JobStatus] | None = None,
        provider: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        order: str = "created_at",
        descending: bool = False,
        text: str | None = None,
    ) -> builtins.list[Job]:
        """Jobs matching ``status`` (one or several), ``provider`` and ``text``, ordered and paged.

        ``order`` is one of ``ORDER_COLUMNS``; ties are broken by id, so that
        pages never overlap or skip. ``text`` matches, case-insensitively, a part
        of the id, the payload (URL, magnet, download dir) or the file names.
        ``ValidationError`` for a bad argument.
        """
        if order not in ORDER_COLUMNS:
            raise ValidationError(
                "order",
                f"cannot order jobs by {order!r}",
                value=order,
                expected=", ".join(sorted(ORDER_COLUMNS)),
            )
        _check_limit(limit)
        if isinstance(offset, bool) or offset < 0:
            raise ValidationError(
                "offset", f"{offset!r} is not a row offset", value=offset, expected="an int >= 0"
            )
        jobs = self._tables.jobs
        column = getattr(jobs, order)
        tiebreak = jobs.id
        keys = (column.desc(), tiebreak.desc()) if descending else (column, tiebreak)
        query = self._filtered(status, provider, text)
        if query is None or limit == 0:
            return []
        query = query.order_by(*keys)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self._reading("list jobs"):
            rows = _rows(query)
        return [job_from_row(row) for row in rows]

    def count(
        self,
        status: JobStatus | Iterable[JobStatus] | None = None,
        provider: str | None = None,
        text: str | None = None,
    ) -> int:
        """How many jobs match ``status`` (one or several), ``provider`` and ``text``."""
        query = self._filtered(status, provider, text)
        if query is None:
            return 0
        with self._reading("count jobs"):
            counted: int = query.count()
        return counted

    def non_terminal(
        self, provider: str | None = None, *, limit: int | None = None
    ) -> builtins.list[Job]:
        """Every job not yet COMPLETED, FAILED or CANCELLED: what a restart resumes.

        Highest payload priority first, then oldest first (then by id).
        ``limit`` takes only the first ones (say, as many as a provider has
        free slots), so that a huge backlog is not read at once.
        """
        _check_limit(limit)
        jobs = self._tables.jobs
        query = jobs.select().where(jobs.status.in_(_NON_TERMINAL))
        if provider is not None:
            query = query.where(jobs.provider == provider)
        query = query.order_by(jobs.priority.desc(), jobs.created_at, jobs.id)
        if limit is not None:
            query = query.limit(limit)
        with self._reading("list unfinished jobs"):
            rows = _rows(query)
        return [job_from_row(row) for row in rows]

    def non_terminal_page(
        self,
        provider: str,
        *,
        after: ResumeKey | None,
        limit: int,
        with_remote_id: bool | None = None,
    ) -> builtins.list[Job]:
        """One page of ``provider``'s unfinished jobs, in the order of ``non_terminal``.

        ``after`` is ``resume_key(job)`` of the last job of the previous page
        (None for the first page); the page holds the next ``limit`` jobs after
        it. ``with_remote_id`` True takes only jobs that have a remote id (they
        are at the provider), False only those that do not, None both. A page
        reads at most a few times ``limit`` rows, off an index, however many jobs
        the store holds. Pages are not a snapshot: a job saved meanwhile may be
        seen twice or not at all, as with any paging of a table that changes.
        """
        key = check_resume_key(after)
        _check_int(limit, "limit", "a page size", 0, "an int >= 0")
        if with_remote_id is not None and not isinstance(with_remote_id, bool):
            raise ValidationError(
                "with_remote_id",
                f"{with_remote_id!r} is not True, False or None",
                value=with_remote_id,
                expected="True, False or None",
            )
        if limit == 0:
            return []
        sql, params = page_query(self._tables.jobs, provider, key, limit, with_remote_id)
        with self._reading("list a page of unfinished jobs"):
            dbapi = execute(self._db, sql, params)
            names = [column[0] for column in dbapi.description]
            rows = [dict(zip(names, row, strict=True)) for row in dbapi.fetchall()]
        return [job_from_row(row) for row in rows]

    @staticmethod
    def resume_key(job: Job) -> ResumeKey:
        """``(priority, created_at, id)`` of ``job``: the ``after`` of the page that follows it."""
        return resume_key(job)

    def live_remote_ids(self, provider: str) -> builtins.list[tuple[str, str]]:
        """``(job_id, remote_id)`` of every unfinished job of ``provider`` that has a remote id.

        In resume order; read from an index alone, no payload decoded: what a
        start compares with the provider's own list of jobs.
        """
        query = live_remote_ids_query(self._tables.jobs, provider)
        with self._reading("list remote ids"):
            rows = _tuples(query)
        return [(str(job_id), str(remote_id)) for job_id, remote_id in rows]

    def completed_remote_ids(
        self, provider: str, *, limit: int, failed_too: bool = False
    ) -> builtins.list[str]:
        """Remote ids of ``provider``'s COMPLETED jobs (and FAILED ones with
        ``failed_too``), the most recently finished first.

        Their items stay on the account: a start hands them to the provider actor,
        so that no lookup adopts or deletes a completed job's item after a restart
        (nor a failed job's, when the engine keeps those).
        """
        _check_limit(limit)
        jobs = self._tables.jobs
        statuses = [JobStatus.COMPLETED.value]
        if failed_too:
            statuses.append(JobStatus.FAILED.value)
        query = (
            jobs.select(jobs.remote_id)
            .where(
                jobs.provider == provider,
                jobs.status.in_(statuses),
                jobs.remote_id.is_null(False),
            )
            .order_by(jobs.updated_at.desc())
            .limit(limit)
        )
        with self._reading("list completed remote ids"):
            rows = _tuples(query)
        return [str(remote_id) for (remote_id,) in rows]

    def is_completed_item(
        self, provider: str, remote_id: str, *, failed_too: bool = False, besides: str = ""
    ) -> bool:
        """True when a COMPLETED job of ``provider`` (or, with ``failed_too``, a FAILED
        one: the engine keeps those items) other than ``besides`` has ``remote_id``:
        the item stays."""
        jobs = self._tables.jobs
        statuses = [JobStatus.COMPLETED.value]
        if failed_too:
            statuses.append(JobStatus.FAILED.value)
        query = jobs.select(jobs.id).where(
            jobs.provider == provider,
            jobs.remote_id == remote_id,
            jobs.status.in_(statuses),
            jobs.id != besides,
        )
        with self._reading("look for a completed job's item"):
            return _first(query.limit(1)) is not None

    def counts_by_status(self, provider: str | None = None) -> dict[JobStatus, int]:
        """How many jobs (of ``provider``, or of all) are in each status; one GROUP BY query.

        Every ``JobStatus`` is a key, 0 when no job has it. A status this
        version does not know (a row edited by hand) is left out.
        """
        jobs = self._tables.jobs
        query = jobs.select(jobs.status, peewee.fn.COUNT(peewee.SQL("*"))).group_by(jobs.status)
        if provider is not None:
            query = query.where(jobs.provider == provider)
        with self._reading("count jobs by status"):
            rows = _tuples(query)
        counts = dict.fromkeys(JobStatus, 0)
        for value, counted in rows:
            try:
                counts[JobStatus(value)] = int(counted)
            except ValueError:
                continue
        return counts

    def counts_by_provider(self) -> dict[tuple[str, JobStatus], int]:
        """How many jobs each (provider, status) pair has; pairs with none are left out."""
        jobs = self._tables.jobs
        query = jobs.select(
            jobs.provider, jobs.status, peewee.fn.COUNT(peewee.SQL("*"))
        ).group_by(jobs.provider, jobs.status)
        with self._reading("count jobs by provider and status"):
            rows = _tuples(query)
        counts: dict[tuple[str, JobStatus], int] = {}
        for provider, value, counted in rows:
            try:
                counts[(str(provider), JobStatus(value))] = int(counted)
            except ValueError:
                continue
        return counts

    def replace_pending_cleanups(
        self, provider: str, deletes: Iterable[str], lookups: Iterable[str]
    ) -> None:
        """Record the remote deletes (by remote id) and lookups (by job id) ``provider``
        still owes, replacing what was recorded: written at stop, read at start."""
        table = self._tables.pending_cleanups
        rows = [(provider, "delete", key) for key in dict.fromkeys(deletes)]
        rows += [(provider, "lookup", key) for key in dict.fromkeys(lookups)]
        with self._writing("save pending cleanups"):
            table.delete().where(table.provider == provider).execute()
            for start in range(0, len(rows), 300):
                table.insert_many(
                    rows[start : start + 300], fields=[table.provider, table.kind, table.key]
                ).execute()

    def pending_cleanups(self, provider: str) -> tuple[builtins.list[str], builtins.list[str]]:
        """The deletes (remote ids) and lookups (job ids) ``provider`` owed at the last stop."""
        table = self._tables.pending_cleanups
        query = table.select(table.kind, table.key).where(table.provider == provider)
        with self._reading("read pending cleanups"):
            rows = _tuples(query.order_by(table.kind, table.key))
        deletes = [str(key) for kind, key in rows if kind == "delete"]
        lookups = [str(key) for kind, key in rows if kind == "lookup"]
        return deletes, lookups

    def provider_states(self) -> dict[str, int | None]:
        """The slot limit each provider taught (``save_provider_state``), by provider name."""
        table = self._tables.provider_state
        query = table.select(table.name, table.slot_limit).order_by(table.name)
        with self._reading("read provider state"):
            rows = _tuples(query)
        return {str(name): None if limit is None else int(limit) for name, limit in rows}

    def transitions(self, job_id: str) -> builtins.list[Transition]:
        """Every recorded transition of ``job_id``, in the order they were saved.

        Raises ``JobNotFound`` when there is no such job (and so no history).
        """
        steps, jobs = self._tables.transitions, self._tables.jobs
        with self._reading("read transitions"):
            rows = _rows(steps.select().where(steps.job_id == job_id).order_by(steps.id))
            if not rows and not jobs.select().where(jobs.id == job_id).exists():
                raise JobNotFound(job_id)
        return [transition_from_row(row) for row in rows]

    # -- internals ---------------------------------------------------------

    def _filtered(
        self,
        status: JobStatus | Iterable[JobStatus] | None,
        provider: str | None,
        text: str | None = None,
    ) -> peewee.ModelSelect[Any] | None:
        """A select of jobs with the filters applied; None when nothing can match."""
        jobs = self._tables.jobs
        query = jobs.select()
        if text is not None:
            if not isinstance(text, str) or len(text) > 500:
                raise ValidationError(
                    "text", "not a search text", value=text, expected="a string of 500 or fewer"
                )
            needle = fold(text)
            if needle:
                # A plain substring of the folded search text (no LIKE: "%" and "_"
                # in the text mean themselves; no lower(): both sides fold in Python).
                find = peewee.fn.strpos if isinstance(self._db, peewee.PostgresqlDatabase) else (
                    peewee.fn.instr
                )
                query = query.where(find(jobs.search, needle) > 0)
        if status is not None:
            wanted = _statuses(status, "status")
            if not wanted:
                return None
            query = query.where(jobs.status.in_(sorted(s.value for s in wanted)))
        if provider is not None:
            query = query.where(jobs.provider == provider)
        return query

    def _finished_chunk(self, values: Sequence[str], limit: int) -> peewee.ModelSelect[Any]:
        """The ids of at most ``limit`` jobs in one of the status ``values`` (status index)."""
        jobs = self._tables.jobs
        chosen = jobs.select(jobs.id).where(jobs.status.in_(values)).limit(limit)
        if isinstance(self._db, peewee.PostgresqlDatabase):
            # Locked until the commit: another process cannot retry one of
            # these jobs (back to QUEUED) between the pick and the delete.
            # SQLite's BEGIN IMMEDIATE already keeps every other writer out.
            chosen = chosen.for_update()
        return chosen

    def reading(self, action: str) -> AbstractContextManager[None]:
        """A guarded read for a record that shares this store's database (the
        client book): failures become ``StoreError`` naming ``action``."""
        return self._reading(action)

    def writing(self, action: str) -> AbstractContextManager[None]:
        """A write transaction for a record that shares this store's database,
        serialised with the store's own writes."""
        return self._writing(action)

    @contextmanager
    def _reading(self, action: str) -> Iterator[None]:
        with self._read_lock:
            with self._gate:
                if self._closed:
                    raise StoreError(f"cannot {action}: job store {self._where!r} is closed")
                self._readers += 1
            try:
                with self._database_errors(action):
                    yield
            finally:
                with self._gate:
                    self._readers -= 1
                    if not self._readers:
                        self._gate.notify_all()

    @contextmanager
    def _writing(self, action: str) -> Iterator[None]:
        with self._write_lock, self._database_errors(action), write_transaction(self._db):
            yield

    @contextmanager
    def _database_errors(self, action: str) -> Iterator[None]:
        """Raise database failures as ``StoreError``; refuse calls on a closed store."""
        if self._closed:
            raise StoreError(f"cannot {action}: job store {self._where!r} is closed")
        try:
            yield
        except (UnicodeEncodeError, OverflowError) as exc:
            # Values the driver refuses before they reach the database: a lone
            # surrogate in a plain text column (an id, a provider's message),
            # or an int beyond 64 bits.
            raise UnstorableValue(
                f"cannot {action} in job store {self._where!r}: a value it cannot store: {exc}"
            ) from exc
        except (peewee.DataError, peewee.IntegrityError) as exc:
            # The database refused the data itself (PostgreSQL: a NUL in text, a
            # value out of range): writing it again cannot help.
            raise UnstorableValue(
                f"cannot {action} in job store {self._where!r}: a value it cannot store: "
                f"{describe_error(exc)}"
            ) from exc
        except Exception as exc:
            if not is_database_error(exc):
                raise
            self._drop_broken_connection()
            if self._closed:
                raise StoreError(f"cannot {action}: job store {self._where!r} is closed") from exc
            raise StoreError(
                f"cannot {action} in job store {self._where!r}: {describe_error(exc)}"
            ) from exc

    def _drop_broken_connection(self) -> None:
        # A PostgreSQL server restart leaves this thread holding a dead
        # connection; forget it so that the next call connects afresh.
        db = self._db
        if db.in_transaction() or db.is_closed() or db.is_connection_usable():
            return
        try:
            db.close()
        except Exception as exc:
            if not is_database_error(exc):
                raise
            db.dispose()

    def _build_upsert_sql(self) -> str:
        # Built once by peewee (quoting and dialect are its business) and then
        # run with executemany: several times faster than insert_many, which
        # renders every value of every row into the statement.
        jobs = self._tables.jobs
        fields = [getattr(jobs, name) for name in JOB_COLUMNS]
        template = tuple(None for _ in JOB_COLUMNS)
        # A saved job's identity (provider, payload with its priority, creation
        # time) never changes, so an update leaves those columns alone: their
        # indexes are not rewritten, nor a torrent payload of megabytes at every
        # progress step.
        state = [getattr(jobs, name) for name in JOB_COLUMNS if name not in IDENTITY_COLUMNS]
        query = jobs.insert_many([template], fields=fields).on_conflict(
            conflict_target=[jobs.id], preserve=state
        )
        sql: str = query.sql()[0]
        return sql

    def _build_append_sql(self) -> str:
        steps = self._tables.transitions
        fields = [getattr(steps, name) for name in TRANSITION_COLUMNS]
        template = tuple(None for _ in TRANSITION_COLUMNS)
        sql: str = steps.insert_many([template], fields=fields).sql()[0]
        return sql


def _rows(query: peewee.ModelSelect[Any]) -> builtins.list[Mapping[str, Any]]:
    """Every row of ``query`` as a column -> value mapping (peewee's own conversions applied)."""
    return cast("builtins.list[Mapping[str, Any]]", builtins.list(query.dicts()))


def _tuples(query: peewee.ModelSelect[Any]) -> builtins.list[tuple[Any, ...]]:
    """Every row of ``query`` as a tuple of its selected columns."""
    return cast("builtins.list[tuple[Any, ...]]", builtins.list(query.tuples()))


def _first(query: peewee.ModelSelect[Any]) -> Mapping[str, Any] | None:
    rows = _rows(query.limit(1))
    return rows[0] if rows else None


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or limit < 0):
        raise ValidationError(
            "limit",
            f"{limit!r} is not a row count",
            value=limit,
            expected="an int >= 0, or None for all",
        )


def _check_int(value: object, field: str, what: str, minimum: int | None, expected: str) -> None:
    """``ValidationError`` unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (minimum is not None and value < minimum)
    ):
        raise ValidationError(field, f"{value!r} is not {what}", value=value, expected=expected)


def _statuses(value: JobStatus | Iterable[JobStatus], field: str) -> frozenset[JobStatus]:
    """``value`` as a set of statuses; accepts status names/values too (``"queued"``)."""
    # A JobStatus is a str, and so iterable: test for the single value first.
    items: Iterable[Any] = (value,) if isinstance(value, str) else value
    try:
        return frozenset(_status(item) for item in items)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            field,
            f"{value!r} is not a job status",
            value=value,
            expected="a JobStatus, or an iterable of them",
        ) from exc


def _status(item: Any) -> JobStatus:
    if isinstance(item, JobStatus):
        return item
    if isinstance(item, str):
        try:
            return JobStatus(item.lower())
        except ValueError:
            pass
    raise ValueError(item)


def _unique(job_ids: Iterable[str]) -> builtins.list[str]:
    if isinstance(job_ids, str):
        # One id passed bare would otherwise be read as its characters.
        return [job_ids]
    return builtins.list(dict.fromkeys(job_ids))


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]
