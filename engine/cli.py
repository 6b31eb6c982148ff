"""The ``debrid`` command.

This release has one subcommand, ``fake-server``: it runs the fake Real-Debrid or
TorBox server on 127.0.0.1, so the engine can be tried end to end without an
account. The other subcommands of DESIGN.md (add, list, status, serve...) come
with the command-line issue.

    debrid fake-server realdebrid --port 8765
    debrid fake-server torbox --port 0          # any free port; the URL is printed
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from engine.testing import FakeRealDebrid, FakeServer, FakeTorBox

__all__ = ["main"]


def _run_fake_server(args: argparse.Namespace) -> int:
    server: FakeServer
    options: dict[str, Any]
    if args.kind == "realdebrid":
        rd = FakeRealDebrid(port=args.port, step_seconds=args.step)
        server, options = rd.start(), rd.provider_options()
    else:
        tb = FakeTorBox(port=args.port, step_seconds=args.step)
        server, options = tb.start(), tb.provider_options()
    # The first line is machine-readable, for scripts that start the fake.
    print(json.dumps({"url": server.url, "provider": args.kind, "options": options}), flush=True)
    print(
        f"fake {args.kind} listening on {server.url} (stats: {server.url}/__fake__/stats); "
        "Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``debrid``."""
    parser = argparse.ArgumentParser(prog="debrid", description="debrid-engine command line")
    commands = parser.add_subparsers(dest="command", required=True)
    fake = commands.add_parser("fake-server", help="run a fake provider server on 127.0.0.1")
    fake.add_argument("kind", choices=("realdebrid", "torbox"))
    fake.add_argument("--port", type=int, default=0, help="TCP port (0: any free one)")
    fake.add_argument("--step", type=float, default=2.0,
                      help="seconds per lifecycle step of a fake job (default 2)")
    fake.set_defaults(run=_run_fake_server)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``debrid`` command."""
    args = build_parser().parse_args(argv)
    if args.port < 0 or args.port > 65535:
        print(f"debrid: --port: {args.port} is not a TCP port (0-65535)", file=sys.stderr)
        return 2
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
