"""Every message the actors exchange, grouped by the actor that receives it.

Messages are frozen attrs classes: immutable, so sharing them across threads is
safe, and they read well in ``match`` statements. A reply is always a message
back, never a blocking ``ask`` between actors; only the Engine facade (outside
every actor) waits, on a ``pykka.ThreadingFuture`` carried in the message.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
import pykka

from providers import (
    FileLinksResponse,
    Job,
    JobFile,
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
    """Persist new QUEUED jobs in one transaction, then reply with them (from the Engine).

    ``chosen_ids``: the caller chose the ids (``create_jobs(ids=...)``), so the
    supervisor, the one writer, refuses the lot if any id is already a job's.
    """

    jobs: Sequence[Job]
    reply: Reply
    chosen_ids: bool = False


@attrs.frozen
class JobChanged:
    """A job actor's new state, to persist (and then publish)."""

    job: Job
    transitions: Sequence[Transition] = ()
    replies: tuple[Reply, ...] = ()  # resolved with the job once committed
    finished: bool = False  # terminal: the slot is free (the actor stops itself)
    #: What a job that ended without completing hands its provider actor: the
    #: supervisor records it as owed in the same commit as the job's last state.
    cleanup: Cleanup | None = None


#: Submission refusals that send the job back to the supervisor's line (the provider
#: made nothing), and whether each is a cooldown: True when it says nothing of how
#: many slots the account has (so the supervisor does not clamp the slot limit).
SUBMISSION_REFUSALS: Mapping[str, bool] = MappingProxyType(
    {"ACTIVE_LIMIT": False, "SEEDING_LIMIT": True, "COOLDOWN_LIMIT": True}
)


def usable_hint(seconds: float | None) -> float | None:
    """A refusal's Retry-After if it says anything (above 0, not NaN); else None.
    A hint of nothing must not become a pause of nothing."""
    if seconds is None or math.isnan(seconds) or seconds <= 0:
        return None
    return seconds


#: Refusals that concern the whole account, not one job (a bad or revoked key, a
#: locked or inactive account, premium gone): the provider actor holds its calls
#: (``AccountHeld``) and probes until the account works again.
ACCOUNT_REFUSALS = frozenset({
    "BAD_TOKEN", "NO_AUTH", "AUTH_REQUIRED", "AUTH_FAILED", "ACCOUNT_LOCKED",
    "ACCOUNT_NOT_ACTIVATED", "TWO_FACTOR_REQUIRED", "IP_NOT_ALLOWED", "PERMISSION_DENIED",
    "BANNED_USER",
})
#: Of those, the ones that say the credentials are refused (the provider is ``auth_failed``).
AUTH_REFUSALS = frozenset({"BAD_TOKEN", "NO_AUTH", "AUTH_REQUIRED", "AUTH_FAILED"})


#: Refusals that made nothing remotely: a submission refused with one is not "unsure"
#: (no lookup before it is sent again, no cleanup lookup after its job ends).
REFUSED = frozenset({*SUBMISSION_REFUSALS, "RATE_LIMITED", "HOSTER_UNAVAILABLE"})


@attrs.frozen
class SlotRefused:
    """The provider refused a submission for lack of slots, or for a cooldown
    (``cooldown``: it says nothing of how many slots there are): back to the line."""

    job_id: str
    provider: str
    retry_after: float | None
    cooldown: bool = False


class ChildKind(enum.Enum):
    """The two kinds of supervised children."""

    JOB = "job"
    PROVIDER = "provider"


@attrs.frozen
class ChildFailed:
    """A job or provider actor crashed (or failed to start)."""

    kind: ChildKind
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
class RefreshLinks:
    """A completed job's links, to the provider actor: the ones that expired are
    asked again, one per turn; the supervisor commits them (``LinksRefreshed``)
    and answers ``reply`` with the job."""

    job: Job
    reply: Reply


