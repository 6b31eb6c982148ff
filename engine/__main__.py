"""``python -m engine``: the embedded default, as a short demo.

Submits a few mock jobs, shows their progress until every one has completed,
then prints where the database is. Uses the real clock and the mock provider
with 2-second steps unless ``--step`` says otherwise.
"""

from __future__ import annotations

import argparse
import sys
import threading

from engine._config import EngineConfig
from engine._engine import Engine
from engine._logging import configure_logging
from providers import Job, JobStatus

DEMO_PAYLOADS = (
    {"url": "https://example.com/files/big-buck-bunny.mp4"},
    {"magnet": "magnet:?xt=urn:btih:dd8255ecdc7ca55fb0bbf81323d87062db1f6d1c&dn=Sintel"},
    {
        "magnet": "magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10&dn=Tears.of.Steel",
        "select": {"globs": ["*.mkv"], "largest_only": True},
    },
)


def _bar(job: Job) -> str:
    filled = int(job.progress / 5)
    bar = "#" * filled + "." * (20 - filled)
    return f"{job.id[:8]}  {job.status.value:<11} [{bar}] {job.progress:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    parser.add_argument("--database", help="database path or URL (default: user data dir)")
    parser.add_argument("--step", type=float, default=2.0, help="mock step in seconds (default 2)")
    parser.add_argument("--log", choices=("console", "json", "none"), default="none")
    args = parser.parse_args(argv)
    if args.log != "none":
        configure_logging(args.log)
    config = EngineConfig(
        database=args.database,
        providers={"mock": {"step_seconds": args.step, "poll_interval": max(0.1, args.step / 4)}},
    )
    changed = threading.Event()
    with Engine(config) as engine:
        engine.subscribe(lambda _event: changed.set())
        jobs = [engine.create_job("mock", payload) for payload in DEMO_PAYLOADS]
        print(f"submitted {len(jobs)} mock jobs")
        shown: dict[str, str] = {}
        while True:
            current = [engine.get_job(job.id) for job in jobs]
            for job in current:
                line = _bar(job)
                if shown.get(job.id) != line:
                    shown[job.id] = line
                    print(line, flush=True)
            if all(job.terminal for job in current):
                break
            changed.wait(1.0)
            changed.clear()
        ok = all(job.status is JobStatus.COMPLETED for job in current)
        for job in current:
            names = ", ".join(f.name for f in job.files if f.selected)
            print(f"{job.id[:8]}  {job.status.value}: {names}")
        print(f"database: {engine.database}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
