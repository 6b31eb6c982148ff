"""Job-store write speed (run by hand; pytest does not collect it).

    .venv/bin/python tests/benchmarks/bench_store.py [--jobs 10000] [--batch 2500]

Saves N jobs, each with its four transitions (QUEUED to COMPLETED), in batches
of the given size on a fresh SQLite file, five times, and prints the median and
the range. The supervisor writes one batch per mailbox drain the same way.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

from persistence import JobStore
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=2_500)
    args = parser.parse_args()
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