@attrs.frozen
class LinksRefreshed:
    """The provider actor's answer to ``RefreshLinks``: the job's files with fresh
    links, or None when none had expired (or none could be asked again); for every
    sync of the job that came while its refresh was under way."""

    job_id: str
    remote_id: str | None
    files: tuple[JobFile, ...] | None
    replies: tuple[Reply, ...]


@attrs.frozen
class ClearCompleted:
    """Delete COMPLETED jobs and reply with how many (from the Engine)."""

    reply: Reply


@attrs.frozen
class DeleteJobs:
    """Delete these finished jobs (from the Engine).

    Replies with ``{job_id: None}`` for each job deleted and ``{job_id: error}``
    for each one kept: ``JobNotFound``, or ``InvalidTransition`` for a job that
    is not finished (or still has an actor or an unwritten change).
    """

    job_ids: tuple[str, ...]
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
class Leftover:
    """A finished job's ``Cleanup`` that found its provider actor down.

    The supervisor keeps it (in a place that outlives the supervisor itself) and
    hands it to the provider's next actor.
    """

    provider: str
    message: Cleanup


@attrs.frozen
class SyncFailed:
    """A job actor answered forwarded syncs with ``error``: the supervisor forgets them."""

    job_id: str
    replies: tuple[Reply, ...]
    error: ProviderError


@attrs.frozen
class Describe:
    """For ``Engine.health()``: ``reply`` gets a ``SupervisorReport``."""

    reply: Reply


@attrs.frozen
class SupervisorReport:
    """What the supervisor can say about admission, slots and its writer right now."""

    slots_used: Mapping[str, int]
    slot_limits: Mapping[str, int | None]
    #: Providers whose admission is paused after a slot refusal, until (clock epoch seconds).
    admission_paused: Mapping[str, float]
    waiting_in_memory: Mapping[str, int]
    backlog_open: Mapping[str, bool]
    job_actors: int
    pending_writes: int
    write_failures: int
    commits: int
    providers_down: tuple[str, ...]


@attrs.frozen
class SupervisorDown:
    """To the root: the supervisor ``urn`` crashed; ``children`` were told to stop."""

    urn: str
    error: str
    children: tuple[Ref, ...]


@attrs.frozen
class RestartProvider:
    """Start a crashed provider actor again (after its restart delay)."""

    provider: str


# -- to a ProviderActor ---------------------------------------------------------


class Op(enum.Enum):
    """What a job asks of its provider; echoed in ``CallFailed`` and ``BudgetWait``."""

    SUBMIT = "submit"
    FIND = "find"
    LINKS = "links"
    STATUS = "status"
    RESOLVE = "resolve"


@attrs.frozen
class Submit:
    """Create the remote job for ``payload``; reply ``Submitted`` or ``CallFailed``."""

    job_id: str
    request_id: int
    payload: StartJobPayload
    reply_to: Ref


@attrs.frozen
class FindExisting:
    """Look for a remote job already made for ``payload`` that no other job owns; ``Found``."""

    job_id: str
    request_id: int
    payload: StartJobPayload
    reply_to: Ref


@attrs.frozen
class FetchLinks:
    """Get the file links of a finished remote job; reply ``Links`` or ``CallFailed``."""

    job_id: str
    request_id: int
    remote_id: str
    payload: StartJobPayload
    reply_to: Ref


@attrs.frozen
class ResolveLink:
    """A direct URL to fetch ``file`` now, for a local download; reply ``Resolved``
    or ``CallFailed``. ``failed_url`` is the URL that stopped working (expired or
    revoked), which the provider must not hand out again."""

    job_id: str
    request_id: int
    remote_id: str
    file: JobFile
    payload: StartJobPayload
    reply_to: Ref
    failed_url: str | None = None


@attrs.frozen
class GetStatus:
    """Ask for one remote job's status now; reply ``StatusUpdate(request_id=...)``."""

    job_id: str
    request_id: int
    remote_id: str
    reply_to: Ref


