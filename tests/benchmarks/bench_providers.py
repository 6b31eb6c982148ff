"""Requests per job and per poll against the fake Real-Debrid and TorBox servers.

    .venv/bin/python tests/benchmarks/bench_providers.py

Prints one table: requests the fake received per completed job (magnet jobs run
through the whole engine on a FakeClock), and requests one status refresh
(``list_statuses``) costs with 10, 100, 1,000 and 6,000 active jobs, cold and then
with nothing changed. The goal is a constant cost per poll: one page per 5,000
torrents on Real-Debrid (If-None-Match makes an unchanged page a 304), one page
per 1,000 items on TorBox.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import Engine, EngineConfig, JobStatus
from engine.testing import ClockDriver, FakeServer, advance_until
from engine.testing.realdebrid import FakeRealDebrid
from providers import FakeClock

JOBS = 40


def total(fake: FakeServer) -> int:
    return int(fake.stats()["counts"].get("total", 0))


def per_job(name: str, fake: FakeServer, clock: FakeClock, options: dict[str, Any]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = EngineConfig(
            database=Path(tmp) / "jobs.db",
            clock=clock,
            providers={name: {**options, "poll_interval": 10.0}},
        )
        with Engine(config) as engine:
            before = total(fake)
            engine.create_jobs(
                name, [{"magnet": f"magnet:?xt=urn:btih:{i + 0xBE0000:040x}"} for i in range(JOBS)]
            )
            with ClockDriver(clock, step=2.0):
                advance_until(
                    clock,
                    lambda: len(engine.list_jobs(status=JobStatus.COMPLETED, limit=None)) == JOBS,
                    step=0,
                    timeout=300,
                )
            return (total(fake) - before) / JOBS


def per_poll(
    fake: FakeServer, make: Callable[[int], list[str]], provider: Any, n: int
) -> tuple[int, int]:
    ids = make(n)
    before = total(fake)
    provider.list_statuses(ids)
    cold = total(fake) - before
    before = total(fake)
    provider.list_statuses(ids)
    return cold, total(fake) - before


def realdebrid_rows() -> list[tuple[str, ...]]:
    rows = []
    clock = FakeClock()
    with FakeRealDebrid(clock=clock, step_seconds=2.0) as fake:
        fake.active_limit = 10_000
        rows.append(
            (
                "realdebrid",
                "requests per completed magnet job",
                f"{per_job('realdebrid', fake, clock, fake.provider_options()):.1f}",
            )
        )
    for n in (10, 100, 1000, 6000):
        with FakeRealDebrid(clock=FakeClock()) as fake:
            provider = fake.make_provider(limited=False)

            def make(count: int, fake: FakeRealDebrid = fake) -> list[str]:
                return [f"torrent:{fake.add_torrent(f'{i + 0xC00000:040x}')}" for i in range(count)]

            cold, warm = per_poll(fake, make, provider, n)
            provider.close()
        rows.append(
            (
                "realdebrid",
                f"requests per poll, {n:,} active jobs",
                f"{cold} cold, {warm} unchanged",
            )
        )
    return rows


def torbox_rows() -> list[tuple[str, ...]]:
    try:
        from engine.testing.torbox import FakeTorBox  # noqa: PLC0415
    except ImportError:
        return []
    rows = []
    clock = FakeClock()
    with FakeTorBox(clock=clock, step_seconds=2.0) as fake:
        fake.settings.active_limit = 10_000
        rows.append(
            (
                "torbox",
                "requests per completed magnet job",
                f"{per_job('torbox', fake, clock, fake.provider_options()):.1f}",
            )
        )
    for n in (10, 100, 1000, 6000):
        with FakeTorBox(clock=FakeClock()) as fake:
            provider = fake.make_provider()

            def make(count: int, fake: Any = fake) -> list[str]:
                return [
                    f"torrent:{fake.add_item('torrent', f'{i + 0xD00000:040x}').id}"
                    for i in range(count)
                ]

            cold, warm = per_poll(fake, make, provider, n)
            provider.close()
        rows.append(
            ("torbox", f"requests per poll, {n:,} active jobs", f"{cold} cold, {warm} unchanged")
        )
    return rows


def main() -> int:
    rows = realdebrid_rows() + torbox_rows()
    header = ("provider", "measure", "requests")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
