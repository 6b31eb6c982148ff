"""``Backend``: what a command asks of the engine, wherever the engine runs.

Two implementations: ``HttpBackend`` (a daemon, over the control API) and
``LocalBackend`` (an ``Engine`` opened in this process on the database). Both
answer plain JSON-ready data (``Job.to_dict()``, the provider health and test
dicts the API gives), and both raise ``CliError`` only, so each command is
written once.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

__all__ = ["TERMINAL", "Backend", "JobData", "is_newer"]

#: A job as ``Job.to_dict()`` gives it (and the control API answers it).
JobData = dict[str, Any]

#: Status values after which a job does not change by itself.
TERMINAL = frozenset({"completed", "failed", "cancelled"})


class Backend(Protocol):
    """The engine's operations a command needs (every failure a ``CliError``)."""

    #: Where the engine is, for messages: the daemon's URL or the database.
    where: str

    def create_jobs(
        self, provider: str, payloads: Sequence[dict[str, Any]]
    ) -> builtins.list[JobData]:
        """New QUEUED jobs, one per payload (``StartJobPayload`` dict form)."""

    def get(self, job_id: str) -> JobData:
        """One job (``not_found``, exit 4, when there is none)."""

    def list(
        self,
        *,
        status: Sequence[str] = (),
        provider: str | None = None,
        search: str | None = None,
        limit: int = 50,
    ) -> tuple[builtins.list[JobData], int]:
        """Jobs, newest first, and how many match in all."""

    def cancel(self, job_id: str) -> JobData:
        """Cancel a job (``invalid_transition``, exit 5, for a finished one)."""

    def retry(self, job_id: str) -> JobData:
        """Start a FAILED or CANCELLED job again."""

    def clear(self) -> int:
        """Delete the COMPLETED jobs; how many."""

    def providers(self) -> builtins.list[dict[str, Any]]:
        """Each provider's health (name, state, alive, slots...)."""

    def test(self, name: str) -> dict[str, Any]:
        """``test_connection`` of one provider (``TestConnectionResponse`` as a dict)."""

    def wait_events(self, job_ids: Sequence[str], deadline: float) -> Iterator[JobData]:
        """Each job's current state, then every change, until all are terminal.

        Stops early (without raising) once ``time.monotonic()`` passes ``deadline``.
        """

    def close(self) -> None:
        """Let go of the daemon connection or stop the engine (state kept)."""


def is_newer(job: JobData, than: JobData | None) -> bool:
    """True when ``job`` is a later state than ``than`` (an event may arrive after a read
    that already saw it: the display must not step back)."""
    if than is None:
        return True
    return bool(int(job.get("updated_at") or 0) >= int(than.get("updated_at") or 0)
                and job != than)