@attrs.frozen
class Track:
    """Poll ``remote_id`` for ``job_id`` from now on and send it ``StatusUpdate``s."""

    job_id: str
    remote_id: str
    payload: StartJobPayload
    reply_to: Ref


@attrs.frozen
class Release:
    """``job_id`` is COMPLETED: stop polling ``remote_id`` for it; the item stays remote."""

    job_id: str
    remote_id: str


@attrs.frozen
class Released:
    """The ``Release`` of every job of one provider whose completion one commit wrote.

    Sent by the supervisor once the completions are durable, one message per
    provider and flush instead of one per job: a job that completes is never
    released before the store says so, and a job crash before the commit leaves
    its item owned by its id, for its successor's lookup to find again.
    """

    releases: tuple[Release, ...]


class CleanupKind(enum.Enum):
    """What a provider actor owes for a finished job: a delete, or a lookup then a delete."""

    DELETE = "delete"  #: keyed by remote id
    LOOKUP = "lookup"  #: keyed by job id (its payload is looked up)


#: One owed cleanup of a provider, as the store records it.
CleanupKey = tuple[CleanupKind, str]


def owed_by(cleanup: Cleanup) -> CleanupKey | None:
    """The cleanup the store records for ``cleanup`` (the provider actor uses the same rule).

    A known remote id is deleted (a lookup is owed only when there is none).
    """
    if cleanup.remote_id is not None:
        return (CleanupKind.DELETE, cleanup.remote_id)
    if cleanup.unsure:
        return (CleanupKind.LOOKUP, cleanup.job_id)
    return None


@attrs.frozen
class CleanupsChanged:
    """A provider actor's owed cleanups changed: record ``owed``, forget ``settled``.

    Sent after the message that changed them; the supervisor writes it with its
    next commit, so an owed delete survives a killed process.
    """

    provider: str
    owed: tuple[CleanupKey, ...]
    settled: tuple[CleanupKey, ...]


@attrs.frozen
class Cleanup:
    """``job_id`` ended without completing (cancelled, failed, stalled, crashed).

    The provider actor withdraws the job's calls still waiting for a token,
    deletes every remote item the job owns that no other live job owns and no
    completed job released, and,
    when ``unsure`` (a submission may have landed without its answer reaching
    the job), first looks the payload up with ``find_existing`` (excluding what
    other jobs own) and deletes what it finds. No reply.
    """

    job_id: str
    payload: StartJobPayload
    remote_id: str | None
    unsure: bool
    #: The item was kept on purpose (``keep_failed_items``) and is to go now: a
    #: retry of the job, which submits afresh.
    unkeep: bool = False


@attrs.frozen
class Adopt:
    """Recovery: these (job id, remote id) pairs own their remote items (from the store).

    ``released``: items of COMPLETED jobs, most recent first: never adopted nor deleted.
    """

    owners: Sequence[tuple[str, str]]
    released: Sequence[str] = ()
    #: Items whose delete was still owed when the engine last stopped.
    deletes: Sequence[str] = ()
    #: Every cleanup the store records as owed for this provider now (the provider
    #: actor reports what changes against it, see ``CleanupsChanged``).
    recorded: Sequence[CleanupKey] = ()
    #: The lookups the store records as owed, of jobs that ended (each a Cleanup).
    lookups: Sequence[Cleanup] = ()


@attrs.frozen
class PollTick:
    """Time to refresh every tracked job with one ``list_statuses`` call."""

    generation: int


@attrs.frozen
class Wake:
    """Scheduled: a budget the queued calls wait for has a token again."""

    generation: int


@attrs.frozen
class TestConnection:
    """Check the provider's credentials; ``reply`` gets the ``TestConnectionResponse``."""

    __test__ = False

    reply: Reply


@attrs.frozen
class DescribeProvider:
    """For ``Engine.health()``: ``reply`` gets a ``ProviderReport``."""

    reply: Reply


