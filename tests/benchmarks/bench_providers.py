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

from bench_table import print_table

from engine import Engine, EngineConfig, JobStatus
from engine.testing import ClockDriver, FakeServer, advance_until
from engine.testing.realdebrid import FakeRealDebrid
from engine.testing.torbox import FakeTorBox
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


def provider_rows(
    name: str,
    fake_class: Callable[..., Any],
    allow_many: Callable[[Any], None],
    make_provider: Callable[[Any], Any],
    add_remote: Callable[[Any, str], str],
) -> list[tuple[str, ...]]:
    """One provider's rows: requests per completed job, then per poll at each size.

    ``allow_many`` lifts the fake's active limit; ``add_remote(fake, info_hash)``
    puts an item on the fake and returns the remote id the engine knows.
    """
    clock = FakeClock()
    with fake_class(clock=clock, step_seconds=2.0) as fake:
        allow_many(fake)
        per = per_job(name, fake, clock, fake.provider_options())
    rows = [(name, "requests per completed magnet job", f"{per:.1f}")]
    for n in (10, 100, 1000, 6000):
        with fake_class(clock=FakeClock()) as fake:
            provider = make_provider(fake)

            def make(count: int, fake: Any = fake) -> list[str]:
                return [add_remote(fake, f"{i + 0xC00000:040x}") for i in range(count)]

            cold, warm = per_poll(fake, make, provider, n)
            provider.close()
        rows.append(
            (name, f"requests per poll, {n:,} active jobs", f"{cold} cold, {warm} unchanged")
        )
    return rows


def realdebrid_rows() -> list[tuple[str, ...]]:
    return provider_rows(
        "realdebrid",
        FakeRealDebrid,
        lambda fake: setattr(fake, "active_limit", 10_000),
        lambda fake: fake.make_provider(limited=False),
        lambda fake, info_hash: f"torrent:{fake.add_torrent(info_hash)}",
    )


def torbox_rows() -> list[tuple[str, ...]]:
    return provider_rows(
        "torbox",
        FakeTorBox,
        lambda fake: setattr(fake.settings, "active_limit", 10_000),
        lambda fake: fake.make_provider(),
        lambda fake, info_hash: f"torrent:{fake.add_item('torrent', info_hash).id}",
    )


def main() -> int:
    rows = realdebrid_rows() + torbox_rows()
    print_table(("provider", "measure", "requests"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
