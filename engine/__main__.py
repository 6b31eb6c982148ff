"""``python -m engine``: the embedded default, as a short demo.

Submits a few mock jobs, shows their progress until every one has completed
(the provider's part, then the local download: bytes, speed, ETA), then prints
where the database and the files are. Uses the real clock and the mock provider
with 2-second steps unless ``--step`` says otherwise; the mock serves its files
from a loopback server, so the files really land on disk, verified by md5.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from engine._config import EngineConfig, default_database_path
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
    line = f"{job.id[:8]}  {job.status.value:<11} [{bar}] {job.progress:5.1f}%"
    local = job.metadata.get("download")
    if isinstance(local, dict) and not job.terminal:
        line += f"  {_size(local.get('bytes_done', 0))}/{_size(local.get('bytes_total', 0))}"
        speed, eta = local.get("speed_bps") or 0, local.get("eta_seconds")
        line += f" {_size(speed)}/s" + (f" eta {eta}s" if eta is not None else "")
    return line


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    parser.add_argument("--database", help="database path or URL (default: user data dir)")
    parser.add_argument("--step", type=float, default=2.0, help="mock step in seconds (default 2)")
    parser.add_argument("--log", choices=("console", "json", "none"), default="none")
    parser.add_argument("--download-dir",
                        help="where the files land (default: downloads/ beside the database)")
    args = parser.parse_args(argv)
    database = Path(args.database) if args.database and "://" not in args.database else None
    target = Path(args.download_dir) if args.download_dir else (
        (database or default_database_path()).parent / "downloads")
    if args.log != "none":
        configure_logging(args.log)
    config = EngineConfig(
        database=args.database,
        providers={"mock": {"step_seconds": args.step, "poll_interval": max(0.1, args.step / 4)}},
    )
    changed = threading.Event()
    with Engine(config) as engine:
        engine.subscribe(lambda _event: changed.set())
        jobs = [engine.create_job("mock", {**payload, "download_dir": str(target)})
                for payload in DEMO_PAYLOADS]
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
            names = ", ".join(f"{f.name} ({f.verified or 'not verified'})"
                              for f in job.files if f.selected)
            print(f"{job.id[:8]}  {job.status.value}: {names}")
        print(f"files: {target}")
        print(f"database: {engine.database}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
