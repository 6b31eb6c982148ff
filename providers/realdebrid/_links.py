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

The selected files are learnt at selection and the links from the poll that saw
the torrent finished, so a job's links cost no second ``/torrents/info``; that
read is the fallback when the memory is gone (a restart, an adopted torrent) or
does not add up (fewer links than files).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from providers._bounded import BoundedDict, TtlCache
from providers._errors import ProviderError
from providers._job import JobFile
from providers._log import get_logger
from providers._payload import StartJobPayload
from providers._responses import FileLinksResponse
from providers._selection import selected_ids
from providers.realdebrid._api import RealDebridApi

__all__ = ["LinkMaker", "Selected", "Unrestricted", "files_of", "is_archive"]

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


@attrs.frozen
class Selected:
    """The files RD holds selected for a torrent, in ``files[]`` order (the order of
    ``links[]``), and the ids of those the job wants (None: every one)."""

    files: tuple[JobFile, ...]
    wanted: frozenset[int] | None = None


def is_archive(item: Unrestricted) -> bool:
    """True when the unrestricted file is an archive by name or MIME type."""
    name, mime = item.filename.lower(), item.mime.lower()
    return name.endswith(_ARCHIVE_NAMES) or any(kind in mime for kind in _ARCHIVE_TYPES)


def is_torrent_link(link: str) -> bool:
    """True for RD's hoster-style link of a torrent's file (not a direct URL)."""
    return _TORRENT_LINK.match(link) is not None


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


