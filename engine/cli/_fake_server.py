"""``debrid fake-server realdebrid|torbox``: a fake provider server on 127.0.0.1.

So the engine can be tried end to end without an account::

    debrid fake-server realdebrid --port 8765
    debrid fake-server torbox --port 0          # any free port; the URL is printed

The first line on stdout is JSON for scripts: ``{"url", "provider", "options"}``
(``options`` point a provider at the fake).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from engine.cli._context import Context
from engine.cli._errors import BAD_INPUT, OK, CliError

__all__ = ["add_parser", "cmd_fake_server"]


def add_parser(commands: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """The ``fake-server`` subcommand."""
    fake = commands.add_parser("fake-server", parents=list(parents),
                               help="run a fake provider server on 127.0.0.1")
    fake.add_argument("kind", choices=("realdebrid", "torbox"))
    fake.add_argument("--port", type=int, default=0, help="TCP port (0: any free one)")
    fake.add_argument("--step", type=float, default=2.0,
                      help="seconds per lifecycle step of a fake job (default 2)")
    fake.set_defaults(run=cmd_fake_server)


def cmd_fake_server(ctx: Context) -> int:
    """Serve until SIGTERM or Ctrl-C."""
    from engine.testing import FakeRealDebrid, FakeServer, FakeTorBox  # noqa: PLC0415

    args = ctx.args
    if not 0 <= args.port <= 65535:
        raise CliError(BAD_INPUT, "usage", f"--port: {args.port} is not a TCP port (0-65535)",
                       "port")
    server: FakeServer
    options: dict[str, Any]
    if args.kind == "realdebrid":
        rd = FakeRealDebrid(port=args.port, step_seconds=args.step)
        server, options = rd.start(), rd.provider_options()
    else:
        tb = FakeTorBox(port=args.port, step_seconds=args.step)
        server, options = tb.start(), tb.provider_options()
    # The first line is machine-readable, for scripts that start the fake.
    sys.stdout.write(json.dumps({"url": server.url, "provider": args.kind,
                                 "options": options}) + "\n")
    sys.stdout.flush()
    sys.stderr.write(f"fake {args.kind} listening on {server.url} (stats: {server.url}"
                     "/__fake__/stats); Ctrl-C stops it\n")
    sys.stderr.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return OK
