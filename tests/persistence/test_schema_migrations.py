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


WITH_STEP_2 = (*MIGRATIONS, Migration(2, "add jobs.note", add_note_column))


def test_a_new_database_is_at_the_current_version(db_path: Path) -> None:
    with JobStore(db_path) as store:
        assert store.schema_version == SCHEMA_VERSION == 1
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
    assert "job_transitions_job_id" in history_indexes


def test_new_step_is_applied_and_existing_rows_survive(db_path: Path) -> None:
    changes = [happy_path(make_job(f"j{n}", created_at=n), n) for n in range(20)]
    with JobStore(db_path) as store:
        store.save_batch(changes)

    database = open_database(db_path)
    try:
        assert migrate(database, migrations=WITH_STEP_2) == 2
        tables = bind_tables(database)
        assert tables.jobs.select().count() == 20
        notes = {row[0] for row in execute(database, "SELECT note FROM jobs").fetchall()}
        history = execute(database, "SELECT count(*) FROM job_transitions").fetchone()[0]
    finally:
        close_database(database)

    assert "note" in columns(db_path, "jobs")
    assert notes == {"migrated"}
    assert history == 80
    assert stored_version(db_path) == [2]


def test_database_newer_than_the_code_is_refused_and_left_intact(db_path: Path) -> None:
    with JobStore(db_path) as store:
        store.save(make_job("keep-me"))
    database = open_database(db_path)
    try:
        migrate(database, migrations=WITH_STEP_2)
    finally:
        close_database(database)

    with pytest.raises(StoreError, match=r"schema version 2, newer than .* \(1\)") as caught:
        JobStore(db_path)
    assert str(db_path) in str(caught.value)
    assert stored_version(db_path) == [2]
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
        with pytest.raises(StoreError, match="schema version 2"):
            migrate(database, migrations=(*MIGRATIONS, Migration(2, "broken", half_done)))
    finally:
        close_database(database)

    assert stored_version(db_path) == [1]
    assert "note" not in columns(db_path, "jobs")  # the DDL was rolled back too
    with JobStore(db_path) as store:
        assert store.get("a") == make_job("a")


def test_steps_must_be_numbered_from_one_without_gaps(db_path: Path) -> None:
    database = open_database(db_path)
    try:
        with pytest.raises(ValueError, match="without gaps"):
            migrate(database, migrations=(*MIGRATIONS, Migration(3, "skips 2", add_note_column)))
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
