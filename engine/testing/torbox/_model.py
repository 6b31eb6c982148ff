"""The state behind ``FakeTorBox``: items, their lifecycle on the clock, and their JSON.

An item's state is never stored: it is computed from the time it has been
running (clock time since it started, minus time spent paused) and its
scenario, a list of phases. With ``step_seconds=0`` every finite phase takes no
time, so an item is at its last phase at once (a cached item always is).
Field names and shapes follow the facts sheet (docs/torbox.md cites it).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import mimetypes
from typing import Any, Literal

import attrs

from providers._fileserve import ServedFile

__all__ = [
    "SCENARIOS",
    "FakeFile",
    "FakeItem",
    "ItemKind",
    "Phase",
    "QueuedEntry",
    "file_md5",
    "iso_date",
]

ItemKind = Literal["torrent", "webdl"]

#: The state a finished torrent shows: "uploading" when it seeds, else "completed".
DONE = "__done__"
#: Replaced by ``FakeTorBox.unknown_state`` (a state string TorBox added without notice).
UNKNOWN = "__unknown__"


@attrs.frozen
class Phase:
    """One stretch of a scenario: ``steps`` steps (None: forever) in ``state``."""

    state: str
    steps: float | None
    progress: tuple[float, float] = (0.0, 0.0)
    finished: bool = False
    present: bool = False
    failed: bool = False
    error: str | None = None
    files_known: bool = True


def _done(*, present: bool = True, state: str = DONE) -> Phase:
    return Phase(state, None, (1.0, 1.0), finished=True, present=present)


# Torrent states are the documented ones (facts §4, PYSDK/POSTMAN list; "incomplete"
# from decypharr#318); "metaDL" has no file list yet, as in a real client.
SCENARIOS: dict[str, tuple[Phase, ...]] = {
    "normal": (
        Phase("metaDL", 1, files_known=False),
        Phase("downloading", 2, (0.0, 1.0)),
        _done(),
    ),
    "cached": (_done(state="cached"),),
    # A cache hit whose files take a moment to be present: state "cached" is not ready.
    "slow_cache": (
        Phase("cached", 2, (1.0, 1.0), finished=True, present=False),
        _done(state="cached"),
    ),
    "stalled": (Phase("metaDL", 1, files_known=False), Phase("stalled (no seeds)", None)),
    "incomplete": (
        Phase("metaDL", 1, files_known=False),
        Phase("downloading", 1, (0.0, 0.4)),
        Phase("incomplete", None, (0.4, 0.4)),
    ),
    "error": (
        Phase("metaDL", 1, files_known=False),
        Phase("downloading", 1, (0.0, 0.3)),
        Phase("error", None, (0.3, 0.3), failed=True),
    ),
    "missing_files": (
        Phase("metaDL", 1, files_known=False),
        Phase("downloading", 1, (0.0, 0.5)),
        Phase("missingFiles", None, (0.5, 0.5), failed=True),
    ),
    "unknown_state": (
        Phase("metaDL", 1, files_known=False),
        Phase(UNKNOWN, 1, (0.0, 0.2)),
        Phase("downloading", 1, (0.2, 1.0)),
        _done(),
    ),
    "resume_check": (
        Phase("checkingResumeData", 1, files_known=False),
        Phase("downloading", 1, (0.0, 1.0)),
        _done(),
    ),
    # "completed" whose files were evicted: finished but not present (hydra#2655).
    "evicted": (_done(present=False, state="completed"),),
    # Web downloads: no metadata phase; a dead link ends in "error" with the text in `error`.
    "web_normal": (Phase("downloading", 2, (0.0, 1.0)), _done(state="completed")),
    "web_error": (
        Phase("downloading", 1, (0.0, 0.1)),
        Phase("error", None, (0.1, 0.1), failed=True, error="Link is dead or offline"),
    ),
}


@functools.lru_cache(maxsize=8192)
@functools.lru_cache(maxsize=4096)
def file_md5(seed: str, size: int) -> str:
    """The md5 of the bytes the fake CDN serves for ``seed`` (so downloads can be checked)."""
    return ServedFile(seed, size, seed).md5


def iso_date(epoch: float, style: str = "offset") -> str:
    """A TorBox date: ``...T..:..:..Z`` (documented) or with fractions and ``+00:00`` (examples)."""
    when = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    if style == "z":
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.isoformat()


@attrs.define
class FakeFile:
    """A file of a fake item; its bytes are ``ServedFile(seed, size, seed)``'s."""

    id: int
    name: str
    size: int
    seed: str
    with_md5: bool = True

    def to_json(self, item_hash: str) -> dict[str, Any]:
        """The file object of the list endpoints (PYSDK DataFiles; POSTMAN example)."""
        short = self.name.rsplit("/", 1)[-1]
        return {
            "id": self.id,
            "md5": file_md5(self.seed, self.size) if self.with_md5 else None,
            "hash": item_hash,
            "name": self.name,
            "size": self.size,
            "zipped": False,
            "s3_path": f"/{item_hash}/{self.name}",
            "infected": False,
            "mimetype": mimetypes.guess_type(short)[0] or "application/octet-stream",
            "short_name": short,
            "absolute_path": f"/downloads/{item_hash}/{self.name}",
            "opensubtitles_hash": None,
        }


