"""Where a command's answer goes: one JSON document (or JSON lines), or rich text for people.

Answers go to stdout, errors and progress chatter to stderr; with ``--json``
stdout holds nothing but JSON, so a script can parse it whole.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.cli._backend import JobData
from engine.cli._errors import CliError

__all__ = ["Output", "human_size", "short_id"]

_STATUS_STYLE = {
    "queued": "cyan",
    "resolving": "blue",
    "downloading": "magenta",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}


class Output:
    """The two faces of every command: ``json`` documents or rich text."""

    def __init__(self, *, json_mode: bool, out: IO[str] | None = None,
                 err: IO[str] | None = None) -> None:
        self.json = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.console = Console(file=self.out, highlight=False, soft_wrap=True)
        self.err_console = Console(file=self.err, highlight=False, soft_wrap=True)

    def document(self, data: Any) -> None:
        """One JSON document (or one JSON line) on stdout."""
        self.out.write(json.dumps(data, ensure_ascii=False, sort_keys=False) + "\n")
        self.out.flush()

    def text(self, markup: str) -> None:
        """A line of rich markup on stdout."""
        self.console.print(markup)

    def note(self, markup: str) -> None:
        """A line of rich markup on stderr (chatter a script does not parse)."""
        self.err_console.print(markup)

    def error(self, error: CliError) -> None:
        """The error: JSON on stderr with ``--json``, else ``debrid: message`` (field named)."""
        if self.json:
            self.err.write(json.dumps(error.to_dict()) + "\n")
            self.err.flush()
            return
        message = error.message
        if error.field and error.field not in message:
            message = f"{error.field}: {message}"
        prefix = "" if message.startswith("debrid") else "[bold red]debrid:[/] "
        self.err_console.print(f"{prefix}{escape(message)}")

    def jobs_table(self, jobs: Iterable[JobData], *, title: str | None = None) -> None:
        """Jobs, one a row: id, provider, status, progress, source, error."""
        table = Table(title=title, show_lines=False, header_style="bold")
        table.add_column("id", no_wrap=True)
        for column in ("provider", "status", "progress", "source", "error"):
            table.add_column(column, overflow="fold")
        for job in jobs:
            error = job.get("error") or {}
            table.add_row(
                short_id(job["id"]),
                escape(str(job.get("provider", ""))),
                status_text(job),
                f"{float(job.get('progress') or 0):5.1f}%",
                escape(source_of(job)),
                escape(f"{error.get('code')}: {error.get('message')}" if error else ""),
            )
        self.console.print(table)

    def job_detail(self, job: JobData) -> None:
        """One job in full: fields, local download, files."""
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        error = job.get("error") or {}
        payload = job.get("payload") or {}
        rows = [
            ("id", escape(job["id"])),
            ("provider", escape(str(job.get("provider")))),
            ("status", status_text(job)),
            ("progress", f"{float(job.get('progress') or 0):.1f}%"),
            ("source", escape(source_of(job))),
            ("download dir", escape(str(payload.get("download_dir") or "-"))),
            ("attempt", str(job.get("attempt", ""))),
            ("remote id", escape(str(job.get("remote_id") or "-"))),
        ]
        download = (job.get("metadata") or {}).get("download")
        if isinstance(download, dict):
            rows.append(("downloaded", download_text(download)))
        if error:
            rows.append(("error", escape(f"{error.get('code')}: {error.get('message')}")))
        for key, value in rows:
            table.add_row(key, value)
        self.console.print(table)
        files = job.get("files") or []
        if files:
            listing = Table(header_style="bold")
            for column in ("file", "size", "selected", "done", "verified"):
                listing.add_column(column, overflow="fold")
            for file in files:
                listing.add_row(
                    escape(str(file.get("name"))),
                    human_size(int(file.get("size") or 0)),
                    "yes" if file.get("selected") else "no",
                    human_size(int(file.get("bytes_done") or 0)),
                    escape(str(file.get("verified") or "-")),
                )
            self.console.print(listing)


def short_id(job_id: str) -> str:
    """The id as shown in tables (whole: it is what ``status``/``cancel`` take)."""
    return escape(job_id)


def status_text(job: JobData) -> str:
    """The status in its colour."""
    status = str(job.get("status", "?"))
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def source_of(job: JobData) -> str:
    """What the job downloads: its URL, its magnet's name or hash, or "a .torrent"."""
    payload = job.get("payload") or {}
    if payload.get("url"):
        return str(payload["url"])
    if payload.get("magnet"):
        magnet = str(payload["magnet"])
        return magnet if len(magnet) <= 80 else magnet[:77] + "..."
    if payload.get("torrent"):
        return "(.torrent file)"
    return "-"


def download_text(download: dict[str, Any]) -> str:
    """``12.0 MB / 40.0 MB, 1.2 MB/s, eta 23s`` from ``metadata["download"]``."""
    text = (f"{human_size(int(download.get('bytes_done') or 0))} / "
            f"{human_size(int(download.get('bytes_total') or 0))}")
    speed = download.get("speed_bps")
    if speed:
        text += f", {human_size(int(speed))}/s"
    eta = download.get("eta_seconds")
    if eta is not None:
        text += f", eta {human_duration(float(eta))}"
    return text


def human_size(n: float) -> str:
    """Bytes in B, KB, MB, GB, TB (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
