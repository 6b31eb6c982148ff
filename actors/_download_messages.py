"""What a DownloadActor and its JobActor tell each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from providers import JobFile

__all__ = [
    "CancelDownload",
    "DownloadFailed",
    "DownloadFinished",
    "DownloadProgress",
    "WindUpDownload",
]


@attrs.frozen
class DownloadProgress:
    """Files on disk so far (synced before they were counted), and the live figures.

    ``stats``: ``bytes_done``, ``bytes_total``, ``speed_bps``, ``eta_seconds``,
    ``files_done``, ``files_total``, ``current`` (the file being fetched).
    """

    token: int
    files: tuple[JobFile, ...]
    stats: Mapping[str, Any]


@attrs.frozen
class DownloadFinished:
    """Every selected file is on disk, complete and verified."""

    token: int
    files: tuple[JobFile, ...]


@attrs.frozen
class DownloadFailed:
    """A file could not be downloaded: ``code`` says why (``NO_SPACE``,
    ``DOWNLOAD_STALLED``, ``CHECKSUM_MISMATCH``, ``WRITE_ERROR``, ...). What is on
    disk stays, recorded in ``files``, for a retry."""

    token: int
    code: str
    message: str
    files: tuple[JobFile, ...]


@attrs.frozen
class CancelDownload:
    """The job is cancelled: stop every transfer, remove the ``.part`` files, stop."""


@attrs.frozen
class WindUpDownload:
    """The engine stops (asked, not told): stop every transfer, keep the ``.part``
    files, and answer with the files as they are on disk, synced."""
