"""A store used from many threads: no lost rows, no errors, every connection closed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from persistence_helpers import happy_path, make_job, sqlite_connection

from persistence import JobStore
from persistence._database import execute
from providers._errors import StoreError

THREADS = 8
JOBS_PER_THREAD = 200


def run_threads(count: int, work: Callable[[int], Any]) -> list[BaseException]:
    """Run ``work(n)`` on ``count`` threads released together; return what they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(n,), name=f"writer-{n}") for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors


def save_jobs_of_thread(store: JobStore, n: int) -> None:
    for i in range(JOBS_PER_THREAD):
        job, steps = happy_path(make_job(f"t{n}-{i:03d}", created_at=i), i)
        store.save(job, steps)


def test_eight_threads_sharing_a_store_lose_no_rows(sqlite_store: JobStore) -> None:
    errors = run_threads(THREADS, lambda n: save_jobs_of_thread(sqlite_store, n))

    assert errors == []
    assert sqlite_store.count() == THREADS * JOBS_PER_THREAD
    expected = {f"t{n}-{i:03d}" for n in range(THREADS) for i in range(JOBS_PER_THREAD)}
    assert set(sqlite_store.get_many(expected)) == expected
    assert all(len(sqlite_store.transitions(job_id)) == 4 for job_id in ("t0-000", "t7-199"))


def test_eight_threads_with_a_store_each_on_one_file_lose_no_rows(db_path: Path) -> None:
    # Separate stores share no Python lock: only SQLite's locking keeps them
    # apart, as it does separate processes.
    JobStore(db_path).close()

    def work(n: int) -> None:
        with JobStore(db_path) as own:
            save_jobs_of_thread(own, n)

    errors = run_threads(THREADS, work)

    assert errors == []
    with JobStore(db_path) as store:
        assert store.count() == THREADS * JOBS_PER_THREAD
        rows = execute(store.database, "SELECT count(*) FROM job_transitions").fetchone()[0]
        assert rows == THREADS * JOBS_PER_THREAD * 4


def test_readers_see_a_growing_count_while_writers_write(sqlite_store: JobStore) -> None:
    readers = range(0, THREADS, 2)
    seen: dict[int, list[int]] = {n: [] for n in readers}

    def work(n: int) -> None:
        if n in seen:
            for _ in range(300):
                seen[n].append(sqlite_store.count())
        else:
            save_jobs_of_thread(sqlite_store, n)

    errors = run_threads(THREADS, work)

    assert errors == []
    for counts in seen.values():
        # WAL: readers never wait for the writer and never see a count go back.
        assert counts == sorted(counts)
    assert sqlite_store.count() == (THREADS - len(readers)) * JOBS_PER_THREAD


def test_close_closes_the_connection_of_every_thread(db_path: Path) -> None:
    store = JobStore(db_path)
    connections: list[sqlite3.Connection] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        store.save(make_job(f"j{n}"))
        with lock:
            connections.append(sqlite_connection(store))

    assert run_threads(4, work) == []
    assert len({id(conn) for conn in connections}) == 4  # one connection per thread

    store.close()

    for conn in connections:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            conn.execute("SELECT 1")


def test_a_thread_using_a_closed_store_gets_store_error(sqlite_store: JobStore) -> None:
    sqlite_store.save(make_job("a"))
    sqlite_store.close()
    errors = run_threads(2, lambda n: sqlite_store.get("a"))
    assert len(errors) == 2
    assert all(isinstance(error, StoreError) for error in errors)


def test_in_memory_store_is_shared_by_all_threads() -> None:
    with JobStore("sqlite:///:memory:") as store:
        errors = run_threads(4, lambda n: save_jobs_of_thread(store, n))
        assert errors == []
        assert store.count() == 4 * JOBS_PER_THREAD


def test_connections_of_ended_threads_do_not_pile_up(sqlite_store: JobStore) -> None:
    # One short-lived thread per request, as an HTTP server has.
    sqlite_store.save(make_job("a"))
    for _ in range(20):
        assert run_threads(1, lambda n: sqlite_store.get("a")) == []
    registry = sqlite_store.database.registry  # type: ignore[attr-defined]
    # This thread's own, and the last ended thread's (closed at the next opening).
    assert len(registry) <= 2


def test_close_waits_for_the_reads_in_flight_and_refuses_new_ones(db_path: Path) -> None:
    """CI found it: an engine giving up closed its store while ``health()`` counted jobs
    on another thread, and closing a SQLite connection under a running statement
    crashed the process (a segmentation fault). A read in flight now delays the close;
    a read after it is a StoreError."""
    store = JobStore(db_path)
    store.save(make_job("j1"))
    inside, leave, closed = threading.Event(), threading.Event(), threading.Event()

    def read() -> None:
        with store._reading("hold a read open"):
            inside.set()
            leave.wait(10)
            execute(store.database, "SELECT 1")  # this thread's connection is still open

    def close() -> None:
        store.close()
        closed.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert inside.wait(10)
    closer = threading.Thread(target=close)
    closer.start()
    assert not closed.wait(0.2)  # waits for the read (a bounded check that it did not close)
    leave.set()
    reader.join(10)
    assert closed.wait(10)
    closer.join(10)
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_reads_on_many_threads_while_the_store_closes_never_crash(db_path: Path) -> None:
    store = JobStore(db_path)
    store.save_batch([(make_job(f"j{i}"), ()) for i in range(50)])
    started = threading.Barrier(5)

    def work(index: int) -> None:
        if index == 4:
            started.wait(10)
            store.close()
            return
        started.wait(10)
        for _ in range(200):
            try:
                store.count()
                store.list(limit=10)
            except StoreError:
                return  # closed: the answer a caller gets

    assert run_threads(5, work) == []
