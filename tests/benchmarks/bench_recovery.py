"""Start-up with a huge backlog, and clearing a million rows (run by hand; not collected).

    .venv/bin/python tests/benchmarks/bench_recovery.py                 # 100,000 and 1,000,000
    .venv/bin/python tests/benchmarks/bench_recovery.py --sizes 100000

For each size: a SQLite store is filled with that many QUEUED jobs (magnets,
the mock with one slot so that they all wait), then an engine is started on it
in a fresh process-like state: the table gives the time ``Engine.start()`` takes
to return and the RSS it adds. Then the same number of COMPLETED jobs is
cleared with ``clear_completed``, which deletes in chunks between other messages;
the table gives its time and the longest time a ``get_job``-free request (a
``sync_job_status`` of an unknown job, answered by the supervisor) waited
meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_engine import rss_kb
from bench_table import print_table

from engine import Engine, EngineConfig, JobNotFound
from persistence import JobStore
from providers import FakeClock, Job, JobStatus, MockProvider, ProviderRegistry, StartJobPayload


def fill(db: Path, n: int, status: JobStatus) -> None:
    with JobStore(db) as store:
        batch: list[tuple[Job, tuple[()]]] = []
        for i in range(n):
            payload = StartJobPayload(magnet=f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}")
            job = Job(
                id=f"{status.value[0]}{i:031x}",
                provider="mock",
                status=status,
                payload=payload,
                submitted=False,
                created_at=1_700_000_000_000 + i,
                updated_at=1_700_000_000_000 + i,
            )
            batch.append((job, ()))
            if len(batch) == 5000:
                store.save_batch(batch)
                batch = []
        if batch:
            store.save_batch(batch)


def engine(db: Path) -> Engine:
    registry = ProviderRegistry()
    registry.register_provider("mock", MockProvider(1e9, max_active=1))
    return Engine(
        EngineConfig(
            database=db,
            registry=registry,
            clock=FakeClock(),
            providers={"mock": {"poll_interval": 1.0}},
            stall_timeouts={},
        )
    )


def measure_start(db: Path) -> tuple[float, float]:
    gc.collect()
    before = rss_kb()
    subject = engine(db)
    start = time.perf_counter()
    subject.start()
    elapsed = time.perf_counter() - start
    gc.collect()
    grown = (rss_kb() - before) / 1024
    subject.stop()
    return elapsed, grown


def measure_clear(db: Path, n: int) -> tuple[float, float, int]:
    with engine(db) as subject:
        worst = 0.0
        stop = threading.Event()

        def probe() -> None:
            nonlocal worst
            while not stop.is_set():
                asked = time.perf_counter()
                with contextlib.suppress(JobNotFound):
                    subject.sync_job_status("no-such-job", timeout=120)
                worst = max(worst, time.perf_counter() - asked)
                stop.wait(0.01)

        prober = threading.Thread(target=probe)
        start = time.perf_counter()
        prober.start()
        cleared = subject.clear_completed(timeout=3600)
        elapsed = time.perf_counter() - start
        stop.set()
        prober.join()
    assert cleared == n, cleared
    return elapsed, worst, cleared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            db = Path(tmp) / f"start-{n}.db"
            fill(db, n, JobStatus.QUEUED)
            seconds, grown = measure_start(db)
            rows.append((f"start() with {n:,} queued jobs", f"{seconds:.3f} s", f"+{grown:.1f} MB"))
            db = Path(tmp) / f"clear-{n}.db"
            fill(db, n, JobStatus.COMPLETED)
            seconds, worst, _ = measure_clear(db, n)
            rows.append(
                (
                    f"clear_completed of {n:,} rows",
                    f"{seconds:.1f} s",
                    f"longest wait of another request: {worst * 1000:.0f} ms",
                )
            )
    print_table(("measure", "time", "memory / other requests"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
