"""Every message the actors exchange, grouped by the actor that receives it.

Messages are frozen attrs classes: immutable, so sharing them across threads is
safe, and they read well in ``match`` statements. A reply is always a message
back, never a blocking ``ask`` between actors; only the Engine facade (outside
every actor) waits, on a ``pykka.ThreadingFuture`` carried in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pykka

from providers import (
    FileLinksResponse,
    Job,
    JobStatusResponse,
    ProviderError,
    StartJobPayload,
    Transition,
)

Ref = pykka.ActorRef[Any]
Reply = pykka.ThreadingFuture[Any]

# -- to the SupervisorActor ----------------------------------------------------


@attrs.frozen
class CreateJob:
    """Persist new QUEUED jobs in one transaction, then reply with them (from the Engine)."""

    jobs: Sequence[Job]
    reply: Reply


@attrs.frozen
class JobChanged:
    """A job actor's new state, to persist (and then publish)."""

    job: Job
    transitions: Sequence[Transition] = ()
    replies: tuple[Reply, ...] = ()  # resolved with the job once committed
    finished: bool = False  # terminal: the slot is free (the actor stops itself)
    linger: bool = False  # finished, but the actor waits for an answer in flight first


@attrs.frozen
class SlotRefused:
    """The provider refused a submission for lack of slots: back to the waiting line."""

    job_id: str
    provider: str
    retry_after: float | None


@attrs.frozen
class ChildFailed:
    """A job or provider actor crashed (or failed to start)."""

    kind: str  # "job" or "provider"
    key: str  # job id or provider name
    error: str
    traceback: str
    urn: str = ""  # which actor: a stale one's crash must not touch its successor


@attrs.frozen
class Flush:
    """Write everything pending in one transaction (sent to self once per mailbox drain)."""


@attrs.frozen
class CancelJob:
    """Cancel a job (from the Engine)."""

    job_id: str
    reply: Reply


@attrs.frozen
class RetryJob:
    """Start a new attempt of a FAILED or CANCELLED job (from the Engine)."""

    job_id: str
    reply: Reply


@attrs.frozen
class SyncJob:
    """Ask the provider now and reply with the updated job (from the Engine)."""

    job_id: str
    reply: Reply


@attrs.frozen
class ClearCompleted:
    """Delete COMPLETED jobs and reply with how many (from the Engine)."""

    reply: Reply


@attrs.frozen
class Ready:
    """Answered once the supervisor has started its children and recovered jobs."""

    reply: Reply


@attrs.frozen
class SlotLimit:
    """A provider learnt how many jobs its account may run at once."""

    provider: str
    limit: int | None


@attrs.frozen
class AdmitTick:
    """Try again to give waiting jobs of ``provider`` an actor."""

    provider: str


@attrs.frozen
class RestartProvider:
    """Start a crashed provider actor again (after its restart delay)."""

    provider: str


# -- to a ProviderActor ---------------------------------------------------------


@attrs.frozen
class Submit:
    """Create the remote job for ``payload``; reply ``Submitted`` or ``CallFailed``."""

    job_id: str
    payload: StartJobPayload
    reply_to: Ref


@attrs.frozen
class FindExisting:
    """Look for a remote job already made for ``payload``; reply ``Found``."""

    job_id: str
    payload: StartJobPayload
    reply_to: Ref


@attrs.frozen
class Track:
    """Poll ``remote_id`` from now on and send the job its ``StatusUpdate``s."""

    job_id: str
    remote_id: str
    payload: StartJobPayload
    reply_to: Ref


@attrs.frozen
class Untrack:
    """Stop polling ``remote_id``."""

    remote_id: str


@attrs.frozen
class PollTick:
    """Time to refresh every tracked job with one ``list_statuses`` call."""

    generation: int


@attrs.frozen
class GetStatus:
    """Ask for one remote job's status now; reply ``StatusUpdate(sync=True)``."""

    job_id: str
    remote_id: str
    reply_to: Ref


@attrs.frozen
class FetchLinks:
    """Get the file links of a finished remote job; reply ``Links``."""

    job_id: str
    remote_id: str
    payload: StartJobPayload
    reply_to: Ref


@attrs.frozen
class CancelRemote:
    """Delete a remote job, best effort (no reply)."""

    job_id: str
    remote_id: str


@attrs.frozen
class TestConnection:
    """Check the provider's credentials (asked by the Engine, which waits)."""

    __test__ = False


# -- to a JobActor --------------------------------------------------------------


@attrs.frozen
class Submitted:
    """The remote job exists; ``links`` when it was done at once and they came along."""

    response: JobStatusResponse
    links: FileLinksResponse | None = None


@attrs.frozen
class Found:
    """The answer to ``FindExisting``."""

    response: JobStatusResponse | None


@attrs.frozen
class StatusUpdate:
    """A fresh remote status (from a poll, or from a ``GetStatus`` when ``sync``)."""

    response: JobStatusResponse
    sync: bool = False


@attrs.frozen
class Links:
    """The answer to ``FetchLinks``."""

    response: FileLinksResponse


@attrs.frozen
class CallFailed:
    """A provider call for this job failed."""

    op: str
    error: ProviderError


@attrs.frozen
class RetryOp:
    """A scheduled retry of ``op`` after a transient failure."""

    op: str


@attrs.frozen
class StallCheck:
    """Scheduled: has the job made progress since ``since``?"""

    since: float


@attrs.frozen
class Cancel:
    """Cancel this job; resolve ``reply`` with the CANCELLED job once committed."""

    reply: Reply


@attrs.frozen
class Sync:
    """Ask the provider now; resolve ``reply`` with the job once committed."""

    reply: Reply


@attrs.frozen
class ProviderRestarted:
    """The provider actor was restarted: re-send the request that was in flight."""


@attrs.frozen
class InjectCrash:
    """Testing aid: make the actor raise, as a bug in it would."""