def links_of(item: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``links[]`` of a ``/torrents`` or ``/torrents/info`` object."""
    return tuple(str(link) for link in item.get("links") or ())


class _Budget:
    """How many requests a ``file_links`` call may still send (None: no limit)."""

    def __init__(self, left: int | None) -> None:
        self.left = left

    def spend(self) -> bool:
        """Take one request; False when none is left (the answer is then partial)."""
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class LinkMaker:
    """Unrestricts links (once each, while fresh) and assembles a torrent's file links."""

    def __init__(self, api: RealDebridApi, *, link_ttl: float, late_links_timeout: float) -> None:
        self.api = api
        self.link_ttl = link_ttl
        self.late_links_timeout = late_links_timeout
        #: Direct URLs by the link they came from, answered again while younger than
        #: ``link_ttl`` (every unrestrict adds a /downloads entry and counts toward
        #: fair use); by the URL, what we know of those we handed out, aged or not.
        self._by_source: TtlCache[str, Unrestricted] = TtlCache(
            link_ttl, lambda: api.context_clock().monotonic(), limit=_CACHE_LIMIT
        )
        self._by_download: BoundedDict[str, Unrestricted] = BoundedDict(_CACHE_LIMIT)
        # When each torrent was first seen finished without all its links (our clock:
        # RD's `ended` may not be UTC, [RDT] ChangeTimeZone).
        self._waiting_since: BoundedDict[str, float] = BoundedDict(_CACHE_LIMIT)
        # Per torrent: what was selected (learnt at selection), and the links of the
        # last status that showed it finished.
        self._selected: BoundedDict[str, Selected] = BoundedDict(_CACHE_LIMIT)
        self._listed: BoundedDict[str, tuple[str, ...]] = BoundedDict(_CACHE_LIMIT)
        # The direct URLs a torrent's answer in parts has gathered so far, by RD link:
        # kept apart from the cache, which may let them go first (a short link_ttl).
        self._gathered: BoundedDict[str, dict[str, Unrestricted]] = BoundedDict(_CACHE_LIMIT)

    def forget(self, remote_id: str) -> None:
        """Drop everything kept for ``remote_id`` (the unrestrict cache stays)."""
        for store in (self._waiting_since, self._selected, self._listed, self._gathered):
            store.pop(remote_id, None)

    # -- what polls and selection teach ----------------------------------------
    def learn_selection(self, remote_id: str, files: Sequence[JobFile]) -> None:
        """The torrent's files as just selected (``selected`` set as sent to RD)."""
        self._selected[remote_id] = Selected(tuple(f for f in files if f.selected))

    def learn_status(self, remote_id: str, item: Mapping[str, Any]) -> None:
        """Keep the links of a finished torrent's status (a list item or an info)."""
        with self.api.parsing("torrent status"):
            if str(item["status"]) == "downloaded":
                self._listed[remote_id] = links_of(item)

    def _learn_info(
        self, remote_id: str, info: Mapping[str, Any], payload: StartJobPayload | None
    ) -> str:
        """What a ``/torrents/info`` read says (the fallback); returns its status."""
        with self.api.parsing("GET /torrents/info"):
            native = str(info["status"])
            files = files_of(info)
        # RD may hold more files selected than the job asked for (an adopted torrent).
        wanted = None
        if payload is not None and not payload.select.is_all:
            wanted = frozenset(selected_ids(payload.select, files))
        self._selected[remote_id] = Selected(tuple(f for f in files if f.selected), wanted)
        self.learn_status(remote_id, info)
        return native

    # -- get_file_links ---------------------------------------------------------
    def file_links(
        self,
        remote_id: str,
        payload: StartJobPayload,
        read_info: Callable[[], Mapping[str, Any]],
        *,
        one_request: bool,
    ) -> FileLinksResponse:
        """The answer to ``get_file_links`` for a torrent.

        With ``one_request`` (inside the engine) the call sends at most one request
        (the info read, or one unrestrict) and answers ``more=True`` while files
        still need one. A payload with ``download_dir`` gets RD's own links: each is
        unrestricted by ``resolve_download_url`` when its download starts.
        """
        budget = _Budget(1 if one_request else None)
        selected, listed = self._selected.get(remote_id), self._listed.get(remote_id)
        if selected is None or listed is None:
            budget.spend()
            native = self._learn_info(remote_id, read_info(), payload)
            selected, listed = self._selected[remote_id], self._listed.get(remote_id)
            if native != "downloaded" or listed is None:
                return FileLinksResponse(remote_id, selected.files, ready=False)
        chosen = selected.files
        answer: FileLinksResponse | None = None
        if chosen and len(listed) >= len(chosen):
            if len(listed) > len(chosen):
                log.warning("more_links_than_files", provider=self.api.provider,
                            links=len(listed), files=len(chosen))
            pairs = list(zip(chosen, listed, strict=False))
            wanted = selected.wanted
            pairs = [(f, link) for f, link in pairs if wanted is None or f.id in wanted] or pairs
            answer = self._linked(remote_id, pairs, direct=payload.download_dir is None,
                                  budget=budget)
        elif len(chosen) > 1 and len(listed) == 1:
            answer = self._archive(remote_id, chosen, listed[0], budget)
        if answer is not None:
            if answer.ready:
                self._waiting_since.pop(remote_id, None)
            return answer
        return self._late(remote_id, chosen)

    def _linked(
        self, remote_id: str, pairs: Sequence[tuple[JobFile, str]], *, direct: bool,
        budget: _Budget,
    ) -> FileLinksResponse:
        files = []
        gathered = self._gathered.get(remote_id) or {}
        for file, link in pairs:
            url = link
            if direct:
                item = gathered.get(link) or self._cached(link, torrent_link=True)
                if item is None:
                    if not budget.spend():
                        self._gathered[remote_id] = gathered
                        return FileLinksResponse(remote_id, tuple(f for f, _ in pairs),
                                                 ready=False, more=True)
                    item = self.unrestrict(link, torrent_link=True)
                gathered[link] = item
                url = item.download
            files.append(attrs.evolve(file, link=url))
        self._gathered.pop(remote_id, None)
        return FileLinksResponse(remote_id, tuple(files), ready=True)

    def _archive(
        self, remote_id: str, chosen: tuple[JobFile, ...], link: str, budget: _Budget
    ) -> FileLinksResponse | None:
        """One link for several files: an archive (one file), or None (links still coming)."""
        item = self._cached(link, torrent_link=True)
        if item is None:
            if not budget.spend():
                return FileLinksResponse(remote_id, chosen, ready=False, more=True)
            item = self.unrestrict(link, torrent_link=True)
        if not is_archive(item):
            return None
        archive = JobFile(
            id=ARCHIVE_FILE_ID, name=item.filename or "archive.rar",
            size=item.filesize or sum(f.size for f in chosen), link=item.download,
        )
        return FileLinksResponse(remote_id, (archive,), ready=True)

    def _late(self, remote_id: str, chosen: tuple[JobFile, ...]) -> FileLinksResponse:
        """Fewer links than files and no archive: the rest are still coming ([RDT])."""
        # The links seen are stale now: the next call reads /torrents/info afresh.
        self._listed.pop(remote_id, None)
        now = self.api.context_clock().monotonic()
        since = self._waiting_since.get(remote_id)
        if since is None:
            since = now
            self._waiting_since[remote_id] = now
        if now - since >= self.late_links_timeout:
            raise ProviderError(
                f"Real-Debrid still lists fewer links than selected files "
                f"{self.late_links_timeout:g} s after the download ended",
                self.api.provider, code="LINKS_MISSING",
            )
        log.info("links_pending", provider=self.api.provider, remote_id=remote_id)
        return FileLinksResponse(remote_id, chosen, ready=False)

    # -- unrestricting ------------------------------------------------------------
    def _source(self, link: str, *, torrent_link: bool) -> str:
        match = _TORRENT_LINK.match(link) if torrent_link else None
        return match.group(0) if match else link

    def _cached(self, link: str, *, torrent_link: bool) -> Unrestricted | None:
        return self._by_source.get(self._source(link, torrent_link=torrent_link))

    def unrestrict(self, link: str, *, torrent_link: bool, force: bool = False) -> Unrestricted:
        """A direct URL for ``link`` (a cached one while younger than ``link_ttl``)."""
        source = self._source(link, torrent_link=torrent_link)
        cached = None if force else self._cached(source, torrent_link=False)
        if cached is not None:
            return cached
        now = self.api.context_clock().monotonic()
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
        self._by_source.put(item.source, item)
        self._by_download[item.download] = item
        return item

    def forget_download(self, download: str) -> None:
        """Drop a direct URL that stopped working (404/503): the next unrestrict asks RD."""
        item = self._by_download.pop(download, None)
        if item is not None and self._by_source.get(item.source) is item:
            self._by_source.pop(item.source)

    def known(self, download: str) -> Unrestricted | None:
        """What we know of a direct URL we handed out (None after a restart)."""
        return self._by_download.get(download)

    def fresh(self, item: Unrestricted) -> bool:
        """True while a direct URL is younger than ``link_ttl``."""
        return self.api.context_clock().monotonic() - item.generated_at < self.link_ttl

    def torrent_link_for(
        self, remote_id: str, file: JobFile, read_info: Callable[[], Mapping[str, Any]]
    ) -> str | None:
        """The RD link that serves ``file`` of a finished torrent, if any (from what
        polls taught, else from a ``/torrents/info`` read)."""
        if file.link is not None and is_torrent_link(file.link):
            return file.link  # a download_dir job's file: RD's own link
        selected, listed = self._selected.get(remote_id), self._listed.get(remote_id)
        if selected is None or listed is None:
            self._learn_info(remote_id, read_info(), None)
            selected, listed = self._selected[remote_id], self._listed.get(remote_id) or ()
        if file.id == ARCHIVE_FILE_ID and len(listed) == 1:
            return listed[0]
        for entry, link in zip(selected.files, listed, strict=False):
            if entry.id == file.id:
                return link
        return None
