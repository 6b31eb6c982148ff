"""Reading unfinished jobs in pages, in resume order, straight off the resume indexes.

The resume order is that of ``JobStore.non_terminal``: priority descending, then
creation time, then id. A page starts after the key of the last job of the page
before (``resume_key``): keyset pagination, so that page 1,000 costs what page 1
does, where an OFFSET would read all the pages before it again.

The key mixes directions (priority descending, the rest ascending), which one
row-value comparison cannot express in a way an index range serves. A page
after ``(p, c, i)`` is therefore read as two index ranges, each ordered and
limited on its own: the rest of priority ``p`` (``(created_at, id) > (c, i)``),
then every lower priority. Each kind of job (with a remote id, without) has its
own partial index (schema version 2), so asking for both reads both; the
database merges the ranges and cuts the page, so that ids are compared in its
own collation, as its indexes order them. Every range reads at most ``limit``
rows, so a page reads at most four times ``limit`` rows, however large the store.
"""

from __future__ import annotations

from typing import Any

import peewee

from persistence._migrations import LIVE_JOBS
from persistence._models import JobRow
from providers._errors import ValidationError
from providers._job import Job

__all__ = ["ResumeKey", "check_resume_key", "live_remote_ids_query", "page_query", "resume_key"]

#: ``(priority, created_at, id)``: where a job sits in resume order (priority descending).
ResumeKey = tuple[int, int, str]


def resume_key(job: Job) -> ResumeKey:
    """The key of ``job`` in resume order, to pass as ``after`` for the next page."""
    return (job.payload.priority, job.created_at, job.id)


def check_resume_key(after: object) -> ResumeKey | None:
    """``after`` when it is None or a ``resume_key``; ``ValidationError`` otherwise."""
    if after is None:
        return None
    if isinstance(after, tuple) and len(after) == 3:
        priority, created_at, job_id = after
        if _is_int(priority) and _is_int(created_at) and isinstance(job_id, str):
            return (priority, created_at, job_id)
    raise ValidationError(
        "after",
        f"{after!r} is not the resume key of a job",
        value=after,
        expected="None, or JobStore.resume_key(job): (priority, created_at, id)",
    )


def page_query(
    jobs: type[JobRow],
    provider: str,
    after: ResumeKey | None,
    limit: int,
    with_remote_id: bool | None,
) -> tuple[str, list[Any]]:
    """The SQL and parameters of one page (``limit`` >= 1); its rows hold every job column."""
    kinds = (True, False) if with_remote_id is None else (with_remote_id,)
    ranges = [r for kind in kinds for r in _ranges(jobs, provider, after, limit, kind)]
    if len(ranges) == 1:
        sql, params = ranges[0].sql()
        return sql, list(params)
    parts: list[str] = []
    params = []
    for n, query in enumerate(ranges):
        sql, values = query.sql()
        # A subquery each: ORDER BY and LIMIT may not sit on a UNION's arms in SQLite.
        parts.append(f"SELECT * FROM ({sql}) AS range{n}")  # noqa: S608 (peewee's own SQL)
        params.extend(values)
    union = " UNION ALL ".join(parts)
    # ``limit`` is an int (checked by the caller); the rest is fixed text.
    sql = (
        f"SELECT * FROM ({union}) AS page "  # noqa: S608
        f'ORDER BY "priority" DESC, "created_at", "id" LIMIT {int(limit)}'
    )
    return sql, params


def live_remote_ids_query(jobs: type[JobRow], provider: str) -> peewee.ModelSelect[Any]:
    """``(id, remote_id)`` of the provider's unfinished jobs that have a remote id.

    Read from the remote resume index alone (it ends with ``remote_id``), in resume order.
    """
    return (
        _live(jobs, provider, has_remote_id=True)
        .select(jobs.id, jobs.remote_id)
        .order_by(jobs.priority.desc(), jobs.created_at, jobs.id)
    )


def _ranges(
    jobs: type[JobRow], provider: str, after: ResumeKey | None, limit: int, has_remote_id: bool
) -> list[peewee.ModelSelect[Any]]:
    in_order = (jobs.priority.desc(), jobs.created_at, jobs.id)
    if after is None:
        return [_live(jobs, provider, has_remote_id).order_by(*in_order).limit(limit)]
    priority, created_at, job_id = after
    rest_of_priority = (
        _live(jobs, provider, has_remote_id)
        .where(
            jobs.priority == priority,
            peewee.Tuple(jobs.created_at, jobs.id) > peewee.Tuple(created_at, job_id),
        )
        .order_by(jobs.created_at, jobs.id)
        .limit(limit)
    )
    lower_priorities = (
        _live(jobs, provider, has_remote_id)
        .where(jobs.priority < priority)
        .order_by(*in_order)
        .limit(limit)
    )
    return [rest_of_priority, lower_priorities]


def _live(jobs: type[JobRow], provider: str, has_remote_id: bool) -> peewee.ModelSelect[Any]:
    # LIVE_JOBS and the remote-id test repeat the WHERE of the partial index
    # word for word: SQLite uses one only then (see ``LIVE_JOBS``).
    return jobs.select().where(
        jobs.provider == provider,
        peewee.SQL(LIVE_JOBS),
        jobs.remote_id.is_null(not has_remote_id),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
