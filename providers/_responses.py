"""What providers answer: plain frozen values, the same for every provider."""

from __future__ import annotations

from typing import Any

import attrs

from providers._job import JobFile
from providers._status import JobStatus

__all__ = [
    "CancelJobResponse",
    "FileLinksResponse",
    "JobStatusResponse",
    "RateLimit",
    "StartJobResponse",
    "TestConnectionResponse",
]


@attrs.frozen
class JobStatusResponse:
    """A provider's view of one remote job, already mapped onto ``JobStatus``.

    ``native_status`` keeps the provider's own word for it. A remote failure
    (dead torrent, virus...) is ``status=FAILED`` with ``error_code`` and
    ``error_message``. ``info_hash`` / ``source`` identify the request, so that a
    submission interrupted by a crash can be found again.
    """

    remote_id: str
    status: JobStatus
    progress: float = 0.0
    files: tuple[JobFile, ...] = ()
    native_status: str = ""
    info_hash: str | None = None
    source: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict)


#: ``start_job`` answers with the remote job's first status.
StartJobResponse = JobStatusResponse


@attrs.frozen
class FileLinksResponse:
    """The files of a finished remote job with their links.

    ``ready`` is False when the provider has not produced every link yet (they
    arrive late on some services): ask again later. ``more`` (with ``ready``
    False) is a partial answer: the provider stopped after one request so as not
    to hold its caller (Real-Debrid unrestricts a pack one file a call inside the
    engine); ask again at once for the rest.
    """

    remote_id: str
    files: tuple[JobFile, ...]
    ready: bool = True
    more: bool = False


@attrs.frozen
class CancelJobResponse:
    """The result of a remote cancel; ``already_gone`` when the item did not exist."""

    remote_id: str
    cancelled: bool = True
    already_gone: bool = False


@attrs.frozen
class TestConnectionResponse:
    """Whether the provider answers and accepts our credentials, with account facts."""

    __test__ = False  # not a pytest test class, despite the name

    provider: str
    ok: bool
    message: str = ""
    account: str | None = None
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class RateLimit:
    """A token bucket a provider asks for: ``rate`` requests per second, ``burst`` at once."""

    rate: float
    burst: int
