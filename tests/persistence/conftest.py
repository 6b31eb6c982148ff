"""Fixtures of the persistence tests: job factories and stores on real databases.

``store`` runs each test that uses it against a SQLite file in ``tmp_path`` and,
when ``DEBRID_TEST_POSTGRES_URL`` is set, against PostgreSQL too (tables under
a unique prefix, dropped afterwards so that runs never collide).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from persistence_helpers import POSTGRES_URL, SKIP_REASON, MakeJob, make_job, needs_postgres

from persistence import JobStore, open_database
from persistence._database import close_database, execute
from persistence._models import TABLE_NAMES


@pytest.fixture
def job_factory() -> MakeJob:
    """``make_job`` as a fixture."""
    return make_job


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's SQLite store lives."""
    return tmp_path / "store" / "jobs.db"


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[JobStore]:
    """A store on a fresh SQLite file."""
    with JobStore(db_path) as store:
        yield store


def drop_postgres_tables(url: str, prefix: str) -> None:
    """Remove the tables of the store under ``prefix``."""
    database = open_database(url)
    try:
        for table in TABLE_NAMES.values():
            execute(database, f'DROP TABLE IF EXISTS "{prefix}{table}"')
    finally:
        close_database(database)


@pytest.fixture
def postgres_prefix() -> Iterator[str]:
    """A table prefix no other run uses; its tables are dropped after the test."""
    if not POSTGRES_URL:
        pytest.skip(SKIP_REASON)
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    yield prefix
    drop_postgres_tables(POSTGRES_URL, prefix)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, needs_postgres])]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    """A fresh store, on each backend available."""
    if request.param == "sqlite":
        with JobStore(tmp_path / "jobs.db") as sqlite:
            yield sqlite
        return
    prefix = request.getfixturevalue("postgres_prefix")
    with JobStore(POSTGRES_URL, table_prefix=prefix) as postgres:
        yield postgres
