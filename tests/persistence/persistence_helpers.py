"""Jobs for the persistence tests (a plain module: test modules import it, unlike conftest)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from persistence import JobStore
from providers._job import Job, JobErrorInfo, JobFile, Transition
from providers._payload import FileSelection, StartJobPayload
from providers._status import JobStatus

POSTGRES_ENV = "DEBRID_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_ENV, "")
SKIP_REASON = f"set {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test) to run"
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason=SKIP_REASON)

MakeJob = Callable[..., Job]


def make_job(
    job_id: str,
    *,
    status: JobStatus = JobStatus.QUEUED,
    provider: str = "mock",
    priority: int = 0,
    created_at: int = 1_700_000_000_000,
    **changes: Any,
) -> Job:
    """A plain URL job; ``changes`` override any other field."""
    payload = changes.pop("payload", StartJobPayload(url=f"https://example.com/{job_id}.zip"))
    if priority:
        payload = StartJobPayload(
            url=payload.url,
            magnet=payload.magnet,
            torrent=payload.torrent,
            select=payload.select,
            download_dir=payload.download_dir,
            connections=payload.connections,
            only_if_cached=payload.only_if_cached,
            priority=priority,
        )
    return Job(
        id=job_id,
        provider=provider,
        status=status,
        payload=payload,
        created_at=created_at,
        updated_at=changes.pop("updated_at", created_at),
        **changes,
    )


def rich_job(job_id: str = "job-rich") -> Job:
    """A FAILED torrent job with every field set, for exact round trips."""
    return Job(
        id=job_id,
        provider="realdebrid",
        status=JobStatus.FAILED,
        payload=StartJobPayload(
            # Bytes that are not UTF-8, so that a lossy text path would show.
            torrent=b"d8:announce\xff\x00\x80:info4:spame",
            select=FileSelection(ids=(1, 3), globs=("*.mkv", "*.srt"), min_size=1_048_576),
            download_dir="/data/downloads",
            connections=4,
            only_if_cached=True,
            priority=7,
        ),
        progress=42.125,
        files=(
            JobFile(1, "Show/S01E01.mkv", 1_500_000_000, "https://dl/1", True, "/d/1", 7, "c0ffee"),
            JobFile(2, "Show/sample.mkv", 10, None, False),
            JobFile(3, "Show/Ünïcødé ✓.srt", 2_000, "https://dl/3", True, None, 2_000, None),
        ),
        metadata={"hash": "abc", "nested": {"list": [1, 2.5, None, True, "x"]}, "count": 3},
        error=JobErrorInfo("PROVIDER_UNAVAILABLE", "Real-Debrid answered 503 three times"),
        attempt=3,
        remote_id="RD123",
        submitted=True,
        created_at=1_700_000_000_000,
        updated_at=1_700_000_123_456,
    )


def happy_path(job: Job, at: int) -> tuple[Job, list[Transition]]:
    """``job`` created and walked to COMPLETED: the job and its 4 transitions."""
    created = Transition(job.id, job.attempt, None, JobStatus.QUEUED, at)
    done, steps = job.advance(JobStatus.COMPLETED, at + 1, progress=100.0)
    return done, [created, *steps]


def sqlite_connection(store: JobStore) -> sqlite3.Connection:
    """The calling thread's sqlite3 connection of ``store`` (opened if need be)."""
    conn = store.database.connection()  # type: ignore[no-untyped-call]
    assert isinstance(conn, sqlite3.Connection)
    return conn


@contextmanager
def recorded_sql(store: JobStore) -> Iterator[list[str]]:
    """Every statement the calling thread's SQLite connection of ``store`` runs, values inlined."""
    conn = sqlite_connection(store)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        conn.set_trace_callback(None)


def query_plan(store: JobStore, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> str:
    """SQLite's plan for ``sql``: one line per step (``SEARCH t1 USING INDEX ...``)."""
    rows = sqlite_connection(store).execute("EXPLAIN QUERY PLAN " + sql, tuple(params))
    return "\n".join(str(row[3]) for row in rows)
