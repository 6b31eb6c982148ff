"""The job commands: add, list, status, cancel, retry, clear, providers list/test."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from engine.cli._backend import JobData
from engine.cli._context import Context
from engine.cli._errors import BAD_INPUT, FAILED, OK, CliError
from engine.cli._progress import follow
from providers import ValidationError, parse_start_job_payload

__all__ = [
    "cmd_add",
    "cmd_cancel",
    "cmd_clear",
    "cmd_list",
    "cmd_providers_list",
    "cmd_providers_test",
    "cmd_retry",
    "cmd_status",
]

#: Larger than any .torrent worth sending (the daemon caps bodies at 10 MB by default).
_TORRENT_MAX = 10 * 1024 * 1024


def cmd_add(ctx: Context) -> int:
    """``debrid add SOURCE...``: one job per source; with ``--wait``, follow them to the end."""
    args = ctx.args
    settings = ctx.settings()
    payloads = [_payload(source, args, settings.download_dir) for source in args.sources]
    _check_payloads(payloads)
    backend = ctx.backend()
    jobs = backend.create_jobs(args.provider, payloads)
    if args.wait:
        deadline = time.monotonic() + args.timeout if args.timeout else math.inf
        return follow(ctx.output, backend, jobs, deadline, args.timeout)
    if ctx.output.json:
        ctx.output.document({"jobs": jobs})
    else:
        for job in jobs:
            ctx.output.text(f"added [bold]{escape(job['id'])}[/] ({escape(job['provider'])}, "
                            f"{job['status']})")
        if not backend.where.startswith("daemon"):
            ctx.output.note("no daemon runs: the jobs wait in the database until `debrid serve` "
                            "(or `add --wait`) works them")
    return OK


def _payload(source: str, args: Any, default_dir: Path) -> dict[str, Any]:
    """The ``StartJobPayload`` dict of one ``add`` argument."""
    payload: dict[str, Any]
    path = Path(source).expanduser()
    if source[:7].lower() == "magnet:":
        payload = {"magnet": source}
    elif "://" in source:
        payload = {"url": source}
    elif path.is_file():
        payload = {"torrent": _read_torrent(path)}
    elif source.lower().endswith(".torrent"):
        raise CliError(BAD_INPUT, "validation", f"{source}: no such .torrent file", "torrent")
    else:
        raise CliError(BAD_INPUT, "validation",
                       f"{source!r} is neither a URL, a magnet link nor a .torrent file",
                       "source")
    if args.select or args.largest_only:
        payload["select"] = {"globs": list(args.select or ()),
                             "largest_only": bool(args.largest_only)}
    target = Path(args.download_dir).expanduser() if args.download_dir else default_dir
    # Absolute: a daemon resolves paths from its own working directory.
    payload["download_dir"] = str(target.absolute())
    if args.connections is not None:
        payload["connections"] = args.connections
    return payload


def _read_torrent(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > _TORRENT_MAX:
            raise CliError(BAD_INPUT, "validation",
                           f"{path}: {size} bytes is too large for a .torrent", "torrent")
        data = path.read_bytes()
    except OSError as error:
        raise CliError(BAD_INPUT, "validation",
                       f"{path}: cannot read: {error.strerror or error}", "torrent") from error
    return base64.b64encode(data).decode("ascii")


def _check_payloads(payloads: Sequence[dict[str, Any]]) -> None:
    """Every payload checked here first: a daemon never gets half of a bad batch."""
    for index, payload in enumerate(payloads):
        try:
            parse_start_job_payload(payload)
        except ValidationError as error:
            field = error.field if len(payloads) == 1 else f"payloads[{index}].{error.field}"
            message = f"{field}: {error.message}"
            if error.expected:
                message += f" (expected {error.expected})"
            raise CliError(BAD_INPUT, "validation", message, field) from error


def cmd_list(ctx: Context) -> int:
    """``debrid list``: newest first, filtered."""
    args = ctx.args
    statuses = [s.strip() for value in args.status or () for s in value.split(",") if s.strip()]
    if args.limit < 1 or args.limit > 1000:
        raise CliError(BAD_INPUT, "validation", f"--limit: {args.limit} is not 1-1000", "limit")
    jobs, total = ctx.backend().list(status=statuses, provider=args.provider,
                                     search=args.search, limit=args.limit)
    if ctx.output.json:
        ctx.output.document({"jobs": jobs, "total": total})
    elif not jobs:
        ctx.output.text("no jobs")
    else:
        ctx.output.jobs_table(jobs)
        ctx.output.text(f"{len(jobs)} of {total} job{'s' if total != 1 else ''}")
    return OK


def cmd_status(ctx: Context) -> int:
    """``debrid status ID``: one job in full."""
    job = ctx.backend().get(ctx.args.job_id)
    if ctx.output.json:
        ctx.output.document({"job": job})
    else:
        ctx.output.job_detail(job)
    return OK


def cmd_cancel(ctx: Context) -> int:
    """``debrid cancel ID...``."""
    return _each(ctx, ctx.backend().cancel, "cancelled")


def cmd_retry(ctx: Context) -> int:
    """``debrid retry ID...``."""
    return _each(ctx, ctx.backend().retry, "retried")


def _each(ctx: Context, action: Callable[[str], JobData], done: str) -> int:
    """One action on each id. One id: ``{"job"}`` or its error; several: ``{"results"}``
    (as the bulk API answers), exiting with the first failure's code."""
    ids: list[str] = list(dict.fromkeys(ctx.args.job_ids))
    output = ctx.output
    if len(ids) == 1:
        job = action(ids[0])
        if output.json:
            output.document({"job": job})
        else:
            output.text(f"{done} [bold]{escape(job['id'])}[/]: now {job['status']}")
        return OK
    results: dict[str, Any] = {}
    exit_code = OK
    for job_id in ids:
        try:
            job = action(job_id)
        except CliError as error:
            results[job_id] = {"ok": False, **error.to_dict()}
            exit_code = exit_code or error.exit_code
            if not output.json:
                output.error(error)
            continue
        results[job_id] = {"ok": True, "job": job}
        if not output.json:
            output.text(f"{done} [bold]{escape(job_id)}[/]: now {job['status']}")
    if output.json:
        output.document({"results": results})
    return exit_code


