"""``debrid serve`` (the daemon, from engine.server) and ``debrid config show``."""

from __future__ import annotations

import sys

from engine.cli._context import Context
from engine.cli._errors import OK
from providers import ValidationError

__all__ = ["cmd_config_show", "cmd_serve"]


def cmd_serve(ctx: Context) -> int:
    """Start the engine and the control API in this process until SIGTERM / SIGINT."""
    from engine.server import run_daemon  # noqa: PLC0415

    settings = ctx.settings()
    step = float(ctx.args.demo_step)
    if not (step >= 0 and step != float("inf")):
        raise ValidationError("--demo-step", "not a number of seconds", value=step,
                              expected="a finite number >= 0")
    code: int = run_daemon(settings, demo=bool(ctx.args.demo), out=sys.stdout, err=sys.stderr,
                           demo_step=step)
    return code


def cmd_config_show(ctx: Context) -> int:
    """Every effective key, its value (secrets masked) and where it came from."""
    settings = ctx.settings()
    if ctx.output.json:
        ctx.output.document(settings.describe())
    else:
        ctx.output.out.write(settings.render_text().rstrip("\n") + "\n")
        ctx.output.out.flush()
    return OK
