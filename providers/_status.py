"""Job lifecycle states and the one table of moves between them."""

from __future__ import annotations

import enum

from providers._errors import InvalidTransition

__all__ = ["TERMINAL", "TRANSITIONS", "JobStatus", "check_transition", "forward_path"]


class JobStatus(enum.StrEnum):
    """Where a job is in its lifecycle. COMPLETED, FAILED and CANCELLED are terminal."""

    QUEUED = "queued"
    RESOLVING = "resolving"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED."""
        return self in TERMINAL

    @property
    def rank(self) -> int:
        """Position on the happy path (QUEUED 0 ... COMPLETED 3); FAILED/CANCELLED rank 4."""
        return _RANK[self]


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

_HAPPY_PATH = (JobStatus.QUEUED, JobStatus.RESOLVING, JobStatus.DOWNLOADING, JobStatus.COMPLETED)
_RANK = {s: i for i, s in enumerate(_HAPPY_PATH)} | {JobStatus.FAILED: 4, JobStatus.CANCELLED: 4}

#: Every allowed move. Leaving a terminal state is not a transition but a retry
#: (a new attempt from QUEUED), see ``Job.new_attempt``.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RESOLVING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RESOLVING: frozenset({JobStatus.DOWNLOADING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.DOWNLOADING: frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def check_transition(
    from_status: JobStatus, to_status: JobStatus, job_id: str | None = None
) -> None:
    """Raise ``InvalidTransition`` unless ``from_status -> to_status`` is in the table."""
    if to_status not in TRANSITIONS[from_status]:
        raise InvalidTransition(from_status, to_status, job_id)


def forward_path(from_status: JobStatus, to_status: JobStatus) -> tuple[JobStatus, ...]:
    """The states to walk through, in order, to get from ``from_status`` to ``to_status``.

    A provider may report a state further on than the next one (a cached torrent
    that is done at once); the job then records every state in between so that its
    history is a legal path. FAILED and CANCELLED are reached in one step from any
    non-terminal state. Returns ``()`` for ``from_status == to_status``; raises
    ``InvalidTransition`` for a backward move or a move out of a terminal state.
    """
    if from_status == to_status:
        return ()
    if to_status in TRANSITIONS[from_status]:
        return (to_status,)
    if from_status.terminal or to_status.rank <= from_status.rank or to_status.rank >= 4:
        raise InvalidTransition(from_status, to_status)
    return _HAPPY_PATH[from_status.rank + 1 : to_status.rank + 1]
