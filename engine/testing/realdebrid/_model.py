"""The account behind ``FakeRealDebrid``: torrents, their lifecycle on a clock, and downloads.

Nothing here speaks HTTP. A torrent's status is computed from the clock each time
it is read (never stored), so a test that advances a ``FakeClock`` by any amount
sees exactly the state the real service would show at that moment:

    magnet_conversion --step--> waiting_files_selection --selectFiles--> queued
      --step--> downloading (download_steps steps) --> [compressing] --> [uploading]
      --> downloaded (links, possibly late)

A torrent added from a ``.torrent`` file, or from a cached hash, skips
``magnet_conversion`` (the metadata is known); a cached torrent is ``downloaded``
as soon as its files are selected. ``Scenario`` changes the story for one hash.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import attrs

from providers import Clock

__all__ = [
    "ACTIVE_STATUSES",
    "Account",
    "DownloadRecord",
    "FileEntry",
    "Scenario",
    "TorrentRecord",
    "json_date",
    "rd_id",
]

Outcome = Literal[
    "ok", "magnet_error", "error", "virus", "dead", "stalled", "stuck_conversion", "stuck_queued"
]

#: What counts toward ``/torrents/activeCount`` and the slot limit: the facts sheet's
#: "in progress" class (section 3, [DECY] GetDownloadingStatus).
ACTIVE_STATUSES = frozenset(
    {
        "magnet_conversion",
        "waiting_files_selection",
        "queued",
        "downloading",
        "compressing",
        "uploading",
    }
)

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: RD's hoster-style torrent links: https://real-debrid.com/d/ + 13 characters ([RDT], [DECY]).
LINK_PREFIX = "https://real-debrid.com/d/"


def rd_id(seed: str) -> str:
    """A 13-character upper-case id like the ones RD hands out, derived from ``seed``."""
    digest = hashlib.sha1(seed.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    return "".join(_ID_ALPHABET[b % 32] for b in digest[:13])


def json_date(epoch: float) -> str:
    """JavaScript ``Date.toJSON`` form, e.g. ``2032-06-06T04:42:42.000Z`` (facts section 0)."""
    whole = int(epoch)
    millis = round((epoch - whole) * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


@attrs.frozen
class Scenario:
    """How one torrent (chosen by info-hash) behaves on the fake.

    ``outcome``: ``ok``; ``magnet_error`` (conversion fails); ``error`` / ``dead``
    (half-way through the download); ``virus`` (when the download ends);
    ``stalled`` (downloading at 0 % with no seeders, for ever); ``stuck_conversion``
    (``magnet_conversion`` with no seeders, for ever); ``stuck_queued`` (``queued``
    for ever, RD never finding it a slot). ``rar``: RD packs the selection into one
    archive (one link, a ``compressing`` phase). ``late_links``: seconds after
    ``downloaded`` during which only the first link is listed. ``files``: the
    torrent's (path, size) pairs, hostile names welcome. ``infringing``: addMagnet
    refuses it with ``infringing_file``/35.
    """

    outcome: Outcome = "ok"
    cached: bool = False
    rar: bool = False
    late_links: float = 0.0
    files: tuple[tuple[str, int], ...] | None = None
    infringing: bool = False
    seeders: int = 12


@attrs.define
class FileEntry:
    """One file of a torrent (ids are 1-based, as RD's appear to be)."""

    id: int
    path: str
    bytes: int


@attrs.define
class TorrentRecord:
    """A torrent in the account; its status comes from ``Account.view``."""

    id: str
    hash: str
    name: str
    files: list[FileEntry]
    source: Literal["magnet", "torrent"]
    host: str
    added_at: float
    added_wall: float
    scenario: Scenario
    selected: tuple[int, ...] | None = None
    #: The ``files`` field of the selectFiles that selected them (``all`` or ids).
    select_spec: str | None = None
    selected_at: float | None = None
    link_ids: list[str] = attrs.field(factory=list)
    #: When set, unrestricting this torrent's links fails with (HTTP status, error, code).
    broken: tuple[int, str, int] | None = None


@attrs.define
class DownloadRecord:
    """An entry of ``/downloads``: one unrestricted link and its direct URL."""

    id: str
    filename: str
    filesize: int
    link: str
    host: str
    seed: str
    generated_at: float
    generated_wall: float
    mime: str = "application/octet-stream"
    download: str = ""


@attrs.define
class _Timeline:
    status: str
    progress: int
    ended_at: float | None = None
    links_complete: bool = True


class Account:
    """One fake account: its torrents, its downloads and the clock they live on."""

    def __init__(self, clock: Clock, *, step_seconds: float, download_steps: int) -> None:
        self.clock = clock
        self.step = float(step_seconds)
        self.download_steps = max(1, int(download_steps))
        self.torrents: dict[str, TorrentRecord] = {}
        self.downloads: dict[str, DownloadRecord] = {}
        self.links: dict[str, tuple[str, int | None]] = {}  # link id -> (torrent id, file index)
        self.scenarios: dict[str, Scenario] = {}
        self.default_scenario = Scenario()
        #: Appended to every torrent link (decypharr trims links to 39 characters, facts §2).
        self.link_suffix = ""
        self._serial = itertools.count(1)

    # -- torrents --------------------------------------------------------------
    def scenario_for(self, info_hash: str) -> Scenario:
        """The scenario set for ``info_hash``, else the default one."""
        return self.scenarios.get(info_hash.lower(), self.default_scenario)

    def add(
        self,
        info_hash: str,
        name: str | None,
        files: list[tuple[str, int]] | None,
        *,
        source: Literal["magnet", "torrent"],
        host: str,
    ) -> TorrentRecord:
        """Create a torrent (the caller has checked limits and refusals)."""
        info_hash = info_hash.lower()
        scenario = self.scenario_for(info_hash)
        serial = next(self._serial)
        if scenario.files is not None:
            files = list(scenario.files)
        if not files:
            files = _default_files(name or info_hash[:12], info_hash)
        if not name:
            first = files[0][0].lstrip("/")
            name = first.split("/", 1)[0] if "/" in first else first
        record = TorrentRecord(
            id=rd_id(f"torrent:{serial}:{info_hash}"),
            hash=info_hash,
            name=name,
            files=[
                FileEntry(i + 1, path, size)
                for i, (path, size) in enumerate(_from_root(files))
            ],
            source=source,
            host=host,
            added_at=self.clock.monotonic(),
            added_wall=self.clock.time(),
            scenario=scenario,
        )
        self.torrents[record.id] = record
        return record

    def select(self, record: TorrentRecord, ids: tuple[int, ...]) -> None:
        """Record a file selection and mint the torrent's links (one, for an archive)."""
        record.selected = ids
        record.selected_at = self.clock.monotonic()
        count = 1 if record.scenario.rar else len(ids)
        for index in range(count):
            link_id = rd_id(f"link:{record.id}:{index}")
            record.link_ids.append(link_id)
            self.links[link_id] = (record.id, None if record.scenario.rar else index)

    def delete(self, torrent_id: str) -> bool:
        """Remove a torrent; False when it did not exist."""
        return self.torrents.pop(torrent_id, None) is not None

    def status(self, record: TorrentRecord) -> str:
        """The RD status word of ``record`` now."""
        return self._timeline(record).status

    def active_count(self) -> int:
        """Torrents in an in-progress status (what ``activeCount`` calls ``nb``)."""
        return sum(1 for r in self.torrents.values() if self.status(r) in ACTIVE_STATUSES)

    def _timeline(self, record: TorrentRecord) -> _Timeline:
        now = self.clock.monotonic()
        sc = record.scenario
        if record.selected_at is None:
            converting = record.source == "magnet" and not sc.cached
            stuck = sc.outcome == "stuck_conversion"
            if converting and (stuck or now < record.added_at + self.step):
                return _Timeline("magnet_conversion", 0)
            if sc.outcome == "magnet_error":
                return _Timeline("magnet_error", 0)
            return _Timeline("waiting_files_selection", 0)
        start = record.selected_at
        if sc.cached:
            return _Timeline("downloaded", 100, start, self._links_done(start, sc, now))
        elapsed = now - start - self.step
        if elapsed < 0 or sc.outcome == "stuck_queued":
            return _Timeline("queued", 0)
        span = self.download_steps * self.step
        if sc.outcome == "stalled":
            return _Timeline("downloading", 0)
        if sc.outcome in ("error", "dead") and elapsed >= span / 2:
            return _Timeline(sc.outcome, 50)
        if elapsed < span:
            return _Timeline("downloading", min(99, int(100 * elapsed / span)))
        if sc.outcome == "virus":
            return _Timeline("virus", 100)
        after = elapsed - span
        for phase, on in (("compressing", sc.rar), ("uploading", record.host != "")):
            if on:
                if after < self.step:
                    return _Timeline(phase, int(100 * after / self.step))
                after -= self.step
        ended = now - after
        return _Timeline("downloaded", 100, ended, self._links_done(ended, sc, now))

    @staticmethod
    def _links_done(ended: float, sc: Scenario, now: float) -> bool:
        return now >= ended + sc.late_links

    def view(self, record: TorrentRecord, *, info: bool) -> dict[str, Any]:
        """The JSON object of ``GET /torrents`` (``info=False``) or ``/torrents/info/{id}``."""
        tl = self._timeline(record)
        converting = tl.status in ("magnet_conversion", "magnet_error") and record.selected is None
        all_bytes = sum(f.bytes for f in record.files)
        chosen = set(record.selected or ())
        selected_bytes = sum(f.bytes for f in record.files if f.id in chosen) or all_bytes
        links: list[str] = []
        if tl.status == "downloaded":
            ids = record.link_ids if tl.links_complete else record.link_ids[:1]
            links = [LINK_PREFIX + link_id + self.link_suffix for link_id in ids]
        item: dict[str, Any] = {
            "id": record.id,
            # DMM skips selection while the name is this placeholder (facts section 3).
            "filename": "Magnet" if converting else record.name,
            "hash": record.hash,
            "bytes": 0 if converting else selected_bytes,
            "host": "real-debrid.com",
            "split": 2000,
            "progress": tl.progress,
            "status": tl.status,
            "added": json_date(record.added_wall),
            "links": links,
        }
        if tl.ended_at is not None:
            item["ended"] = json_date(record.added_wall + (tl.ended_at - record.added_at))
        if tl.status in ("downloading", "compressing", "uploading"):
            item["speed"] = 0 if record.scenario.outcome == "stalled" else 4_000_000
        if tl.status in ("magnet_conversion", "downloading"):
            stuck = record.scenario.outcome in ("stalled", "stuck_conversion")
            item["seeders"] = 0 if stuck else record.scenario.seeders
        if info:
            item["original_filename"] = item["filename"]
            item["original_bytes"] = 0 if converting else all_bytes
            item["files"] = (
                []
                if converting
                else [
                    {"id": f.id, "path": f.path, "bytes": f.bytes, "selected": int(f.id in chosen)}
                    for f in record.files
                ]
            )
        return item

    def iter_newest_first(self, *, active_only: bool = False) -> Iterator[TorrentRecord]:
        """Torrents newest first (the order RD lists them in)."""
        for record in reversed(list(self.torrents.values())):
            if not active_only or self.status(record) in ACTIVE_STATUSES:
                yield record

    # -- links and downloads ----------------------------------------------------
    def resolve_link(self, link: str) -> tuple[TorrentRecord, int | None] | None:
        """The torrent (and selected-file index, None for an archive) behind a RD link."""
        if not link.startswith(LINK_PREFIX):
            return None
        # Links may carry a suffix; decypharr keeps the first 39 characters (facts section 2).
        link_id = link[len(LINK_PREFIX) : len(LINK_PREFIX) + 13]
        target = self.links.get(link_id)
        if target is None or target[0] not in self.torrents:
            return None
        return self.torrents[target[0]], target[1]

    def unrestrict(self, link: str, base_url: str) -> DownloadRecord:
        """Make a ``/downloads`` entry for ``link`` (already checked to be unrestrictable)."""
        serial = next(self._serial)
        target = self.resolve_link(link)
        mime, host = "application/octet-stream", "real-debrid.com"
        if target is not None:
            record, index = target
            chosen = [f for f in record.files if f.id in set(record.selected or ())]
            if index is None:
                name = record.name.rsplit("/", 1)[-1] + ".rar"
                size, seed = sum(f.bytes for f in chosen), f"{record.hash}:rar"
                mime = "application/x-rar-compressed"
            else:
                entry = chosen[index]
                name, size = entry.path.rsplit("/", 1)[-1], entry.bytes
                seed = f"{record.hash}:{entry.id}"
        else:
            path = unquote(urlsplit(link).path)
            name = path.rsplit("/", 1)[-1] or "file.bin"
            digest = hashlib.sha1(link.encode("utf-8", "surrogatepass"), usedforsecurity=False)
            size = 100_000 + int(digest.hexdigest()[:6], 16) % 900_000
            seed, host = f"url:{link}", urlsplit(link).hostname or ""
        download_id = rd_id(f"download:{serial}:{link}")
        safe = quote(name.replace("/", "_"), safe="")
        if safe in ("", ".", ".."):
            safe = "file"
        entry_record = DownloadRecord(
            id=download_id,
            filename=name,
            filesize=size,
            link=link,
            host=host,
            seed=seed,
            generated_at=self.clock.monotonic(),
            generated_wall=self.clock.time(),
            mime=mime,
            download=f"{base_url}/d/{download_id}/{safe}",
        )
        self.downloads[download_id] = entry_record
        return entry_record

    def download_view(self, record: DownloadRecord) -> dict[str, Any]:
        """The JSON object of ``GET /downloads``."""
        return {
            **link_view(record),
            "host_icon": f"https://fcdn.real-debrid.com/0830/images/hosters/{record.host}.png",
            "generated": json_date(record.generated_wall),
        }


def link_view(record: DownloadRecord) -> dict[str, Any]:
    """What ``POST /unrestrict/link`` and ``GET /downloads`` both say of an unrestricted link."""
    return {
        "id": record.id,
        "filename": record.filename,
        "mimeType": record.mime,
        "filesize": record.filesize,
        "link": record.link,
        "host": record.host,
        "chunks": 32,
        "download": record.download,
        "streamable": int(record.filename.endswith((".mkv", ".mp4"))),
    }


def _from_root(files: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Paths as ``torrents/info`` gives them: from the torrent root, with a leading ``/``.

    RD's paths do not carry a multi-file torrent's top folder (facts section 2,
    ``files[].path`` starts with "/"): ``Pack/a.mkv`` is listed as ``/a.mkv``. The
    folder is the first segment every path shares; a single file keeps its name.
    """
    parts = [path.strip("/").split("/") for path, _ in files]
    tops = {p[0] for p in parts}
    shared = len(tops) == 1 and all(len(p) > 1 for p in parts)
    return [
        ("/" + "/".join(p[1:] if shared else p), size)
        for p, (_, size) in zip(parts, files, strict=True)
    ]


def _default_files(name: str, info_hash: str) -> list[tuple[str, int]]:
    """A plausible season-pack-like layout, sized deterministically from the hash."""
    try:
        seed = int(info_hash[:8], 16)
    except ValueError:
        seed = 0
    base = name.replace("/", "_")
    # Modest sizes: a plain GET of a file builds its bytes in memory.
    return [
        (f"{base}/{base}.mkv", 40_000_000 + seed % 10_000_000),
        (f"{base}/Sample/sample.mkv", 3_000_000 + seed % 1000),
        (f"{base}/{base}.nfo", 4_000 + seed % 100),
        (f"{base}/Subs/English.srt", 80_000 + seed % 100),
    ]
