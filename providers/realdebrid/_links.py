"""From a finished torrent's ``links[]`` to direct URLs, per selected file or as one archive.

RD lists one hoster-style link (``https://real-debrid.com/d/<ID>``) per selected
file, in the order of the selected entries of ``files[]`` ([RIVEN], [DECY] pair
them by index), or one link for all of them when it packed them into a RAR
([DECY] handleRarArchive). Links can also arrive late ([RDT] waits up to 60 s
after ``ended``), so "one link, several files" is ambiguous: the link is
unrestricted, and a name or type that says archive settles it; otherwise the
files are not ready yet. Each link becomes a direct URL through
``POST /unrestrict/link`` ([RDT], [RIVEN]); results are cached, since every call
adds a ``/downloads`` entry and counts toward fair use (rdt-client#433).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from providers._errors import ProviderError
from providers._job import JobFile
from providers._log import get_logger
from providers._payload import StartJobPayload
from providers._responses import FileLinksResponse
from providers._selection import selected_ids
from providers.realdebrid._api import RealDebridApi

__all__ = ["LinkMaker", "Unrestricted", "files_of", "is_archive"]

log = get_logger("debrid.providers.realdebrid")

# decypharr keeps the first 39 characters: links may carry a suffix (facts section 2).
_TORRENT_LINK = re.compile(r"^https://real-debrid\.com/d/[A-Za-z0-9]{13}")
_ARCHIVE_NAMES = (".rar", ".zip", ".7z")
_ARCHIVE_TYPES = ("rar", "zip", "7z")
#: The id we give the one file of an archived selection (RD's own ids start at 1).
ARCHIVE_FILE_ID = 0
_CACHE_LIMIT = 20_000


@attrs.frozen
class Unrestricted:
    """The useful part of a ``/unrestrict/link`` answer (unknown keys ignored)."""

    id: str
    filename: str
    filesize: int
    download: str
    mime: str
    source: str
    generated_at: float


def is_archive(item: Unrestricted) -> bool:
    """True when the unrestricted file is an archive by name or MIME type."""
    name, mime = item.filename.lower(), item.mime.lower()
    return name.endswith(_ARCHIVE_NAMES) or any(kind in mime for kind in _ARCHIVE_TYPES)


def files_of(info: Mapping[str, Any]) -> tuple[JobFile, ...]:
    """The files of a ``/torrents/info`` answer (leading ``/`` dropped; names stay data)."""
    return tuple(
        JobFile(
            id=int(entry["id"]),
            name=str(entry["path"]).lstrip("/"),
            size=int(entry.get("bytes") or 0),
            selected=bool(entry.get("selected")),
        )
        for entry in info.get("files") or ()
    )


class LinkMaker:
    """Unrestricts links (once each, while fresh) and assembles a torrent's file links."""

    def __init__(self, api: RealDebridApi, *, link_ttl: float, late_links_timeout: float) -> None:
        self.api = api
        self.link_ttl = link_ttl
        self.late_links_timeout = late_links_timeout
        self._by_source: OrderedDict[str, Unrestricted] = OrderedDict()
        self._by_download: OrderedDict[str, Unrestricted] = OrderedDict()
        # When each torrent was first seen finished without all its links (our clock:
        # RD's `ended` may not be UTC, [RDT] ChangeTimeZone).
        self._waiting_since: OrderedDict[str, float] = OrderedDict()

    def forget(self, remote_id: str) -> None:
        """Drop the late-links timer of ``remote_id``."""
        self._waiting_since.pop(remote_id, None)

    def file_links(
        self, remote_id: str, info: Mapping[str, Any], payload: StartJobPayload
    ) -> FileLinksResponse:
        """The answer to ``get_file_links`` for a torrent, from its ``/torrents/info``."""
        with self.api.parsing("GET /torrents/info"):
            native = str(info["status"])
            files = files_of(info)
        if native != "downloaded":
            return FileLinksResponse(remote_id, tuple(f for f in files if f.selected), ready=False)
        wanted = None if payload.select.is_all else selected_ids(payload.select, files)
        linked, ready = self.torrent_files(info, wanted)
        if ready:
            self._waiting_since.pop(remote_id, None)
            return FileLinksResponse(remote_id, linked, ready=True)
        now = self.api.context_clock().monotonic()
        since = self._waiting_since.setdefault(remote_id, now)
        if len(self._waiting_since) > _CACHE_LIMIT:
            self._waiting_since.popitem(last=False)
        if now - since >= self.late_links_timeout:
            raise ProviderError(
                f"Real-Debrid still lists fewer links than selected files "
                f"{self.late_links_timeout:g} s after the download ended",
                self.api.provider, code="LINKS_MISSING",
            )
        log.info("links_pending", provider=self.api.provider, remote_id=remote_id)
        return FileLinksResponse(remote_id, linked, ready=False)

    def unrestrict(self, link: str, *, torrent_link: bool, force: bool = False) -> Unrestricted:
        """A direct URL for ``link`` (a cached one while younger than ``link_ttl``)."""
        match = _TORRENT_LINK.match(link) if torrent_link else None
        source = match.group(0) if match else link
        now = self.api.context_clock().monotonic()
        cached = self._by_source.get(source)
        if cached is not None and not force and now - cached.generated_at < self.link_ttl:
            return cached
        try:
            # The unrestrict bucket first: the default token is then taken right
            # before the request leaves, so waiting here cannot bunch requests up.
            response = self.api.call("POST", "/unrestrict/link", data={"link": source},
                                     buckets=("unrestrict", "default"))
        except ProviderError as error:
            if torrent_link and error.code in ("HOSTER_UNAVAILABLE", "FILE_UNAVAILABLE"):
                # 19/24 on a torrent link: RD's copy is broken, only re-adding the
                # torrent fixes it (rclone_RD#10, zurg-public#26).
                raise ProviderError(
                    f"{error.message}; the torrent must be added again", error.provider,
                    code="LINK_DEAD", http_status=error.http_status,
                ) from None
            if not torrent_link and error.code == "HOSTER_UNAVAILABLE":
                # 19 on a hoster's own link: that hoster is down for now (the docs'
                # "hoster_unavailable"); worth trying again later, unlike a torrent's.
                raise ProviderError(
                    error.message, error.provider, code="HOSTER_UNAVAILABLE",
                    http_status=error.http_status, retryable=True,
                    retry_after=error.retry_after,
                ) from None
            raise
        body = self.api.json(response)
        with self.api.parsing("POST /unrestrict/link"):
            item = Unrestricted(
                id=str(body["id"]),
                filename=str(body.get("filename") or ""),
                filesize=int(body.get("filesize") or 0),  # 0 when unknown ([DOC])
                download=str(body["download"]),
                mime=str(body.get("mimeType") or ""),
                source=source,
                generated_at=now,
            )
        self._remember(item)
        return item

    def _remember(self, item: Unrestricted) -> None:
        for cache, key in ((self._by_source, item.source), (self._by_download, item.download)):
            cache.pop(key, None)
            cache[key] = item
            while len(cache) > _CACHE_LIMIT:
                cache.popitem(last=False)

    def known(self, download: str) -> Unrestricted | None:
        """What we know of a direct URL we handed out (None after a restart)."""
        return self._by_download.get(download)

    def fresh(self, item: Unrestricted) -> bool:
        """True while a direct URL is younger than ``link_ttl``."""
        return self.api.context_clock().monotonic() - item.generated_at < self.link_ttl

    def torrent_files(
        self, info: Mapping[str, Any], wanted: Sequence[int] | None
    ) -> tuple[tuple[JobFile, ...], bool]:
        """The selected files with direct links, and whether every link is there.

        ``wanted`` narrows the answer to those file ids (the caller's selection,
        when RD holds more selected files than that); None keeps every one.
        """
        with self.api.parsing("GET /torrents/info"):
            files = files_of(info)
            links = [str(link) for link in info.get("links") or ()]
        chosen = [f for f in files if f.selected]
        if not chosen:
            return (), False
        if len(links) == len(chosen) or len(links) > len(chosen):
            if len(links) > len(chosen):
                log.warning("more_links_than_files", provider=self.api.provider,
                            links=len(links), files=len(chosen))
            keep = [
                (f, link) for f, link in zip(chosen, links, strict=False)
                if wanted is None or f.id in wanted
            ] or list(zip(chosen, links, strict=False))
            return tuple(
                attrs.evolve(f, link=self.unrestrict(link, torrent_link=True).download)
                for f, link in keep
            ), True
        if len(links) == 1:
            item = self.unrestrict(links[0], torrent_link=True)
            if is_archive(item):
                archive = JobFile(
                    id=ARCHIVE_FILE_ID, name=item.filename or "archive.rar",
                    size=item.filesize or sum(f.size for f in chosen), link=item.download,
                )
                return (archive,), True
        # Fewer links than files and no archive: the rest are still coming ([RDT]).
        return tuple(chosen), False

    def torrent_link_for(self, info: Mapping[str, Any], file: JobFile) -> str | None:
        """The RD link that serves ``file`` in a finished torrent, if any."""
        with self.api.parsing("GET /torrents/info"):
            chosen = [f for f in files_of(info) if f.selected]
            links = [str(link) for link in info.get("links") or ()]
        if file.id == ARCHIVE_FILE_ID and len(links) == 1:
            return links[0]
        for index, entry in enumerate(chosen):
            if entry.id == file.id and index < len(links):
                return links[index]
        return None
