"""Direct download URLs: which file a link names, and the CDN URLs kept until they expire."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from providers._bounded import TtlCache
from providers._job import JobFile
from providers.torbox._api import TorBoxApi
from providers.torbox._ids import ItemKind, RemoteRef
from providers.torbox._items import REQUESTDL, as_int

__all__ = ["DirectLinks", "link_target"]

Target = tuple[ItemKind, int, int]

#: CDN URLs kept at most (a few hundred bytes each), however many files a ttl sees.
LINKS_KEPT = 10_000


def link_target(ref: RemoteRef | None, file: JobFile) -> Target | None:
    """(kind, item id, file id) of ``file``: from our own permalink, else from the job's id.

    The permalink is the better witness: a queued job's item id changed when it
    started. None when neither names a started item.
    """
    if file.link:
        parts = urlsplit(file.link)
        query = parse_qs(parts.query)
        kind: ItemKind = "webdl" if "/webdl/" in parts.path else "torrent"
        number = as_int((query.get(REQUESTDL[kind][1]) or [""])[0])
        file_id = as_int((query.get("file_id") or [""])[0])
        if number is not None and file_id is not None:
            return kind, number, file_id
    if ref is None or ref.queued:
        return None
    return ref.kind, ref.number, file.id


class DirectLinks:
    """CDN URLs from requestdl, reused for ``ttl`` seconds, requested again after.

    Reuse matters: every permalink hit is an API call and counts toward the
    limits (decypharr#300). Expiry matters: CDN URLs stop working ("Invalid
    Presigned Token", decypharr#183) 3 h after they are made, 1 h in older docs
    (PYSDK), so the default ttl of 50 min is safe under either. At most
    ``LINKS_KEPT`` are kept, the oldest dropped first.
    """

    def __init__(self, api: TorBoxApi, ttl: float, now: Callable[[], float]) -> None:
        self.api = api
        self._kept: TtlCache[Target, str] = TtlCache(ttl, now, limit=LINKS_KEPT)

    def resolve(self, target: Target) -> str:
        """A URL for ``target`` that is still fresh, requesting a new one when needed."""
        url = self._kept.get(target)
        if url is None:
            url = self.api.request_link(*target)
            self._kept.put(target, url)
        return url

    def forget(self, target: Target) -> None:
        """Drop the URL kept for ``target`` (it stopped working before its ttl)."""
        self._kept.pop(target)
