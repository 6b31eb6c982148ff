"""Clearing finished jobs in chunks: ``delete_terminal(statuses, limit=...)``."""

from __future__ import annotations

import pytest
from persistence_helpers import (
    POSTGRES_URL,
    happy_path,
    make_job,
    needs_postgres,
    query_plan,
    recorded_sql,
)

from persistence import JobStore
from persistence._database import execute
from providers._errors import ValidationError
from providers._status import JobStatus


def history_rows(store: JobStore) -> int:
    table = store.tables.transitions._meta.table_name
    counted: int = execute(store.database, f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return counted


@pytest.fixture
def finished(store: JobStore) -> None:
    """12 completed jobs with 4 transitions each, 3 failed, 2 cancelled, 4 still running."""
    changes = [happy_path(make_job(f"done{n:02d}", created_at=n), n) for n in range(12)]
    changes += [(make_job(f"failed{n}", status=JobStatus.FAILED), []) for n in range(3)]
    changes += [(make_job(f"cancelled{n}", status=JobStatus.CANCELLED), []) for n in range(2)]
    changes += [(make_job(f"live{n}", status=JobStatus.DOWNLOADING), []) for n in range(4)]
    store.save_batch(changes)


@pytest.mark.usefixtures("finished")
def test_chunks_delete_at_most_limit_jobs_until_fewer_come_back(store: JobStore) -> None:
    chunks: list[int] = []
    while not chunks or chunks[-1] == 5:
        chunks.append(store.delete_terminal([JobStatus.COMPLETED], limit=5))
    assert chunks == [5, 5, 2]
    assert store.count(status=JobStatus.COMPLETED) == 0
    assert history_rows(store) == 0  # every deleted job took its history along
    assert store.count() == 9
    assert store.delete_terminal(limit=5) == 0


@pytest.mark.usefixtures("finished")
def test_a_chunk_deletes_only_its_own_jobs_history(store: JobStore) -> None:
    assert store.delete_terminal(limit=3) == 3
    survivors = [job.id for job in store.list(status=JobStatus.COMPLETED)]
    assert len(survivors) == 9
    assert history_rows(store) == 9 * 4
    for job_id in survivors:
        assert len(store.transitions(job_id)) == 4


@pytest.mark.usefixtures("finished")
def test_chunks_take_several_statuses_and_leave_running_jobs(store: JobStore) -> None:
    statuses = [JobStatus.FAILED, JobStatus.CANCELLED]
    assert store.delete_terminal(statuses, limit=4) == 4
    assert store.delete_terminal(statuses, limit=4) == 1
    assert store.count(status=statuses) == 0
    assert store.count(status=JobStatus.DOWNLOADING) == 4
    assert store.count(status=JobStatus.COMPLETED) == 12


@pytest.mark.usefixtures("finished")
def test_without_a_limit_everything_goes_at_once(store: JobStore) -> None:
    assert store.delete_terminal(limit=None) == 12
    assert store.delete_terminal([]) == 0
    assert store.delete_terminal([], limit=5) == 0


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_a_chunk_size_below_one_is_refused(store: JobStore, limit: object) -> None:
    with pytest.raises(ValidationError) as caught:
        store.delete_terminal(limit=limit)  # type: ignore[arg-type]
    assert caught.value.field == "limit"


def test_chunks_still_refuse_unfinished_statuses(store: JobStore) -> None:
    store.save(make_job("running", status=JobStatus.RESOLVING))
    with pytest.raises(ValidationError, match="resolving"):
        store.delete_terminal([JobStatus.RESOLVING], limit=10)
    assert store.count() == 1


def test_a_chunk_of_many_thousands_is_deleted(store: JobStore) -> None:
    # More ids than one IN (...) list takes, so the delete goes in several lists.
    store.save_batch(
        [(make_job(f"j{n:05d}", status=JobStatus.COMPLETED), ()) for n in range(6_000)]
    )
    assert store.delete_terminal(limit=5_000) == 5_000
    assert store.delete_terminal(limit=5_000) == 1_000
    assert store.count() == 0


def test_sqlite_picks_a_chunk_on_the_status_index_and_deletes_by_id(
    sqlite_store: JobStore,
) -> None:
    sqlite_store.save_batch(
        [(make_job(f"j{n}", status=JobStatus.COMPLETED), ()) for n in range(20)]
    )
    with recorded_sql(sqlite_store) as statements:
        assert sqlite_store.delete_terminal([JobStatus.COMPLETED, JobStatus.FAILED], limit=7) == 7
    reads = [sql for sql in statements if sql.startswith("SELECT")]
    deletes = [sql for sql in statements if sql.startswith("DELETE")]
    assert len(reads) == 1 and reads[0].endswith("LIMIT 7")
    plan = query_plan(sqlite_store, reads[0])
    assert "USING INDEX jobs_status (status=?)" in plan
    assert "SCAN" not in plan
    for sql in deletes:  # by job id: the primary key, or the history's job_id index
        delete_plan = query_plan(sqlite_store, sql)
        assert "SCAN" not in delete_plan, (sql, delete_plan)


@pytest.mark.postgres
@needs_postgres
def test_postgresql_picks_a_chunk_of_few_finished_jobs_on_the_status_index(
    postgres_prefix: str,
) -> None:
    with JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as store:
        table = store.tables.jobs._meta.table_name
        # 20,000 jobs of which 1% are finished, written in one statement.
        execute(
            store.database,
            f'INSERT INTO "{table}" (id, provider, status, priority, progress, payload, files, '
            "metadata, attempt, submitted, created_at, updated_at) "
            "SELECT 'j' || i, 'mock', CASE WHEN mod(i, 100) = 0 THEN 'completed' ELSE 'queued' "
            "END, 0, 0, '{}', '[]', '{}', 1, false, i, i FROM generate_series(0, 19999) AS i",
        )
        execute(store.database, f'ANALYZE "{table}"')
        sql, params = store._finished_chunk(["completed", "failed"], 50).sql()
        plan = "\n".join(row[0] for row in execute(store.database, "EXPLAIN " + sql, params))
        assert f"{table}_status" in plan, plan  # an index scan, or a bitmap one
        assert "Seq Scan" not in plan, plan
        assert [store.delete_terminal(limit=50) for _ in range(5)] == [50, 50, 50, 50, 0]
        assert store.count() == 19_800
