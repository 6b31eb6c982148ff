"""Opening stores: locations, SQLite settings, and clear errors for bad files and locks."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest
from persistence_helpers import happy_path, make_job, rich_job

import persistence._database
from persistence import JobStore, open_database
from persistence._database import SQLITE_MEMORY, close_database, execute, sqlite_path
from providers._errors import StoreError, ValidationError


@pytest.fixture
def raw(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the store's file: "another process"."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    yield conn
    conn.close()


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "jobs.db"
    with JobStore(path) as store:
        store.save(make_job("a"))
    assert path.is_file()


def test_reopening_a_file_sees_every_row_and_transition(db_path: Path) -> None:
    changes = [happy_path(make_job(f"j{n:03d}", created_at=n), n) for n in range(300)]
    with JobStore(db_path) as store:
        store.save_batch(changes)
        store.save(rich_job())
    with JobStore(db_path) as reopened:
        assert reopened.count() == 301
        assert reopened.get("job-rich") == rich_job()
        assert reopened.list(limit=300) == [job for job, _ in changes]
        assert reopened.transitions("j299") == changes[299][1]


def test_two_stores_on_two_files_stay_separate(tmp_path: Path) -> None:
    with JobStore(tmp_path / "one.db") as one, JobStore(tmp_path / "two.db") as two:
        one.save(make_job("only-in-one"))
        two.save_batch([(make_job("only-in-two"), ()), (make_job("also-in-two"), ())])
        one.save(make_job("shared-id", provider="one"))
        two.save(make_job("shared-id", provider="two"))

        assert [job.id for job in one.list()] == ["only-in-one", "shared-id"]
        assert sorted(job.id for job in two.list()) == ["also-in-two", "only-in-two", "shared-id"]
        assert one.get("shared-id").provider == "one"
        assert two.get("shared-id").provider == "two"
        one.delete_terminal()
        one.close()
        assert two.count() == 3


def test_sqlite_urls_name_relative_absolute_and_memory_databases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with JobStore("sqlite:///relative/jobs.db") as relative:
        relative.save(make_job("r"))
    assert (tmp_path / "relative" / "jobs.db").is_file()

    absolute = tmp_path / "absolute" / "jobs.db"
    with JobStore(f"sqlite:///{absolute}") as store:  # four slashes: absolute
        store.save(make_job("a"))
    with JobStore(str(absolute)) as same:
        assert same.get("a") == make_job("a")

    with JobStore("sqlite:///:memory:") as memory, JobStore("sqlite:///:memory:") as other:
        memory.save(make_job("m"))
        assert memory.count() == 1
        assert other.count() == 0


def test_home_directory_in_a_path_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with JobStore("~/data/jobs.db") as store:
        assert store.location == str(tmp_path / "data" / "jobs.db")


def test_sqlite_connections_use_wal_and_synchronous_normal(sqlite_store: JobStore) -> None:
    def settings() -> tuple[object, ...]:
        db = sqlite_store.database
        return tuple(
            execute(db, f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        )

    # synchronous 1 is NORMAL; busy_timeout is in milliseconds.
    assert settings() == ("wal", 1, 1, 10_000)
    # Each thread gets its own connection, set up the same way.
    in_thread: list[tuple[object, ...]] = []
    thread = threading.Thread(target=lambda: in_thread.append(settings()))
    thread.start()
    thread.join(timeout=30)
    assert in_thread == [("wal", 1, 1, 10_000)]


def test_busy_timeout_is_configurable(db_path: Path) -> None:
    with JobStore(db_path, busy_timeout=0.25) as store:
        assert execute(store.database, "PRAGMA busy_timeout").fetchone()[0] == 250


@pytest.mark.parametrize(
    "content",
    [
        random.Random(1234).randbytes(8192),
        b"just some notes, not a database\n" * 50,
        b"SQLite format 3\x00" + b"\xff" * 200,  # the right magic, then garbage
    ],
    ids=["random-bytes", "text-file", "damaged-header"],
)
def test_corrupt_file_raises_store_error_naming_the_path(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)

    with pytest.raises(StoreError) as caught:
        JobStore(db_path)

    message = str(caught.value)
    assert str(db_path) in message
    assert "not a SQLite database" in message or "corrupt" in message
    assert db_path.read_bytes() == content  # left as it was, for the user to inspect


def test_directory_in_place_of_the_file_raises_store_error(db_path: Path) -> None:
    db_path.mkdir(parents=True)
    with pytest.raises(StoreError, match="cannot be opened") as caught:
        JobStore(db_path)
    assert str(db_path) in str(caught.value)


def test_opening_a_database_locked_by_another_connection_raises_store_error(
    db_path: Path, raw: sqlite3.Connection
) -> None:
    raw.execute("CREATE TABLE other (x)")
    raw.execute("BEGIN EXCLUSIVE")
    raw.execute("INSERT INTO other VALUES (1)")

    with pytest.raises(StoreError, match="locked") as caught:
        JobStore(db_path, busy_timeout=0.05)
    assert str(db_path) in str(caught.value)

    raw.execute("ROLLBACK")
    with JobStore(db_path) as store:
        assert store.count() == 0


def test_writing_while_another_connection_holds_the_write_lock_raises_store_error(
    db_path: Path, raw: sqlite3.Connection
) -> None:
    with JobStore(db_path, busy_timeout=0.05) as store:
        store.save(make_job("before"))
        raw.execute("BEGIN IMMEDIATE")  # another process is writing

        with pytest.raises(StoreError, match="locked") as caught:
            store.save(make_job("during"))
        assert str(db_path) in str(caught.value)
        # WAL: reading goes on while the other writer holds its lock.
        assert store.count() == 1

        raw.execute("ROLLBACK")
        store.save(make_job("after"))
        assert sorted(job.id for job in store.list()) == ["after", "before"]


def test_open_database_returns_a_checked_peewee_database(db_path: Path) -> None:
    database = open_database(db_path)
    try:
        assert isinstance(database, peewee.SqliteDatabase)
        assert execute(database, "PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        close_database(database)


@pytest.mark.parametrize(
    ("location", "match"),
    [
        ("mysql://user@host/db", "unsupported scheme 'mysql'"),
        ("sqlite://jobs.db", "three slashes"),
        ("", "empty"),
    ],
)
def test_unusable_locations_raise_store_error(location: str, match: str) -> None:
    with pytest.raises(StoreError, match=match):
        open_database(location)


def test_postgresql_without_psycopg_raises_store_error_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(persistence._database, "_have_psycopg", lambda: False)
    with pytest.raises(StoreError, match="psycopg"):
        open_database("postgresql://postgres@127.0.0.1:5432/test")


def test_unreachable_postgresql_raises_store_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    # Port 1 on localhost: refused at once, no waiting on a timeout.
    url = "postgresql://someone:hunter2@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(StoreError) as caught:
        JobStore(url)
    message = str(caught.value)
    assert "hunter2" not in message
    assert "postgresql://someone:***@127.0.0.1:1/test" in message


def test_invalid_table_prefix_is_refused(db_path: Path) -> None:
    with pytest.raises(ValueError, match="table_prefix"):
        JobStore(db_path, table_prefix='x"; DROP TABLE jobs; --')


def test_negative_busy_timeout_is_refused(db_path: Path) -> None:
    with pytest.raises(ValidationError, match="busy_timeout"):
        JobStore(db_path, busy_timeout=-1)


def test_sqlite_path_names_the_file_of_every_sqlite_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sqlite_path(tmp_path / "a.db") == str(tmp_path / "a.db")
    assert sqlite_path("jobs.db") == "jobs.db"
    assert sqlite_path("~/x/jobs.db") == str(tmp_path / "x" / "jobs.db")
    assert sqlite_path("sqlite:///relative/jobs.db") == "relative/jobs.db"
    assert sqlite_path(f"sqlite:///{tmp_path}/abs.db") == f"{tmp_path}/abs.db"
    assert sqlite_path("SQLite:///:memory:") == sqlite_path(":memory:") == SQLITE_MEMORY
    assert sqlite_path("postgresql://u:pw@host/db") is None
    assert sqlite_path("postgres://host/db") is None
    assert not (tmp_path / "x").exists()  # nothing is created


@pytest.mark.parametrize(
    ("location", "match"),
    [("mysql://user@host/db", "unsupported scheme 'mysql'"), ("sqlite://x.db", "three slashes")],
)
def test_sqlite_path_refuses_what_open_database_refuses(location: str, match: str) -> None:
    with pytest.raises(StoreError, match=match):
        sqlite_path(location)
