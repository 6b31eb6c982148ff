"""Requests per job and per poll against the fake Real-Debrid and TorBox servers.

    .venv/bin/python tests/benchmarks/bench_providers.py

Prints one table: requests the fake received per completed job (magnet jobs run
through the whole engine on a FakeClock), for magnets of 1 and 4 files with
every file selected and with the largest only, with the routes that took them;
then requests one status refresh (``list_statuses``) costs with 10, 100, 1,000
and 6,000 active jobs, cold and then with nothing changed. The goals: at most
3 + k requests per Real-Debrid magnet job plus a share of the polls (k: the
selected files), and a constant cost per poll: one page per 5,000 torrents on
Real-Debrid (If-None-Match makes an unchanged page a 304), one page per 1,000
items on TorBox.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_table import print_table

from engine import Engine, EngineConfig, JobStatus
from engine.testing import ClockDriver, FakeServer, advance_until
from engine.testing.realdebrid import FakeRealDebrid, Scenario
from engine.testing.torbox import FakeTorBox
from engine.testing.torbox._model import make_files
from providers import FakeClock

JOBS = 40
#: The magnets' files: (path, size), the first the largest. Small, because the
#: TorBox fake downloads at a fixed rate.
PACKS = {
    1: (("Film/Film.mkv", 300_000),),
    4: (
        ("Show/Show.S01E01.mkv", 300_000),
        ("Show/Show.S01E02.mkv", 290_000),
        ("Show/Sample/sample.mkv", 30_000),
        ("Show/Show.nfo", 400),
    ),
}
SELECTIONS: dict[str, dict[str, Any]] = {"all files": {}, "largest only": {"largest_only": True}}


def counts(fake: FakeServer) -> Counter[str]:
    return Counter(fake.stats()["counts"])


def per_job(
    name: str, fake: FakeServer, clock: FakeClock, options: dict[str, Any], select: dict[str, Any]
) -> tuple[float, str]:
    """Requests per completed job, and the routes that took them (per job, largest first)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = EngineConfig(
            database=Path(tmp) / "jobs.db",
            clock=clock,
            providers={name: {**options, "poll_interval": 10.0}},
        )
        with Engine(config) as engine:
            before = counts(fake)
            payloads = [
                {"magnet": f"magnet:?xt=urn:btih:{i + 0xBE0000:040x}", "select": select}
                for i in range(JOBS)
            ]
            jobs = engine.create_jobs(name, payloads)
            with ClockDriver(clock, step=2.0):
                advance_until(
                    clock,
                    lambda: all(engine.get_job(j.id).status.terminal for j in jobs),
                    step=0,
                    timeout=300,
                )
            sent = counts(fake) - before
            ended = Counter(str(engine.get_job(j.id).status) for j in jobs)
            if ended[str(JobStatus.COMPLETED)] != JOBS:
                raise SystemExit(f"{name}: not every job completed: {dict(ended)}")
    routes = ", ".join(
        f"{route} {n / JOBS:.2g}" for route, n in sent.most_common() if route != "total"
    )
    return sent["total"] / JOBS, routes


def per_poll(
    fake: FakeServer, make: Callable[[int], list[str]], provider: Any, n: int
) -> tuple[int, int]:
    ids = make(n)
    before = counts(fake)["total"]
    provider.list_statuses(ids)
    cold = counts(fake)["total"] - before
    before = counts(fake)["total"]
    provider.list_statuses(ids)
    return cold, counts(fake)["total"] - before


def provider_rows(
    name: str,
    fake_class: Callable[..., Any],
    prepare: Callable[[Any, tuple[tuple[str, int], ...]], None],
    make_provider: Callable[[Any], Any],
    add_remote: Callable[[Any, str], str],
) -> list[tuple[str, ...]]:
    """One provider's rows: requests per completed job, then per poll at each size.

    ``prepare(fake, files)`` lifts the fake's active limit and gives every magnet
    these files; ``add_remote(fake, info_hash)`` puts an item on the fake and
    returns the remote id the engine knows.
    """
    rows = []
    for size, files in PACKS.items():
        for label, select in SELECTIONS.items():
            clock = FakeClock()
            with fake_class(clock=clock, step_seconds=2.0) as fake:
                prepare(fake, files)
                per, routes = per_job(name, fake, clock, fake.provider_options(), select)
            measure = f"per completed magnet job, {size} file{'s' * (size > 1)}, {label}"
            rows.append((name, measure, f"{per:.2f}", routes))
    for n in (10, 100, 1000, 6000):
        with fake_class(clock=FakeClock()) as fake:
            provider = make_provider(fake)

            def make(count: int, fake: Any = fake) -> list[str]:
                return [add_remote(fake, f"{i + 0xC00000:040x}") for i in range(count)]

            cold, warm = per_poll(fake, make, provider, n)
            provider.close()
        rows.append(
            (name, f"per poll, {n:,} active jobs", f"{cold} cold, {warm} unchanged", "")
        )
    return rows


def prepare_realdebrid(fake: FakeRealDebrid, files: tuple[tuple[str, int], ...]) -> None:
    fake.active_limit = 10_000
    fake.set_default_scenario(Scenario(files=files))


def prepare_torbox(fake: FakeTorBox, files: tuple[tuple[str, int], ...]) -> None:
    fake.settings.active_limit = 10_000
    # The TorBox fake has no knob for the files of an uncached item: every item gets these.
    fake.account.files_for = lambda kind, key, name: make_files(key, list(files))  # type: ignore[method-assign]


def realdebrid_rows() -> list[tuple[str, ...]]:
    return provider_rows(
        "realdebrid",
        FakeRealDebrid,
        prepare_realdebrid,
        lambda fake: fake.make_provider(limited=False),
        lambda fake, info_hash: f"torrent:{fake.add_torrent(info_hash)}",
    )


def torbox_rows() -> list[tuple[str, ...]]:
    return provider_rows(
        "torbox",
        FakeTorBox,
        prepare_torbox,
        lambda fake: fake.make_provider(),
        lambda fake, info_hash: f"torrent:{fake.add_item('torrent', info_hash).id}",
    )


def main() -> int:
    rows = realdebrid_rows() + torbox_rows()
    print_table(("provider", "measure", "requests", "by route, per job"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