def cmd_clear(ctx: Context) -> int:
    """``debrid clear``: delete the COMPLETED jobs."""
    deleted = ctx.backend().clear()
    if ctx.output.json:
        ctx.output.document({"deleted": deleted})
    else:
        ctx.output.text(f"deleted {deleted} completed job{'s' if deleted != 1 else ''}")
    return OK


def cmd_providers_list(ctx: Context) -> int:
    """``debrid providers list``: each provider's health."""
    providers = ctx.backend().providers()
    if ctx.output.json:
        ctx.output.document({"providers": providers})
        return OK
    table = Table(header_style="bold")
    for column in ("provider", "state", "alive", "slots", "queued", "problem"):
        table.add_column(column, overflow="fold")
    for item in providers:
        limit = item.get("slot_limit")
        queued = item.get("queued") or {}
        state = str(item.get("state", "?"))
        table.add_row(
            escape(str(item.get("name"))),
            f"[{'green' if state == 'ok' else 'red'}]{escape(state)}[/]",
            "yes" if item.get("alive") else "no",
            f"{item.get('slots_used', 0)}/{limit if limit is not None else '-'}",
            str(sum(queued.values())) if isinstance(queued, dict) else "-",
            escape(str(item.get("account_error") or item.get("last_error") or "")),
        )
    ctx.output.console.print(table)
    return OK


def cmd_providers_test(ctx: Context) -> int:
    """``debrid providers test NAME``: 0 when the provider accepts us, 1 when it refuses."""
    result = ctx.backend().test(ctx.args.name)
    ok = bool(result.get("ok"))
    if ctx.output.json:
        ctx.output.document({"result": result})
    else:
        mark = "[green]ok[/]" if ok else "[red]refused[/]"
        account = f" (account {escape(str(result['account']))})" if result.get("account") else ""
        ctx.output.text(f"{escape(str(result.get('provider', ctx.args.name)))}: {mark}: "
                        f"{escape(str(result.get('message', '')))}{account}")
    return OK if ok else FAILED
