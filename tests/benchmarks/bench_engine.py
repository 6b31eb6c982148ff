"""Engine throughput and memory next to raw Pykka (run by hand; pytest does not collect it).

    .venv/bin/python tests/benchmarks/bench_engine.py            # 1,000 and 10,000 jobs
    .venv/bin/python tests/benchmarks/bench_engine.py --sizes 1000 --rounds 5

Prints one table:
- mock jobs per second end to end (mock step 0, every transition persisted to a
  real SQLite file) next to raw Pykka doing the same number of actor spawns
  plus four messages each. Each round runs raw Pykka and then the engine, back
  to back, so that both see the same machine; the table gives the median of
  the rounds for each rate, and the median of the per-round ratios;
- RSS per live job actor with 10,000 jobs alive (mock step so long that no job
  finishes), next to an idle raw Pykka actor.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pykka
from bench_table import print_table

from engine import Engine, EngineConfig, JobStatus
from providers import FakeClock, MockProvider, ProviderRegistry


def rss_kb() -> int:
    """Current resident set size in KiB (from /proc, so it can go down too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


_MAGNETS_MADE = itertools.count()


def payloads(n: int) -> list[dict[str, str]]:
    """``n`` magnets never used before in this process: every run parses its own,
    as a real bulk add would, instead of finding them in the parse caches."""
    return [{"magnet": f"magnet:?xt=urn:btih:{next(_MAGNETS_MADE):040x}"} for _ in range(n)]


def make_engine(db: Path, step: float, **config: Any) -> Engine:
    registry = ProviderRegistry()
    registry.register_provider("mock", MockProvider(step))
    return Engine(
        EngineConfig(
            database=db,
            registry=registry,
            clock=FakeClock(),
            providers={"mock": {"poll_interval": 1.0}},
            **config,
        )
    )


def engine_rate(n: int, workdir: Path) -> tuple[float, int]:
    """Jobs per second from create to COMPLETED; and the transitions stored."""
    engine = make_engine(workdir / f"rate-{n}-{time.monotonic_ns()}.db", 0.0, max_job_actors=None)
    with engine:
        done = threading.Event()
        completed = 0

        def on_event(event: Any) -> None:
            nonlocal completed
            if event.kind == "transition" and event.job.status is JobStatus.COMPLETED:
                completed += 1
                if completed == n:
                    done.set()

        engine.subscribe(on_event)
        start = time.perf_counter()
        for chunk in range(0, n, 1000):
            engine.create_jobs("mock", payloads(min(1000, n - chunk)), timeout=300)
        if not done.wait(600):
            raise RuntimeError(f"only {completed} of {n} jobs completed")
        elapsed = time.perf_counter() - start
        store = engine._store
        assert store is not None
        transitions = sum(len(store.transitions(j.id)) for j in store.list(limit=50))
        assert transitions == 4 * min(n, 50)
        assert store.count(status=JobStatus.COMPLETED) == n
    return n / elapsed, transitions


class _Raw(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, done: Any) -> None:
        super().__init__()
        self.seen = 0
        self.done = done

    def on_receive(self, message: Any) -> None:
        self.seen += 1
        if self.seen == 4:
            self.done()
            self.stop()


def pykka_rate(n: int) -> float:
    """Raw Pykka: spawn ``n`` actors and send each four messages."""
    done = threading.Event()
    lock = threading.Lock()
    count = 0

    def one_done() -> None:
        nonlocal count
        with lock:
            count += 1
            if count == n:
                done.set()

    start = time.perf_counter()
    for _ in range(n):
        ref = _Raw.start(one_done)
        for i in range(4):
            ref.tell(i)
    done.wait(600)
    return n / (time.perf_counter() - start)


def engine_rss_per_actor(n: int, workdir: Path) -> float:
    engine = make_engine(workdir / "rss.db", 1e9, max_job_actors=None)
    with engine:
        gc.collect()
        before = rss_kb()
        for chunk in range(0, n, 1000):
            engine.create_jobs("mock", payloads(min(1000, n - chunk)), timeout=300)
        supervisor = engine._supervisor.ref._actor_weakref()  # type: ignore[union-attr]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            alive = sum(1 for ref in supervisor.actors.values() if hasattr(ref, "tell"))
            if alive >= n and all(j.remote_id for j in engine.list_jobs(limit=20)):
                break
            time.sleep(0.2)
        gc.collect()
        return (rss_kb() - before) * 1024 / n


class _Idle(pykka.ThreadingActor):
    use_daemon_thread = True


def pykka_rss_per_actor(n: int) -> float:
    gc.collect()
    before = rss_kb()
    refs = [_Idle.start() for _ in range(n)]
    gc.collect()
    per = (rss_kb() - before) * 1024 / n
    for ref in refs:
        ref.stop(block=False)
    return per


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rss-jobs", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3, help="raw-then-engine rounds per size")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for n in args.sizes:
            raws: list[float] = []
            ours: list[float] = []
            for _ in range(args.rounds):
                raws.append(pykka_rate(n))
                ours.append(engine_rate(n, workdir)[0])
            ratios = [o / r for o, r in zip(ours, raws, strict=True)]
            rows.append(
                (
                    f"jobs/s end to end, {n:,} jobs",
                    f"{statistics.median(ours):,.0f}",
                    f"{statistics.median(raws):,.0f}",
                    f"{statistics.median(ratios):.2f}x "
                    f"({min(ratios):.2f}-{max(ratios):.2f}; target >= 0.50x)",
                )
            )
        raw_rss = pykka_rss_per_actor(args.rss_jobs)
        ours_rss = engine_rss_per_actor(args.rss_jobs, workdir)
        rows.append(
            (
                f"RSS per live job actor, {args.rss_jobs:,} alive",
                f"{ours_rss / 1024:.1f} KB",
                f"{raw_rss / 1024:.1f} KB",
                "target <= 64 KB",
            )
        )
    print_table(("measure", "debrid-engine", "raw Pykka", "ratio / target"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
