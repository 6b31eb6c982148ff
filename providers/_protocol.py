"""The contract between the engine and a remote service."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from providers._clock import Clock, RealClock
from providers._job import JobFile
from providers._payload import StartJobPayload
from providers._ratelimit import RateLimiter
from providers._responses import (
    CancelJobResponse,
    FileLinksResponse,
    JobStatusResponse,
    RateLimit,
    TestConnectionResponse,
)
from providers._secrets import MemorySecretStore, SecretStore
from providers._telemetry import Telemetry

__all__ = ["BaseProvider", "Call", "Provider", "ProviderContext"]


class Call(enum.Enum):
    """The kinds of call the engine makes, for ``Provider.budgets``."""

    SUBMIT = "submit"  # start_job (and, when done at once, its file links)
    FIND = "find"  # find_existing
    LINKS = "links"  # get_file_links
    STATUS = "status"  # get_status
    POLL = "poll"  # list_statuses
    CANCEL = "cancel"  # cancel
    TEST = "test"  # test_connection


@attrs.define
class ProviderContext:
    """What the engine hands a provider when it takes it into service.

    ``limiters`` holds one token bucket per name the provider asked for in
    ``rate_limits()``; they belong to the engine (they outlive a provider restart)
    and every HTTP request takes a token from the ones that guard it. With
    ``blocking`` (a provider used on its own) a request waits for its tokens;
    without (inside the engine, whose provider actor never sleeps and checks the
    buckets named by ``budgets`` before each call) it takes them at once, into
    debt if the estimate was short. ``keep_failed_items``: the engine leaves a
    failed job's remote item on the account, so a provider that gives up on one
    (a stuck torrent) reports it failed without deleting it. ``telemetry`` counts
    the requests and their answers for the engine's metrics.
    """

    clock: Clock = attrs.field(factory=RealClock)
    limiters: Mapping[str, RateLimiter] = attrs.field(factory=dict)
    secrets: SecretStore = attrs.field(factory=MemorySecretStore)
    blocking: bool = True
    keep_failed_items: bool = False
    telemetry: Telemetry = attrs.field(factory=Telemetry, eq=False)


@runtime_checkable
class Provider(Protocol):
    """A remote debrid service, seen through plain synchronous calls.

    Implementations are single-threaded (the engine calls one from one thread at a
    time), do their HTTP with httpx, and know nothing of actors. Every failure is
    a ``ProviderError``; anything else raised counts as a crash of the provider.
    """

    name: str

    def bind(self, context: ProviderContext) -> None:
        """Take the engine's clock, rate limiters and secret store before first use."""

    def rate_limits(self) -> Mapping[str, RateLimit]:
        """Token buckets this provider's account needs, by name (``"default"`` guards all)."""

    @property
    def max_active(self) -> int | None:
        """How many remote jobs may run at once (None: no limit known). May change over time."""

    def budgets(self, call: Call, payload: StartJobPayload | None) -> Mapping[str, int]:
        """Tokens per bucket a ``call`` (for ``payload``, when it has one) is expected to take.

        Only buckets of ``rate_limits()`` count. The engine runs the call once every
        bucket has that many tokens (at most its burst); a call that takes more
        leaves the bucket in debt, so the estimate costs pace, never the limits.
        """

    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        """Submit a job; returns its first remote status (with ``remote_id``)."""

    def get_status(self, remote_id: str) -> JobStatusResponse:
        """One remote job's current status."""

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        """The status of many remote jobs with as few requests as the API allows.

        Ids the provider does not know are left out of the answer.
        """

    def find_existing(
        self, payload: StartJobPayload, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        """A remote job already made for this payload (by info-hash or link), if any.

        Never one whose remote id is in ``exclude``: the engine passes the remote ids
        that other live jobs own, so a job looking for its own twin (after a crash or
        a timed-out submission) does not take another job's item. When several items
        match, an excluded one is skipped and the search goes on.
        """

    def cancel(self, remote_id: str) -> CancelJobResponse:
        """Stop and delete a remote job (an unknown id counts as already gone)."""

    def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
        """The selected files of a finished remote job with their links."""

    def resolve_download_url(self, remote_id: str, file: JobFile) -> str:
        """A direct URL to fetch ``file`` now (links may be permalinks or expire)."""

    def test_connection(self) -> TestConnectionResponse:
        """Check that the service answers and the credentials work."""

    def close(self) -> None:
        """Release connections."""


class BaseProvider:
    """Defaults for the optional parts of ``Provider``; real providers subclass it."""

    name: str = "base"
    #: True when the provider takes a rate-limit token before each HTTP request
    #: itself (``ProviderHttp`` does); otherwise the engine takes one per call.
    limits_requests: bool = False
    #: True when ``max_active`` is only known after the first calls (the service
    #: reports it); until then the engine submits one job at a time rather than
    #: flooding the account with submissions it would refuse.
    slots_learnt_lazily: bool = False

    def __init__(self) -> None:
        self.context = ProviderContext()
        self._max_active: int | None = None

    def bind(self, context: ProviderContext) -> None:
        """Keep the engine's context."""
        self.context = context

    def rate_limits(self) -> Mapping[str, RateLimit]:
        """No buckets by default."""
        return {}

    def budgets(self, call: Call, payload: StartJobPayload | None) -> Mapping[str, int]:
        """One ``default`` token per call, when there is such a bucket."""
        return {"default": 1} if "default" in self.rate_limits() else {}

    @property
    def max_active(self) -> int | None:
        """The slot limit last learnt from the service."""
        return self._max_active

    def find_existing(
        self, payload: StartJobPayload, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        """No lookup by default."""
        return None

    def resolve_download_url(self, remote_id: str, file: JobFile) -> str:
        """The file's link as it is."""
        if file.link is None:
            from providers._errors import ProviderError  # noqa: PLC0415

            raise ProviderError(f"file {file.id} has no link", self.name, code="NO_LINK")
        return file.link

    def link_expired(self, remote_id: str, file: JobFile, issued_at: float) -> bool:
        """True when ``file``'s link, handed out at ``issued_at`` (epoch seconds), no
        longer works and ``resolve_download_url`` would give a new one. No request.
        By default links are permalinks and never expire."""
        return False

    def close(self) -> None:
        """Nothing to release by default."""