@attrs.frozen
class ProviderReport:
    """What a provider actor can say about itself right now."""

    name: str
    #: Calls waiting in its queue, by kind (``cancel``, ``status``, ``links``, ``submit``).
    queued: Mapping[str, int]
    #: Budgets that calls wait for, with the clock epoch (seconds) of their next token.
    waiting_for: Mapping[str, float]
    #: Bucket pauses (a 429, a Retry-After) by bucket: until when (clock epoch seconds).
    paused_until: Mapping[str, float]
    tracked: int
    slot_limit: int | None
    last_error: str | None = None
    #: Why each paused bucket is paused (a 429 and where, a rate limit in a body).
    pause_reasons: Mapping[str, str] = attrs.field(factory=dict)
    #: The account's refusal while it holds calls back (None: the account works).
    account: AccountNote | None = None
    #: Until when (clock epoch seconds) submissions are answered unsent after a slot
    #: refusal or a cooldown, and its code.
    submissions_held: tuple[str, float] | None = None


@attrs.frozen
class AccountNote:
    """The account refused us as a whole: since when, and when its jobs give up.

    Times are clock epoch seconds. ``auth``: the credentials themselves were
    refused (``AUTH_REFUSALS``), as opposed to a lock or an account without premium.
    """

    code: str
    message: str
    since: float
    fail_at: float
    auth: bool

    def as_metadata(self) -> dict[str, Any]:
        """The note a waiting job keeps in its metadata (milliseconds, JSON-ready)."""
        return {
            "account": self.code,
            "message": self.message,
            "since_ms": int(self.since * 1000),
            "fail_at_ms": int(self.fail_at * 1000),
        }


# -- to a JobActor --------------------------------------------------------------


@attrs.frozen
class Submitted:
    """The remote job exists; ``links`` when it was done at once and they came along."""

    request_id: int
    response: JobStatusResponse
    links: FileLinksResponse | None = None


@attrs.frozen
class Found:
    """The answer to ``FindExisting``: the item found, or None."""

    request_id: int
    response: JobStatusResponse | None


@attrs.frozen
class StatusUpdate:
    """A fresh remote status: from a poll (``request_id`` None) or answering ``GetStatus``."""

    response: JobStatusResponse
    request_id: int | None = None


@attrs.frozen
class Links:
    """The answer to ``FetchLinks``."""

    request_id: int
    response: FileLinksResponse


@attrs.frozen
class Resolved:
    """The answer to ``ResolveLink``: where ``file_id`` can be fetched now."""

    request_id: int
    file_id: int
    url: str


@attrs.frozen
class CallFailed:
    """The provider call ``request_id`` (an ``op``) failed with ``error``."""

    request_id: int
    op: Op
    error: ProviderError


@attrs.frozen
class BudgetWait:
    """Call ``request_id`` waits in the provider's queue for a token of ``budget``.

    ``until`` is the clock epoch (seconds) when the token is due. Sent once per
    call, and only when the wait is long enough to be worth telling.
    """

    request_id: int
    op: Op
    budget: str
    until: float


@attrs.frozen
class AccountHeld:
    """The account refuses every call: the job waits (no stall timer) until
    ``AccountResumed``, or fails once ``note.fail_at`` passes. ``request_id`` and
    ``op`` name the call held back, or are None for a job that only waits for polls."""

    note: AccountNote
    request_id: int | None = None
    op: Op | None = None


@attrs.frozen
class AccountResumed:
    """The account works again: held calls go out, stall timers start afresh."""


@attrs.frozen
class RetryOp:
    """A scheduled retry of ``op``; ``token`` tells a current timer from a stale one."""

    op: Op
    token: int


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
    """The provider actor was restarted as ``generation``: requests sent before are lost."""

    generation: int


@attrs.frozen
class WindUp:
    """The engine stops (asked, of a job actor): a local download hands back what
    it synced; the answer is the job as it is on disk now, or None."""


@attrs.frozen
class InjectCrash:
    """Testing aid: make the actor raise, as a bug in it would."""
