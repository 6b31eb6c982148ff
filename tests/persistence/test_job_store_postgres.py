"""The store on PostgreSQL (needs DEBRID_TEST_POSTGRES_URL; skipped, saying so, without it).

The behaviour tests of ``test_job_store.py`` run here too, through the ``store``
fixture's postgresql parameter; this module adds what is PostgreSQL's own:
batches, atomicity, concurrency, reopening, and two stores in one database.
Every test uses its own table prefix and drops its tables afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from persistence_helpers import POSTGRES_URL, happy_path, make_job, needs_postgres, rich_job

from persistence import SCHEMA_VERSION, JobStore, open_database
from persistence._database import close_database, execute
from persistence._migrations import MIGRATIONS, migrate
from persistence._models import TABLE_NAMES
from providers._errors import StoreError
from providers._status import JobStatus

pytestmark = [pytest.mark.postgres, needs_postgres]


@pytest.fixture
def pg_store(postgres_prefix: str) -> Iterator[JobStore]:
    """A store on PostgreSQL, under the test's own prefix."""
    with JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as store:
        yield store


def test_round_trip_and_reopen_on_postgresql(postgres_prefix: str) -> None:
    job = rich_job()
    done, steps = happy_path(make_job("done"), 5)
    with JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.save(job)
        store.save(done, steps)
    with JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as reopened:
        assert reopened.get(job.id) == job
        assert reopened.transitions("done") == steps
        assert reopened.list(status=JobStatus.COMPLETED) == [done]


def test_batch_of_1000_jobs_saves_with_all_transitions(pg_store: JobStore) -> None:
    changes = [happy_path(make_job(f"j{n:04d}", created_at=n), n) for n in range(1_000)]
    pg_store.save_batch(changes)
    assert pg_store.count() == 1_000
    assert pg_store.list(limit=3, offset=997) == [job for job, _ in changes[997:]]
    assert pg_store.transitions("j0500") == changes[500][1]
    assert pg_store.delete_terminal() == 1_000
    assert pg_store.count() == 0


def test_failure_in_the_middle_of_a_batch_leaves_nothing_written(pg_store: JobStore) -> None:
    table = pg_store.tables.jobs._meta.table_name
    execute(
        pg_store.database,
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_poison" CHECK (id <> \'j0500\')',
    )
    changes = [happy_path(make_job(f"j{n:04d}"), n) for n in range(1_000)]

    with pytest.raises(StoreError, match="poison"):
        pg_store.save_batch(changes)

    assert pg_store.count() == 0
    pg_store.save_batch(changes[:10])  # the store (and its connection) still work
    assert pg_store.count() == 10


def test_eight_threads_saving_200_jobs_each_lose_nothing(pg_store: JobStore) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(200):
                job, steps = happy_path(make_job(f"t{n}-{i:03d}", created_at=i), i)
                pg_store.save(job, steps)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert pg_store.count() == 1_600
    assert len(pg_store.transitions("t7-199")) == 4


def test_two_prefixes_in_one_database_stay_separate(postgres_prefix: str) -> None:
    other_prefix = postgres_prefix + "b_"
    with (
        JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as one,
        JobStore(POSTGRES_URL, table_prefix=other_prefix) as two,
    ):
        try:
            one.save(make_job("a"))
            two.save_batch([(make_job("b"), ()), (make_job("c"), ())])
            assert [job.id for job in one.list()] == ["a"]
            assert [job.id for job in two.list()] == ["b", "c"]
        finally:
            for table in TABLE_NAMES.values():
                execute(two.database, f'DROP TABLE IF EXISTS "{other_prefix}{table}"')


def test_location_hides_the_password(postgres_prefix: str) -> None:
    with JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as store:
        assert store.location.startswith("postgresql://")
        assert repr(store).startswith("<JobStore 'postgresql://")


def test_a_version_1_store_is_migrated_on_postgresql(postgres_prefix: str) -> None:
    database = open_database(POSTGRES_URL)
    try:
        assert migrate(database, postgres_prefix, migrations=MIGRATIONS[:1]) == 1
    finally:
        close_database(database)
    with JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as store:
        assert store.schema_version == SCHEMA_VERSION == 7
        store.save_batch([(make_job("a", remote_id="R"), ()), (make_job("b"), ())])
        assert store.live_remote_ids("mock") == [("a", "R")]
        store.save_provider_state("mock", 2)
        assert store.provider_states() == {"mock": 2}
        table = store.tables.jobs._meta.table_name
        indexes = {index.name for index in store.database.get_indexes(table)}
    assert {f"{table}_resume_remote", f"{table}_resume_local"} <= indexes


@needs_postgres
def test_pending_cleanups_and_completed_items_on_postgresql(postgres_prefix: str) -> None:
    with JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as store:
        store.replace_pending_cleanups("mock", ["r1", "r2", "r1"], ["j1"])
        assert store.pending_cleanups("mock") == (["r1", "r2"], ["j1"])
        store.replace_pending_cleanups("mock", [], [])
        assert store.pending_cleanups("mock") == ([], [])
        # Recorded as they arise: twice is once (ON CONFLICT DO NOTHING), then forgotten.
        store.save_batch([], [("mock", "delete", "r3", True), ("mock", "lookup", "j2", True)])
        store.save_batch([], [("mock", "delete", "r3", True)])
        assert store.pending_cleanups("mock") == (["r3"], ["j2"])
        store.save_batch([], [("mock", "delete", "r3", False), ("mock", "lookup", "j2", False)])
        assert store.pending_cleanups("mock") == ([], [])
        assert store.completed_remote_ids("mock", limit=10) == []


@needs_postgres
def test_search_folds_and_matches_plain_substrings_on_postgresql(pg_store: JobStore) -> None:
    from providers import StartJobPayload  # noqa: PLC0415

    pg_store.save(make_job("cafe", payload=StartJobPayload(url="https://example.com/CAFÉ_1.zip")))
    pg_store.save(make_job("other"))
    assert [job.id for job in pg_store.list(text="café_1")] == ["cafe"]
    assert pg_store.count(text="%") == 0  # not a LIKE wildcard
    assert pg_store.count(text="example.com") == 2
    assert pg_store.count(text="priority") == 0
