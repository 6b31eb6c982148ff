"""Versioned migrations: applied once, in order, atomically; never a downgrade, never data loss."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from persistence_helpers import happy_path, make_job

from persistence import SCHEMA_VERSION, JobStore, open_database
from persistence._database import close_database, execute
from persistence._migrations import MIGRATIONS, Migration, MigrationContext, migrate
from persistence._models import bind_tables
from providers._errors import StoreError


def stored_version(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version")]


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def add_note_column(ctx: MigrationContext) -> None:
    execute(ctx.database, f'ALTER TABLE "{ctx.table("jobs")}" ADD COLUMN note TEXT')
    execute(ctx.database, f"UPDATE \"{ctx.table('jobs')}\" SET note = 'migrated'")


NEXT = SCHEMA_VERSION + 1
WITH_NEXT_STEP = (*MIGRATIONS, Migration(NEXT, "add jobs.note", add_note_column))


def index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }


def test_a_new_database_is_at_the_current_version(db_path: Path) -> None:
    with JobStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION == 7
    assert stored_version(db_path) == [SCHEMA_VERSION]


def test_reopening_runs_no_step_twice(db_path: Path) -> None:
    runs: list[int] = []

    def counted(ctx: MigrationContext) -> None:
        runs.append(1)
        MIGRATIONS[0].apply(ctx)

    steps = (Migration(1, "counted", counted),)
    for _ in range(3):
        database = open_database(db_path)
        try:
            assert migrate(database, migrations=steps) == 1
        finally:
            close_database(database)
    assert runs == [1]
    assert stored_version(db_path) == [1]


def test_migrated_schema_matches_models(db_path: Path) -> None:
    # The models follow the latest version; the steps must build exactly that.
    with JobStore(db_path) as store:
        for model in store.tables.all:
            table = model._meta.table_name
            assert set(columns(db_path, table)) == set(model._meta.columns), table
        indexes = {index.name for index in store.database.get_indexes("jobs")}
        history_indexes = {index.name for index in store.database.get_indexes("job_transitions")}
    for column in ("provider", "status", "priority", "remote_id", "created_at", "updated_at"):
        assert f"jobs_{column}" in indexes
    assert {"jobs_resume_remote", "jobs_resume_local"} <= indexes
    assert "job_transitions_job_id" in history_indexes


def test_new_step_is_applied_and_existing_rows_survive(db_path: Path) -> None:
    changes = [happy_path(make_job(f"j{n}", created_at=n), n) for n in range(20)]
    with JobStore(db_path) as store:
        store.save_batch(changes)

    database = open_database(db_path)
    try:
        assert migrate(database, migrations=WITH_NEXT_STEP) == NEXT
        tables = bind_tables(database)
        assert tables.jobs.select().count() == 20
        notes = {row[0] for row in execute(database, "SELECT note FROM jobs").fetchall()}
        history = execute(database, "SELECT count(*) FROM job_transitions").fetchone()[0]
    finally:
        close_database(database)

    assert "note" in columns(db_path, "jobs")
    assert notes == {"migrated"}
    assert history == 80
    assert stored_version(db_path) == [NEXT]


def test_database_newer_than_the_code_is_refused_and_left_intact(db_path: Path) -> None:
    with JobStore(db_path) as store:
        store.save(make_job("keep-me"))
    database = open_database(db_path)
    try:
        migrate(database, migrations=WITH_NEXT_STEP)
    finally:
        close_database(database)

    newer = rf"schema version {NEXT}, newer than .* \({SCHEMA_VERSION}\)"
    with pytest.raises(StoreError, match=newer) as caught:
        JobStore(db_path)
    assert str(db_path) in str(caught.value)
    assert stored_version(db_path) == [NEXT]
    assert "note" in columns(db_path, "jobs")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT id FROM jobs").fetchall() == [("keep-me",)]


def test_failing_step_changes_nothing(db_path: Path) -> None:
    with JobStore(db_path) as store:
        store.save(make_job("a"))

    def half_done(ctx: MigrationContext) -> None:
        add_note_column(ctx)
        execute(ctx.database, "ALTER TABLE no_such_table ADD COLUMN x TEXT")

    database = open_database(db_path)
    try:
        with pytest.raises(StoreError, match=f"schema version {NEXT}"):
            migrate(database, migrations=(*MIGRATIONS, Migration(NEXT, "broken", half_done)))
    finally:
        close_database(database)

    assert stored_version(db_path) == [SCHEMA_VERSION]
    assert "note" not in columns(db_path, "jobs")  # the DDL was rolled back too
    with JobStore(db_path) as store:
        assert store.get("a") == make_job("a")


def test_steps_must_be_numbered_from_one_without_gaps(db_path: Path) -> None:
    database = open_database(db_path)
    try:
        with pytest.raises(ValueError, match="without gaps"):
            skipping = Migration(NEXT + 1, "skips one", add_note_column)
            migrate(database, migrations=(*MIGRATIONS, skipping))
    finally:
        close_database(database)


def test_prefixed_stores_migrate_their_own_tables(db_path: Path) -> None:
    with JobStore(db_path) as plain, JobStore(db_path, table_prefix="other_") as other:
        plain.save(make_job("plain"))
        other.save(make_job("other"))
        assert [job.id for job in plain.list()] == ["plain"]
        assert [job.id for job in other.list()] == ["other"]
    assert "other_schema_version" in {
        row[0] for row in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")
    }


def version_1_store(path: Path, prefix: str = "") -> None:
    """A store as version 1 left it, with jobs in every state, some at their provider."""
    database = open_database(path)
    try:
        assert migrate(database, prefix, migrations=MIGRATIONS[:1]) == 1
    finally:
        close_database(database)


def test_version_1_store_gains_the_resume_indexes_and_provider_state(db_path: Path) -> None:
    version_1_store(db_path)
    assert stored_version(db_path) == [1]
    # Rows written by code that knew only version 1 (plain SQL: JobStore would migrate).
    with sqlite3.connect(db_path) as conn:
        for n, status in enumerate(["queued", "downloading", "completed", "resolving"]):
            conn.execute(
                "INSERT INTO jobs (id, provider, status, priority, progress, payload, files, "
                "metadata, attempt, remote_id, submitted, created_at, updated_at) "
                "VALUES (?, 'mock', ?, ?, 0, ?, '[]', '{}', 1, ?, 0, ?, ?)",
                (
                    f"j{n}",
                    status,
                    n % 2,
                    f'{{"url": "https://example.com/{n}"}}',
                    None if n % 2 == 0 else f"R{n}",
                    n,
                    n,
                ),
            )
    assert "provider_state" not in {
        row[0] for row in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")
    }

    with JobStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION == 7
        assert [job.id for job in store.non_terminal_page("mock", after=None, limit=9)] == [
            "j1",
            "j3",
            "j0",
        ]
        assert store.live_remote_ids("mock") == [("j1", "R1"), ("j3", "R3")]
        store.save_provider_state("mock", 4)
        assert store.provider_states() == {"mock": 4}
    assert stored_version(db_path) == [SCHEMA_VERSION]
    assert {"jobs_resume_remote", "jobs_resume_local", "jobs_completed_items"} <= index_names(
        db_path
    )
    assert set(columns(db_path, "provider_state")) == {"name", "slot_limit", "updated_at"}


def test_each_step_moves_one_version(db_path: Path) -> None:
    for version in range(1, SCHEMA_VERSION + 1):
        database = open_database(db_path)
        try:
            assert migrate(database, migrations=MIGRATIONS[:version]) == version
        finally:
            close_database(database)
        assert stored_version(db_path) == [version]
    assert {"jobs_resume_remote", "jobs_resume_local"} <= index_names(db_path)


def test_prefixed_stores_get_their_own_indexes_and_provider_state(db_path: Path) -> None:
    version_1_store(db_path, "other_")
    with JobStore(db_path, table_prefix="other_"), JobStore(db_path):
        pass
    names = index_names(db_path)
    for prefix in ("", "other_"):
        assert {f"{prefix}jobs_resume_remote", f"{prefix}jobs_resume_local"} <= names
        assert f"{prefix}provider_state" in {
            row[0] for row in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master")
        }


def test_version_5_jobs_become_searchable_by_what_they_hold(db_path: Path) -> None:
    database = open_database(db_path)
    try:
        assert migrate(database, "", migrations=MIGRATIONS[:5]) == 5
    finally:
        close_database(database)
    files = '[{"id": 0, "name": "Sintel/Sintel.MKV", "size": 1}]'
    rows = [
        ("a", '{"url": "https://example.com/CAFÉ.zip", "download_dir": "C:\\\\Films"}', "[]"),
        ("b", '{"magnet": "magnet:?xt=urn:btih:' + "ab" * 20 + '&dn=Big+Buck"}', files),
        ("c", "not json", "[]"),
    ]
    with sqlite3.connect(db_path) as conn:
        for job_id, payload, job_files in rows:
            conn.execute(
                "INSERT INTO jobs (id, provider, status, priority, progress, payload, files, "
                "metadata, attempt, remote_id, submitted, created_at, updated_at) "
                "VALUES (?, 'mock', 'queued', 0, 0, ?, ?, '{}', 1, NULL, 0, 1, 1)",
                (job_id, payload, job_files),
            )
    database = open_database(db_path)
    try:
        assert migrate(database, "") == SCHEMA_VERSION
        found = dict(execute(database, "SELECT id, search FROM jobs").fetchall())
    finally:
        close_database(database)
    assert "café.zip" in found["a"] and "c:\\films" in found["a"]
    assert "big buck" in found["b"] and "sintel/sintel.mkv" in found["b"]
    assert found["c"] == "c"
    assert "url" not in found["a"].replace("https://", "")
