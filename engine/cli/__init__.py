"""The ``debrid`` command: argparse for the words, rich for people, JSON for scripts.

Commands (``debrid --help`` lists them, with the exit codes)::

    debrid add URL|MAGNET|FILE.torrent... [--wait]   debrid list / status ID
    debrid cancel ID... / retry ID... / clear        debrid providers list / test NAME
    debrid config show                               debrid auth realdebrid|torbox
    debrid serve                                     debrid fake-server realdebrid|torbox

Each job command is written once against ``Backend`` (``_backend.py``): a
running daemon over its control API (``_http.py``), or the engine opened in this
process on the database (``_local.py``); ``_context.py`` picks one.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.cli._context import Context
from engine.cli._errors import CliError, from_engine_error
from engine.cli._output import Output
from engine.cli._parser import build_parser
from providers import EngineError

__all__ = ["build_parser", "main"]


def _serve_flags(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """The settings ``debrid serve`` flags override."""
    if getattr(args, "command", None) != "serve":
        return {}
    return {
        "api.host": (args.host, "--host"),
        "api.port": (args.port, "--port"),
        "log_format": (args.log_format, "--log-format"),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``debrid`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    output = Output(json_mode="--json" in argv)
    try:
        args = build_parser().parse_args(argv)
    except CliError as error:
        output.error(error)
        return error.exit_code
    output = Output(json_mode=bool(args.json))
    ctx = Context(args, output, _serve_flags(args))
    try:
        result: int = args.run(ctx)
        return result
    except CliError as error:
        output.error(error)
        return error.exit_code
    except EngineError as error:
        failure = from_engine_error(error)
        output.error(failure)
        return failure.exit_code
    except KeyboardInterrupt:
        output.error(CliError(130, "interrupted", "interrupted"))
        return 130
    finally:
        try:
            ctx.close()
        except EngineError as error:  # stopping the engine failed: say so, keep the exit code
            output.error(from_engine_error(error))

