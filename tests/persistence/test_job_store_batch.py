"""Batched writes: one transaction per ``save_batch``, all or nothing, and fast."""

from __future__ import annotations

from pathlib import Path

import pytest
from persistence_helpers import happy_path, make_job, sqlite_connection

from persistence import JobStore
from persistence._database import execute
from providers._errors import StoreError
from providers._job import Job, Transition


def batch(count: int, prefix: str = "job") -> list[tuple[Job, list[Transition]]]:
    """``count`` jobs, each created and walked to COMPLETED (4 transitions each)."""
    return [happy_path(make_job(f"{prefix}-{n:05d}", created_at=n), n) for n in range(count)]


def test_batch_of_1000_jobs_is_written_in_one_transaction(sqlite_store: JobStore) -> None:
    statements: list[str] = []
    # The trace callback sees every statement this thread's connection runs.
    sqlite_connection(sqlite_store).set_trace_callback(statements.append)
    try:
        sqlite_store.save_batch(batch(1_000))
    finally:
        sqlite_connection(sqlite_store).set_trace_callback(None)

    control = [
        s.split()[0].upper()
        for s in statements
        if s.split()[0].upper() in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}
    ]
    assert control == ["BEGIN", "COMMIT"]
    assert sqlite_store.count() == 1_000
    assert len(sqlite_store.transitions("job-00999")) == 4


def test_failure_in_the_middle_of_a_batch_leaves_nothing_written(sqlite_store: JobStore) -> None:
    before = make_job("job-00000")
    sqlite_store.save(before)
    # A database-side failure at the 501st row, after 500 rows were written.
    execute(
        sqlite_store.database,
        "CREATE TRIGGER poison BEFORE INSERT ON jobs WHEN NEW.id = 'job-00500' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
    )

    with pytest.raises(StoreError, match="poisoned row"):
        sqlite_store.save_batch(batch(1_000))

    # Not even the rows before the failure, nor the update of the existing job.
    assert sqlite_store.count() == 1
    assert sqlite_store.get("job-00000") == before
    assert sqlite_store.transitions("job-00000") == []


def test_store_keeps_working_after_a_failed_batch(sqlite_store: JobStore) -> None:
    execute(
        sqlite_store.database,
        "CREATE TRIGGER poison BEFORE INSERT ON jobs WHEN NEW.id = 'bad' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
    )
    with pytest.raises(StoreError):
        sqlite_store.save(make_job("bad"))
    sqlite_store.save(make_job("good"))
    assert [job.id for job in sqlite_store.list()] == ["good"]


def test_10000_jobs_with_4_transitions_each_are_all_stored_in_batches(tmp_path: Path) -> None:
    # How fast is a benchmark's business (tests/benchmarks/bench_store.py).
    changes = batch(10_000)
    with JobStore(tmp_path / "jobs.db") as store:
        for start in range(0, len(changes), 2_500):
            store.save_batch(changes[start : start + 2_500])
        assert store.count() == 10_000
        rows = execute(store.database, "SELECT count(*) FROM job_transitions").fetchone()[0]
        assert rows == 40_000
