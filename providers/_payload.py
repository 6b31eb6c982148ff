"""What a caller asks for: ``StartJobPayload`` and its file selection.

Build these through ``parse_start_job_payload`` (``providers._validation``), which
checks every field and raises a ``ValidationError`` naming the bad one.
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["FileSelection", "SourceKind", "StartJobPayload"]

SourceKind = Literal["url", "magnet", "torrent"]


@attrs.frozen
class FileSelection:
    """Which files of a job the caller wants. Empty means every file.

    The filters are combined with AND: a file is selected when its id is in
    ``ids`` (if any), its name matches one of ``globs`` (if any) and its size is at
    least ``min_size``; ``largest_only`` then keeps the largest of those.
    """

    ids: tuple[int, ...] = ()
    globs: tuple[str, ...] = ()
    min_size: int = 0
    largest_only: bool = False

    @property
    def is_all(self) -> bool:
        """True when no filter is set (every file is wanted)."""
        return not (self.ids or self.globs or self.min_size or self.largest_only)


@attrs.frozen
class StartJobPayload:
    """A validated request: exactly one source (url, magnet or torrent) plus options."""

    url: str | None = None
    magnet: str | None = None
    torrent: bytes | None = attrs.field(default=None, repr=False)
    select: FileSelection = FileSelection()
    download_dir: str | None = None
    connections: int = 1
    only_if_cached: bool = False
    priority: int = 0

    @property
    def kind(self) -> SourceKind:
        """Which source the payload carries."""
        if self.magnet is not None:
            return "magnet"
        if self.torrent is not None:
            return "torrent"
        return "url"

    @property
    def info_hash(self) -> str | None:
        """The lower-case hex BitTorrent info-hash of a magnet or torrent; None for a URL."""
        from providers._torrent import magnet_info_hash, torrent_info_hash  # noqa: PLC0415

        if self.magnet is not None:
            return magnet_info_hash(self.magnet)
        if self.torrent is not None:
            return torrent_info_hash(self.torrent)
        return None

    @property
    def source_key(self) -> str:
        """What identifies this request at a provider: the info-hash, or the URL."""
        return self.info_hash or self.url or ""
