"""Job-store speed (run by hand; pytest does not collect it).

    .venv/bin/python tests/benchmarks/bench_store.py [--jobs 10000] [--batch 2500]
    .venv/bin/python tests/benchmarks/bench_store.py --big 1000000 [--chunk 5000]

Saves N jobs, each with its four transitions (QUEUED to COMPLETED), in batches
of the given size on a fresh SQLite file, five times, and prints the median and
the range. The supervisor writes one batch per mailbox drain the same way.

``--big`` instead fills a SQLite file with that many jobs (1% of them
unfinished, the rest COMPLETED with four transitions each), then times
``delete_terminal(limit=chunk)`` (one chunk: how long the writer is held) and
``non_terminal_page`` at the head and in the middle of the backlog.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from persistence import JobStore
from persistence._database import execute
from providers import Job, JobStatus, StartJobPayload, Transition

PATH = (None, JobStatus.QUEUED, JobStatus.RESOLVING, JobStatus.DOWNLOADING, JobStatus.COMPLETED)


def changes(count: int) -> list[tuple[Job, list[Transition]]]:
    out = []
    for n in range(count):
        job = Job(
            id=f"job-{n:06d}",
            provider="mock",
            status=JobStatus.COMPLETED,
            payload=StartJobPayload(magnet=f"magnet:?xt=urn:btih:{n:040x}"),
            progress=100.0,
            created_at=n,
            updated_at=n,
        )
        steps = [Transition(job.id, 1, a, b, n) for a, b in itertools.pairwise(PATH)]
        out.append((job, steps))
    return out


def run(count: int, size: int) -> float:
    data = changes(count)
    with tempfile.TemporaryDirectory() as tmp, JobStore(Path(tmp) / "jobs.db") as store:
        start = time.perf_counter()
        for offset in range(0, count, size):
            store.save_batch(data[offset : offset + size])
        return time.perf_counter() - start


def fill(store: JobStore, rows: int) -> None:
    """``rows`` jobs written straight in SQL (JobStore would take minutes for a million)."""
    jobs = store.tables.jobs._meta.table_name
    steps = store.tables.transitions._meta.table_name
    # Every 100th job is unfinished; the others are done, with a 4-step history.
    execute(
        store.database,
        f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {rows - 1})
        INSERT INTO "{jobs}" (id, provider, status, priority, progress, payload, files,
            metadata, attempt, remote_id, submitted, created_at, updated_at)
        SELECT printf('job-%08d', i), 'mock',
            CASE WHEN i % 100 = 0 THEN 'queued' ELSE 'completed' END, i % 3, 0,
            '{{"url": "https://example.com/' || i || '"}}', '[]', '{{}}', 1,
            CASE WHEN i % 200 = 0 THEN 'R' || i END, 0, i, i
        FROM n
        """,
    )
    execute(
        store.database,
        f"""
        INSERT INTO "{steps}" (job_id, attempt, from_status, to_status, at)
        SELECT id, 1, NULL, 'queued', created_at FROM "{jobs}" WHERE status = 'completed'
        UNION ALL SELECT id, 1, 'queued', 'resolving', created_at FROM "{jobs}"
            WHERE status = 'completed'
        UNION ALL SELECT id, 1, 'resolving', 'downloading', created_at FROM "{jobs}"
            WHERE status = 'completed'
        UNION ALL SELECT id, 1, 'downloading', 'completed', created_at FROM "{jobs}"
            WHERE status = 'completed'
        """,
    )
    execute(store.database, "ANALYZE")


def timed(call: Callable[[], object], runs: int = 5) -> tuple[float, object]:
    """The median time of ``runs`` calls, and what the last one returned."""
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def big(rows: int, chunk: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, JobStore(Path(tmp) / "jobs.db") as store:
        start = time.perf_counter()
        fill(store, rows)
        print(f"filled {rows:,} jobs in {time.perf_counter() - start:.1f} s")
        took, deleted = timed(lambda: store.delete_terminal(limit=chunk))
        print(f"delete_terminal(limit={chunk:,}): median {took * 1000:.0f} ms, {deleted:,} jobs")
        head, page = timed(lambda: store.non_terminal_page("mock", after=None, limit=100))
        assert isinstance(page, list)
        middle = store.non_terminal("mock")[rows // 200]  # half way through the backlog
        key = store.resume_key(middle)
        deep, _ = timed(lambda: store.non_terminal_page("mock", after=key, limit=100))
        remote, _ = timed(
            lambda: store.non_terminal_page("mock", after=None, limit=100, with_remote_id=True)
        )
        print(
            f"non_terminal_page(limit=100) of a {rows // 100:,}-job backlog: head "
            f"{head * 1000:.1f} ms, middle {deep * 1000:.1f} ms, "
            f"with_remote_id=True {remote * 1000:.1f} ms"
        )
        ids, found = timed(lambda: store.live_remote_ids("mock"))
        assert isinstance(found, list)
        print(f"live_remote_ids: {len(found):,} ids in {ids * 1000:.1f} ms")
        counts, _ = timed(store.counts_by_status)
        print(f"counts_by_status(): {counts * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=2_500)
    parser.add_argument("--big", type=int, default=0, help="rows of the clearing/paging run")
    parser.add_argument("--chunk", type=int, default=5_000)
    args = parser.parse_args()
    if args.big:
        big(args.big, args.chunk)
        return 0
    times = [run(args.jobs, args.batch) for _ in range(5)]
    median = statistics.median(times)
    print(
        f"{args.jobs:,} jobs x 4 transitions in batches of {args.batch:,}: "
        f"median {median:.3f} s "
        f"(range {min(times):.3f}-{max(times):.3f} s, {args.jobs / median:,.0f} jobs/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
