"""The mock provider's own cost per call at a large remote side (run by hand).

    .venv/bin/python tests/benchmarks/bench_mock.py [--items 100000] [--calls 2000]

Fills a mock (in memory, then on a state file) with ``--items`` remote items
through ``start_job``, on a FakeClock at 100 submissions a second of clock time
with two-second steps, so that all but the last few hundred have completed and
every tenth was cancelled. Then times, per call (the best of three rounds of
``--calls`` calls each): ``start_job`` of new magnets with and without slot
counting (``max_active``: a count over the ~600 active items), and
``find_existing`` of a key that exists and of one that does not, each with
1,000 excluded remote ids as the engine passes them. The goal: costs that do
not grow with the number of items.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench_table import print_table

from providers import FakeClock, MockProvider, ProviderContext, StartJobPayload
from providers._validation import parse_start_job_payload

ROUNDS = 3


def magnets(start: int) -> Iterator[StartJobPayload]:
    for n in itertools.count(start):
        yield parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{n:040x}&dn=item{n}"})


def per_call(calls: int, make_call: Callable[[], Callable[[], object]]) -> float:
    """Microseconds per call: the best of ``ROUNDS`` rounds of ``calls`` calls."""
    best = float("inf")
    for _ in range(ROUNDS):
        batch = [make_call() for _ in range(calls)]  # payloads parsed outside the timing
        start = time.perf_counter()
        for call in batch:
            call()
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def measure(label: str, state: Path | None, items: int, calls: int) -> list[str]:
    clock = FakeClock()
    mock = MockProvider(2.0, state_file=state, max_active=10**9)
    mock.bind(ProviderContext(clock=clock))
    fill = magnets(0)
    start = time.perf_counter()
    made = []
    for n in range(items):
        remote_id = mock.start_job(next(fill)).remote_id
        made.append(remote_id)
        if n % 10 == 0:
            mock.cancel(remote_id)
        clock.advance(0.01)
    fill_seconds = time.perf_counter() - start
    fresh = magnets(10 * items)
    existing = [parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{n:040x}"})
                for n in range(1, items, max(1, items // calls))]  # fmt: skip
    hits = itertools.cycle(existing)
    exclude = frozenset(made[-1000:])

    def submit() -> Callable[[], object]:
        payload = next(fresh)

        def call() -> None:
            mock.start_job(payload)
            clock.advance(0.01)  # the same pace as the fill: about 600 items stay active

        return call

    def find_hit() -> Callable[[], object]:
        payload = next(hits)
        return lambda: mock.find_existing(payload, exclude)

    def find_miss() -> Callable[[], object]:
        payload = next(fresh)
        return lambda: mock.find_existing(payload, exclude)

    counted = per_call(calls, submit)
    mock._max_active = None  # the same mock without slot counting
    uncounted = per_call(calls, submit)
    hit, miss = per_call(calls, find_hit), per_call(calls, find_miss)
    size = "-"
    if state is not None:
        files = [state, state.with_name(state.name + "-wal")]
        size = f"{sum(f.stat().st_size for f in files if f.exists()) / 1e6:.1f} MB"
    mock.close()
    return [
        label,
        f"{items:,}",
        f"{fill_seconds:.1f} s",
        f"{uncounted:.1f}",
        f"{counted:.1f}",
        f"{hit:.1f}",
        f"{miss:.1f}",
        size,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args()
    rows = [measure("memory", None, args.items, args.calls)]
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(measure("state file", Path(tmp) / "mock.sqlite3", args.items, args.calls))
    print_table(
        (
            "remote side",
            "items",
            "fill",
            "start_job µs",
            "start_job + max_active µs",
            "find_existing hit µs",
            "find_existing miss µs",
            "file",
        ),
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
