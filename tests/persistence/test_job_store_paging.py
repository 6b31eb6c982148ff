"""Resuming in pages: ``non_terminal_page``, ``resume_key`` and ``live_remote_ids``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from persistence_helpers import (
    POSTGRES_URL,
    make_job,
    needs_postgres,
    query_plan,
    recorded_sql,
)

from persistence import JobStore
from persistence._database import execute
from persistence._migrations import LIVE_JOBS
from persistence._resume import page_query
from providers import StartJobPayload
from providers._errors import ValidationError
from providers._job import Job
from providers._status import JobStatus

LIVE = (JobStatus.QUEUED, JobStatus.RESOLVING, JobStatus.DOWNLOADING)


def ids(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


def every_page(
    store: JobStore, provider: str, limit: int, with_remote_id: bool | None = None
) -> list[list[Job]]:
    """All pages, each started after the key of the last job of the one before."""
    pages: list[list[Job]] = []
    after = None
    while True:
        page = store.non_terminal_page(
            provider, after=after, limit=limit, with_remote_id=with_remote_id
        )
        pages.append(page)
        if len(page) < limit:
            return pages
        after = store.resume_key(page[-1])


@pytest.fixture
def backlog(store: JobStore) -> list[Job]:
    """60 jobs of "mock" (ties on priority and creation time, every state) and 10 of "torbox"."""
    jobs = []
    for n in range(60):
        status = [*LIVE, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED][n % 6]
        jobs.append(
            make_job(
                f"m{(n * 37) % 60:02d}",  # ids out of creation order
                status=status,
                priority=[0, 5, -3][n % 7 % 3],
                created_at=1_000 + n // 4,  # four jobs per millisecond
                remote_id=f"R{n}" if n % 4 in (1, 2) else None,
            )
        )
    jobs += [make_job(f"t{n}", provider="torbox", created_at=n, remote_id="X") for n in range(10)]
    # Saved out of order, so that the order is the store's doing.
    store.save_batch([(job, ()) for job in reversed(jobs)])
    return jobs


def test_pages_put_together_are_non_terminal_in_order(store: JobStore, backlog: list[Job]) -> None:
    expected = store.non_terminal("mock")
    assert len(expected) == 30
    for limit in (1, 4, 7, 30, 31, 100):
        pages = every_page(store, "mock", limit)
        assert [job for page in pages for job in page] == expected, limit
        assert all(len(page) == limit for page in pages[:-1])


@pytest.mark.parametrize("with_remote_id", [True, False])
def test_pages_of_one_kind_hold_only_jobs_with_or_without_a_remote_id(
    store: JobStore, backlog: list[Job], with_remote_id: bool
) -> None:
    expected = [
        job for job in store.non_terminal("mock") if (job.remote_id is not None) == with_remote_id
    ]
    assert 0 < len(expected) < 30
    pages = every_page(store, "mock", 4, with_remote_id)
    assert [job for page in pages for job in page] == expected


def test_the_first_page_is_the_head_of_non_terminal(store: JobStore, backlog: list[Job]) -> None:
    assert store.non_terminal_page("mock", after=None, limit=5) == store.non_terminal(
        "mock", limit=5
    )
    assert ids(store.non_terminal_page("torbox", after=None, limit=3)) == ["t0", "t1", "t2"]
    assert store.non_terminal_page("nobody", after=None, limit=3) == []
    assert store.non_terminal_page("mock", after=None, limit=0) == []


def test_a_page_goes_on_after_a_job_that_has_gone(store: JobStore, backlog: list[Job]) -> None:
    first = store.non_terminal_page("mock", after=None, limit=6)
    store.delete([first[-1].id])  # finished and cleared between two pages
    rest = store.non_terminal_page("mock", after=store.resume_key(first[-1]), limit=100)
    assert first[:-1] + rest == store.non_terminal("mock")


def test_resume_key_is_priority_creation_time_and_id() -> None:
    job = make_job("k", priority=-4, created_at=77)
    assert JobStore.resume_key(job) == (-4, 77, "k")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"after": (1, 2)}, "after"),
        ({"after": [0, 1, "x"]}, "after"),
        ({"after": (True, 1, "x")}, "after"),
        ({"after": (0, 1, 2)}, "after"),
        ({"limit": -1}, "limit"),
        ({"limit": None}, "limit"),
        ({"limit": True}, "limit"),
        ({"with_remote_id": "yes"}, "with_remote_id"),
        ({"with_remote_id": 1}, "with_remote_id"),
    ],
)
def test_bad_page_arguments_are_refused(
    store: JobStore, kwargs: dict[str, object], field: str
) -> None:
    arguments: dict[str, object] = {"after": None, "limit": 10, **kwargs}
    with pytest.raises(ValidationError) as caught:
        store.non_terminal_page("mock", **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_live_remote_ids_lists_unfinished_jobs_at_the_provider(
    store: JobStore, backlog: list[Job]
) -> None:
    expected = [
        (job.id, job.remote_id) for job in store.non_terminal("mock") if job.remote_id is not None
    ]
    assert len(expected) > 5
    assert store.live_remote_ids("mock") == expected
    assert store.live_remote_ids("torbox") == [(f"t{n}", "X") for n in range(10)]
    assert store.live_remote_ids("nobody") == []


def test_jobs_move_between_kinds_as_they_change(store: JobStore) -> None:
    job = make_job("a")
    store.save(job)
    assert ids(store.non_terminal_page("mock", after=None, limit=9, with_remote_id=False)) == ["a"]
    submitted, _ = job.advance(JobStatus.RESOLVING, 1, remote_id="R1")
    store.save(submitted)
    assert store.non_terminal_page("mock", after=None, limit=9, with_remote_id=False) == []
    assert store.non_terminal_page("mock", after=None, limit=9, with_remote_id=True) == [submitted]
    assert store.live_remote_ids("mock") == [("a", "R1")]
    done, _ = submitted.advance(JobStatus.COMPLETED, 2)
    store.save(done)
    assert store.non_terminal_page("mock", after=None, limit=9) == []
    assert store.live_remote_ids("mock") == []


def test_the_resume_indexes_hold_exactly_the_unfinished_statuses() -> None:
    # LIVE_JOBS is frozen text in migration 2; the statuses must not drift from it.
    named = set(re.findall(r"'(\w+)'", LIVE_JOBS))
    assert named == {status.value for status in JobStatus if not status.terminal}


# -- bounded: every range is read off a resume index ----------------------------


@pytest.mark.parametrize("with_remote_id", [None, True, False])
@pytest.mark.parametrize("after", [None, (5, 1_003, "m10")])
def test_sqlite_reads_every_page_off_the_resume_indexes(
    sqlite_store: JobStore, with_remote_id: bool | None, after: tuple[int, int, str] | None
) -> None:
    sqlite_store.save_batch([(make_job(f"j{n}", created_at=n), ()) for n in range(50)])
    sql, params = page_query(sqlite_store.tables.jobs, "mock", after, 10, with_remote_id)
    plan = query_plan(sqlite_store, sql, params)
    # "SCAN range0" and its sort read the (limited) output of a range, not the table.
    searches = [line for line in plan.splitlines() if " t1 " in line]
    kinds = {None: 2, True: 1, False: 1}[with_remote_id]
    assert len(searches) == kinds * (1 if after is None else 2), plan
    for line in searches:
        assert re.match(r"SEARCH t1 USING (COVERING )?INDEX jobs_resume_(remote|local) ", line), (
            plan
        )
        assert "provider=?" in line, plan


def test_sqlite_page_and_remote_ids_are_one_statement_each(sqlite_store: JobStore) -> None:
    sqlite_store.save_batch([(make_job(f"j{n}", remote_id=f"R{n}"), ()) for n in range(5)])
    with recorded_sql(sqlite_store) as statements:
        sqlite_store.non_terminal_page("mock", after=(0, 0, "j0"), limit=3)
        sqlite_store.live_remote_ids("mock")
    assert len(statements) == 2
    plan = query_plan(sqlite_store, statements[1])
    assert re.fullmatch(r"SEARCH t1 USING COVERING INDEX jobs_resume_remote \(provider=\?\)", plan)


@pytest.mark.postgres
@needs_postgres
def test_postgresql_reads_pages_off_the_resume_indexes(pg_only_store: JobStore) -> None:
    pg_only_store.save_batch(
        [(make_job(f"j{n:03d}", remote_id=f"R{n}" if n % 2 else None), ()) for n in range(300)]
    )
    execute(pg_only_store.database, f'ANALYZE "{pg_only_store.tables.jobs._meta.table_name}"')
    sql, params = page_query(pg_only_store.tables.jobs, "mock", (0, 0, "j100"), 10, None)
    plan = "\n".join(row[0] for row in execute(pg_only_store.database, "EXPLAIN " + sql, params))
    assert "Seq Scan" not in plan, plan
    assert plan.count("_jobs_resume_") == 4, plan


@pytest.fixture
def pg_only_store(postgres_prefix: str) -> Iterator[JobStore]:
    """A PostgreSQL store (skipped without DEBRID_TEST_POSTGRES_URL)."""
    with JobStore(POSTGRES_URL, table_prefix=postgres_prefix) as store:
        yield store


# -- property: paging never skips, repeats or reorders -----------------------------

_specs = st.lists(
    st.tuples(
        st.sampled_from(list(JobStatus)),
        st.integers(-2, 2),  # few priorities and times: many ties
        st.integers(0, 3),
        st.booleans(),
        st.sampled_from(["mock", "torbox"]),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(specs=_specs, limit=st.integers(1, 8), kind=st.sampled_from([None, True, False]))
def test_paging_returns_each_unfinished_job_once_in_order(
    specs: list[tuple[JobStatus, int, int, bool, str]], limit: int, kind: bool | None
) -> None:
    jobs = [
        make_job(
            f"j{n}",
            status=status,
            priority=priority,
            created_at=created_at,
            remote_id="R" if remote else None,
            provider=provider,
        )
        for n, (status, priority, created_at, remote, provider) in enumerate(specs)
    ]
    with JobStore(":memory:") as store:
        store.save_batch([(job, ()) for job in jobs])
        expected = [
            job
            for job in store.non_terminal("mock")
            if kind is None or (job.remote_id is not None) == kind
        ]
        assert [job for page in every_page(store, "mock", limit, kind) for job in page] == expected


def test_completed_remote_ids_come_most_recent_first_and_only_with_an_id(tmp_path: Path) -> None:
    with JobStore(tmp_path / "jobs.db") as store:
        jobs = [
            Job(
                id=f"c{n}",
                provider="mock",
                status=JobStatus.COMPLETED if n != 2 else JobStatus.FAILED,
                payload=StartJobPayload(url=f"https://example.com/{n}"),
                remote_id=None if n == 3 else f"r{n}",
                created_at=n,
                updated_at=100 - n,
            )
            for n in range(6)
        ]
        store.save_batch([(job, ()) for job in jobs])
        assert store.completed_remote_ids("mock", limit=10) == ["r0", "r1", "r4", "r5"]
        assert store.completed_remote_ids("mock", limit=2) == ["r0", "r1"]
        assert store.completed_remote_ids("other", limit=10) == []
        # When the engine keeps failed jobs' items, those are kept from lookups too.
        assert store.completed_remote_ids("mock", limit=10, failed_too=True) == [
            "r0", "r1", "r2", "r4", "r5"
        ]
        # A retry of a failed job keeps an item another job still holds (review of
        # issue 10: retrying one of two failed jobs on one item deleted the other's).
        assert store.is_completed_item("mock", "r0")
        assert not store.is_completed_item("mock", "r2")
        assert store.is_completed_item("mock", "r2", failed_too=True)
        assert not store.is_completed_item("mock", "r2", failed_too=True, besides="c2")
        assert not store.is_completed_item("mock", "r0", besides="c0")
