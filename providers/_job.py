"""The job record, its files and its recorded transitions."""

from __future__ import annotations

from typing import Any

import attrs

from providers._errors import InvalidTransition
from providers._payload import StartJobPayload
from providers._status import JobStatus, forward_path

__all__ = ["FileTransfer", "Job", "JobErrorInfo", "JobFile", "Transition"]


@attrs.frozen
class FileTransfer:
    """What a local download of one file has on disk, for a resume.

    ``ranges`` are the half-open byte ranges of the ``.part`` file that were
    synced to disk before they were recorded here; ``size``, ``etag`` and
    ``last_modified`` are what the server said of the bytes they were fetched
    against: a resume whose answer disagrees starts the file again.
    """

    size: int
    etag: str | None = None
    last_modified: str | None = None
    ranges: tuple[tuple[int, int], ...] = ()

    @property
    def done(self) -> int:
        """Bytes on disk (the ranges never overlap)."""
        return sum(end - start for start, end in self.ranges)


@attrs.frozen
class JobFile:
    """One file of a job, as the provider lists it and as the engine downloads it.

    ``name`` is the provider's relative path (never trusted as a local path);
    ``link`` is what the provider gives for the file (a direct URL, or a
    permalink that is resolved when a download starts); ``md5`` is the
    provider's checksum where it has one. For a job that downloads,
    ``local_path`` is where the file lands, ``bytes_done`` how much of it is on
    disk, ``transfer`` what a resume needs, and ``verified`` how the finished
    file was checked (``"size"`` or ``"size+md5"``).
    """

    id: int
    name: str
    size: int = 0
    link: str | None = None
    selected: bool = True
    local_path: str | None = None
    bytes_done: int = 0
    md5: str | None = None
    transfer: FileTransfer | None = None
    verified: str | None = None


@attrs.frozen
class JobErrorInfo:
    """Why a job FAILED: a stable code and a human message."""

    code: str
    message: str


@attrs.frozen
class Transition:
    """One recorded state change of one attempt of a job (``from_status`` None: created)."""

    job_id: str
    attempt: int
    from_status: JobStatus | None
    to_status: JobStatus
    at: int


@attrs.frozen
class Job:
    """A download request followed through its lifecycle.

    Jobs are immutable values; every change makes a new one (``advance``,
    ``evolve``). Times are epoch milliseconds. ``submitted`` is set, and made
    durable, before a request is sent to the provider, so that after a crash the
    engine knows to look for the remote item before sending it again.
    """

    id: str
    provider: str
    status: JobStatus
    payload: StartJobPayload
    progress: float = 0.0
    files: tuple[JobFile, ...] = ()
    metadata: dict[str, Any] = attrs.field(factory=dict)
    error: JobErrorInfo | None = None
    attempt: int = 1
    remote_id: str | None = None
    submitted: bool = False
    created_at: int = 0
    updated_at: int = 0

    @property
    def terminal(self) -> bool:
        """True once COMPLETED, FAILED or CANCELLED."""
        return self.status.terminal

    def evolve(self, **changes: Any) -> Job:
        """A copy with ``changes`` applied (no state-machine check: use ``advance`` for status).

        The same as ``attrs.evolve``, at a third of the cost: a job changes several
        times on its way through the engine.
        """
        c = changes
        if not c.keys() <= _JOB_FIELD_NAMES:
            unknown = ", ".join(sorted(c.keys() - _JOB_FIELD_NAMES))
            raise TypeError(f"Job has no field(s) {unknown}")
        # Spelt out field by field (a test checks that none is missing): a loop
        # over the field names costs twice as much.
        return Job(
            c.get("id", self.id),
            c.get("provider", self.provider),
            c.get("status", self.status),
            c.get("payload", self.payload),
            c.get("progress", self.progress),
            c.get("files", self.files),
            c.get("metadata", self.metadata),
            c.get("error", self.error),
            c.get("attempt", self.attempt),
            c.get("remote_id", self.remote_id),
            c.get("submitted", self.submitted),
            c.get("created_at", self.created_at),
            c.get("updated_at", self.updated_at),
        )

    def with_status(self, status: JobStatus) -> Job:
        """A copy in ``status`` and nothing else changed (no state-machine check): the
        job as an intermediate step of a walk announces it, once per step."""
        return Job(
            self.id, self.provider, status, self.payload, self.progress, self.files,
            self.metadata, self.error, self.attempt, self.remote_id, self.submitted,
            self.created_at, self.updated_at,
        )  # fmt: skip

    def advance(self, to: JobStatus, at: int, **changes: Any) -> tuple[Job, list[Transition]]:
        """Move to ``to`` through every state in between; return the job and the steps taken.

        Raises ``InvalidTransition`` for a move the table does not allow.
        """
        steps: list[Transition] = []
        current = self.status
        try:
            path = forward_path(current, to)
        except InvalidTransition:
            raise InvalidTransition(current, to, self.id) from None
        for status in path:
            steps.append(Transition(self.id, self.attempt, current, status, at))
            current = status
        return self.evolve(status=to, updated_at=at, **changes), steps

    def new_attempt(self, at: int) -> tuple[Job, Transition]:
        """Start over from QUEUED after FAILED or CANCELLED.

        This is the only way out of a terminal state.
        """
        if self.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise InvalidTransition(self.status, JobStatus.QUEUED, self.id)
        job = attrs.evolve(
            self,
            status=JobStatus.QUEUED,
            attempt=self.attempt + 1,
            progress=0.0,
            error=None,
            remote_id=None,
            submitted=False,
            files=(),
            updated_at=at,
        )
        return job, Transition(self.id, job.attempt, self.status, JobStatus.QUEUED, at)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data (torrent bytes as base64 text)."""
        from providers._convert import converter  # noqa: PLC0415

        data: dict[str, Any] = converter.unstructure(self)
        return data


_JOB_FIELD_NAMES = frozenset(field.name for field in attrs.fields(Job))