@attrs.define
class QueuedEntry:
    """An item in TorBox's queue: visible only through /queued/getqueued (rdt-client#987)."""

    id: int
    kind: ItemKind
    hash: str
    name: str
    created: float  # clock.monotonic() when queued
    created_wall: float
    magnet: str | None = None
    link: str | None = None
    torrent_file: bool = False
    seed: int | None = None
    files: list[FakeFile] = attrs.field(factory=list)
    scenario: str = "normal"

    def to_json(self, auth_id: str, date_style: str) -> dict[str, Any]:
        """Fields of TBSDKNET QueuedDownload (plus TBNET's auth_id)."""
        return {
            "id": self.id,
            "auth_id": auth_id,
            "created_at": iso_date(self.created_wall, date_style),
            "magnet": self.magnet,
            "torrent_file": self.torrent_file,
            "hash": self.hash,
            "name": self.name,
            "type": self.kind,
            "name_override": None,
            "seed_torrent_override": self.seed,
        }


@attrs.define
class FakeItem:
    """A torrent or web download on the fake account."""

    id: int
    kind: ItemKind
    hash: str
    name: str
    files: list[FakeFile]
    scenario: str
    started: float  # clock.monotonic() when it started running
    created_wall: float
    magnet: str | None = None
    link: str | None = None
    torrent_file: bool = False
    seed: int | None = None
    allow_zip: bool = True
    cached: bool = False
    paused_at: float | None = None
    paused_total: float = 0.0

    @property
    def size(self) -> int:
        """Total bytes of the item's files."""
        return sum(f.size for f in self.files)

    def elapsed(self, now: float) -> float:
        """Seconds the item has been running (paused time excluded)."""
        end = self.paused_at if self.paused_at is not None else now
        return max(0.0, end - self.started - self.paused_total)

    def phase(self, now: float, step: float) -> tuple[Phase, float]:
        """The current phase and the progress (0..1) within the scenario."""
        phases = SCENARIOS[self.scenario]
        left = self.elapsed(now)
        for phase in phases:
            length = None if phase.steps is None else phase.steps * step
            if length is None or left < length:
                frac = 1.0 if not length else left / length
                lo, hi = phase.progress
                return phase, lo + (hi - lo) * frac
            left -= length
        last = phases[-1]
        return last, last.progress[1]

    def holds_slot(self, now: float, step: float) -> bool:
        """Unfinished, not failed items count against the plan's active slots."""
        phase, _ = self.phase(now, step)
        return not phase.finished and not phase.failed

    def to_json(self, now: float, step: float, view: ListView) -> dict[str, Any]:
        """The object of /torrents/mylist or /webdl/mylist (facts §4)."""
        phase, progress = self.phase(now, step)
        state = phase.state
        if state == DONE:
            state = "uploading" if self.seed == 2 else "completed"
        elif state == UNKNOWN:
            state = view.unknown_state
        if self.paused_at is not None and not phase.finished:
            state = "paused"
        finished = phase.finished
        if self.cached and finished and view.cached_unfinished:
            state, finished = "cached", False
        running = not phase.finished and not phase.failed and self.paused_at is None
        speed = 1_500_000 if running and state == "downloading" else 0
        left = (1 - progress) * self.size
        data: dict[str, Any] = {
            "id": self.id,
            "auth_id": view.auth_id,
            "server": 1,
            "hash": self.hash,
            "name": self.name,
            "size": self.size,
            "active": not phase.finished and not phase.failed,
            "created_at": iso_date(self.created_wall, view.date_style),
            "updated_at": iso_date(view.wall, view.date_style),
            "download_state": state,
            "progress": round(progress, 4),
            "download_speed": speed,
            "upload_speed": 0,
            # 8640000 is qBittorrent's "infinite" sentinel (POSTMAN webdl example).
            "eta": int(left / speed) if speed else 8640000,
            "download_present": phase.present,
            "download_finished": finished,
            "files": [f.to_json(self.hash) for f in self.files] if phase.files_known else [],
            "expires_at": iso_date(self.created_wall + 30 * 86400, view.date_style),
            "cached": self.cached,
            "cached_at": iso_date(self.created_wall, view.date_style) if self.cached else None,
            "inactive_check": 0,
            "tags": [],
        }
        if self.kind == "webdl":
            data["error"] = phase.error
            return data
        data.update(
            magnet=self.magnet,
            torrent_file=self.torrent_file,
            seeds=0 if state.startswith("stalled") else 12,
            peers=3,
            ratio=0.0,
            availability=0.0 if state.startswith("stalled") else 1.0,
            total_uploaded=0,
            total_downloaded=int(progress * self.size),
            owner=view.auth_id,
            seed_torrent=self.seed == 2,
            allow_zipped=self.allow_zip,
            long_term_seeding=False,
            tracker=None,
            tracker_message=None,
            private=False,
            alternative_hashes=[],
            download_path="",
        )
        return data


@attrs.frozen
class ListView:
    """What the JSON of a list depends on besides the item."""

    auth_id: str
    wall: float
    date_style: str
    unknown_state: str
    #: Cached items finished but shown without ``download_finished`` (decypharr#401).
    cached_unfinished: bool = False


def default_files(kind: ItemKind, key: str, name: str) -> list[FakeFile]:
    """A small, deterministic file set: sizes vary with the key, bytes are cheap to serve."""
    bump = int(hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:4], 16) % 4096
    if kind == "webdl":
        return [FakeFile(0, name, 200_000 + bump, f"{key}:0")]
    return [
        FakeFile(0, f"{name}/{name}.mkv", 262_144 + bump, f"{key}:0"),
        FakeFile(1, f"{name}/sample.mkv", 40_000 + bump, f"{key}:1"),
        FakeFile(2, f"{name}/info.nfo", 700 + bump % 100, f"{key}:2"),
    ]


def make_files(key: str, spec: list[tuple[str, int]]) -> list[FakeFile]:
    """Files from ``(name, size)`` pairs."""
    return [FakeFile(i, name, size, f"{key}:{i}") for i, (name, size) in enumerate(spec)]
