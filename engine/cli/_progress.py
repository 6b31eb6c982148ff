"""``add --wait``: follow jobs to a terminal state, as live bars or as JSON lines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from engine.cli._backend import TERMINAL, Backend, JobData
from engine.cli._errors import FAILED, OK, CliError
from engine.cli._output import Output, download_text, status_text

__all__ = ["follow"]


def follow(
    output: Output, backend: Backend, jobs: Sequence[JobData], deadline: float,
    timeout: float | None,
) -> int:
    """Show each job until all are terminal: 0 when all COMPLETED, 1 otherwise.

    With ``--json`` each change is one line ``{"job": Job}`` on stdout (the last
    line of each job is its terminal state); else rich bars, then a summary.
    """
    current = {job["id"]: job for job in jobs}
    ids = list(current)
    if output.json:
        shown: dict[str, Any] = {}
        for job in backend.wait_events(ids, deadline):
            current[job["id"]] = job
            key = _shown_key(job)
            if shown.get(job["id"]) != key:
                shown[job["id"]] = key
                output.document({"job": job})
    else:
        _bars(output, backend, ids, current, deadline)
    unfinished = [job_id for job_id, job in current.items() if job["status"] not in TERMINAL]
    if unfinished:
        raise CliError(FAILED, "timeout",
                       f"{len(unfinished)} job(s) not finished after {timeout:g}s: "
                       f"{', '.join(unfinished)} (they go on; see `debrid status ID`)"
                       if timeout is not None and not math.isinf(deadline) else
                       "the jobs were not followed to their end")
    ok = all(job["status"] == "completed" for job in current.values())
    if not output.json:
        for job in current.values():
            error = job.get("error") or {}
            why = f": {escape(str(error.get('code')))}: {escape(str(error.get('message')))}" \
                if error else ""
            files = [f for f in job.get("files") or () if f.get("selected") and f.get("local_path")]
            where = f" -> {escape(str(files[0]['local_path']))}" if len(files) == 1 else (
                f" -> {len(files)} files in {escape(str(job['payload'].get('download_dir')))}"
                if files else "")
            output.text(f"{escape(job['id'])} {status_text(job)}{why}{where}")
    return OK if ok else FAILED


def _shown_key(job: JobData) -> tuple[Any, ...]:
    download = (job.get("metadata") or {}).get("download") or {}
    return (job.get("status"), job.get("progress"), download.get("bytes_done"),
            download.get("speed_bps"), job.get("attempt"))


def _bars(
    output: Output, backend: Backend, ids: list[str], current: dict[str, JobData],
    deadline: float,
) -> None:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[detail]}"),
        console=output.console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}
    with progress:
        for job_id in ids:
            tasks[job_id] = progress.add_task(_label(current[job_id]), total=100.0,
                                              detail="")
        for job in backend.wait_events(ids, deadline):
            current[job["id"]] = job
            task = tasks.get(job["id"])
            if task is None:
                continue
            progress.update(task, description=_label(job),
                            completed=float(job.get("progress") or 0.0), detail=_detail(job))


def _label(job: JobData) -> str:
    return f"{escape(job['id'][:12])} {status_text(job):<24}"


def _detail(job: JobData) -> str:
    if job.get("status") in TERMINAL:
        error = job.get("error") or {}
        return escape(str(error.get("code") or ""))
    download = (job.get("metadata") or {}).get("download")
    if not isinstance(download, dict):
        return ""
    return download_text(download)
