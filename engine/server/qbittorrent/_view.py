"""A job as qBittorrent shows a torrent: its state, progress, paths and limits.

The mapping is the one ``docs/qbittorrent.md`` tables; it is written for what
Sonarr and Radarr read (``../ARR.md``): a finished item is ``pausedUP`` only
once every selected file is on disk and verified, its ratio has reached its
limit so that it may be removed after import, and ``content_path`` is the
item's own folder (or its one file), never the category's directory.
"""

from __future__ import annotations

import enum
import os
from typing import Any

from persistence import ClientItem
from providers import Job, JobStatus

__all__ = ["UNKNOWN_ETA", "QbitState", "content_path", "files_of", "properties_of", "state_of",
           "torrent_of"]

#: qBittorrent's "no estimate" (100 days).
UNKNOWN_ETA = 8_640_000
#: Seconds a local transfer may sit at 0 B/s, unchanged, before it counts as stalled.
STALLED_AFTER = 60.0
#: The metadata keys the job actor writes (``actors._job``).
_WAITING_FOR = "waiting_for"
_DOWNLOAD = "download"


class QbitState(enum.StrEnum):
    """The qBittorrent states this face answers."""

    QUEUED_DL = "queuedDL"
    META_DL = "metaDL"
    DOWNLOADING = "downloading"
    STALLED_DL = "stalledDL"
    PAUSED_DL = "pausedDL"
    STOPPED_DL = "stoppedDL"
    PAUSED_UP = "pausedUP"
    STOPPED_UP = "stoppedUP"
    MISSING_FILES = "missingFiles"
    ERROR = "error"


def _download(job: Job) -> dict[str, Any]:
    value = job.metadata.get(_DOWNLOAD)
    return value if isinstance(value, dict) else {}


def _selected(job: Job | None) -> list[Any]:
    return [f for f in job.files if f.selected] if job is not None else []


def content_path(item: ClientItem, job: Job | None) -> str:
    """The item's one file when it has exactly one, else the folder that holds its files.

    That is the deepest folder all its files share, inside the item's own folder
    (a provider may or may not name the torrent's top folder in its file names);
    before the files are placed, the item's folder.
    """
    files = _selected(job)
    if len(files) == 1:
        local = files[0].local_path
        return str(local) if local else os.path.join(item.folder, files[0].name)
    paths = [f.local_path for f in files]
    if not files or any(p is None for p in paths):
        return item.folder
    common = os.path.commonpath([os.path.dirname(str(p)) for p in paths])
    folder = os.path.normpath(item.folder)
    if common == folder or common.startswith(folder + os.sep):
        return common
    return item.folder


def _on_disk(item: ClientItem, job: Job) -> bool:
    paths = [f.local_path for f in _selected(job)]
    if not paths:
        return os.path.isdir(item.folder)
    return all(p is not None and os.path.isfile(p) for p in paths)


def state_of(item: ClientItem, job: Job | None, now_ms: int, stopped_names: bool) -> QbitState:
    """The qBittorrent state of ``item`` (its ``job`` None: held, not started)."""
    if job is None:
        if item.job_id is not None:
            return QbitState.QUEUED_DL  # committed to start; the job is being made
        return QbitState.STOPPED_DL if stopped_names else QbitState.PAUSED_DL
    match job.status:
        case JobStatus.COMPLETED:
            if not _on_disk(item, job):
                return QbitState.MISSING_FILES
            return QbitState.STOPPED_UP if stopped_names else QbitState.PAUSED_UP
        case JobStatus.FAILED:
            return QbitState.ERROR
        case JobStatus.QUEUED:
            return QbitState.QUEUED_DL
        case _ if _WAITING_FOR in job.metadata:
            return QbitState.QUEUED_DL
        case _ if _stalled(job, now_ms):
            return QbitState.STALLED_DL
        case JobStatus.RESOLVING:
            return QbitState.META_DL
        case _:
            return QbitState.DOWNLOADING


def _stalled(job: Job, now_ms: int) -> bool:
    """A local transfer at 0 B/s with no change for ``STALLED_AFTER`` seconds.

    The provider's own phase is never called stalled here: its progress is saved
    only on real changes, so a slow remote download would look stuck (the
    engine's stall timeout fails a job that really is).
    """
    download = _download(job)
    return bool(download) and not download.get("speed_bps") and (
        now_ms - job.updated_at > STALLED_AFTER * 1000)


def _progress(job: Job | None) -> float:
    if job is None:
        return 0.0
    if job.status is JobStatus.COMPLETED:
        return 1.0
    # 1 means "done" to an *arr app: it is kept for files on disk and verified.
    return min(max(job.progress, 0.0) / 100.0, 0.9999)


def torrent_of(
    item: ClientItem, job: Job | None, now_ms: int, stopped_names: bool
) -> dict[str, Any]:
    """One entry of ``torrents/info`` (and of ``sync/maindata``'s ``torrents``)."""
    state = state_of(item, job, now_ms, stopped_names)
    files = _selected(job)
    size = sum(f.size for f in files)
    total = sum(f.size for f in job.files) if job is not None else 0
    progress = _progress(job)
    done = size if progress >= 1.0 else int(size * progress)
    download = _download(job) if job is not None else {}
    running = job is not None and job.status is JobStatus.DOWNLOADING
    speed = int(download.get("speed_bps") or 0) if running else 0
    eta: int
    if progress >= 1.0:
        eta = 0
    elif running and isinstance(download.get("eta_seconds"), int | float):
        eta = int(download["eta_seconds"])
    else:
        eta = UNKNOWN_ETA
    finished = job is not None and job.status is JobStatus.COMPLETED
    completion = job.updated_at // 1000 if finished and job is not None else -1
    updated = job.updated_at if job is not None else item.updated_at
    magnet = job.payload.magnet if job is not None else None
    return {
        "hash": item.hash,
        "infohash_v1": item.hash,
        "infohash_v2": "",
        "name": item.name,
        "size": size,
        "total_size": total,
        "progress": progress,
        "dlspeed": speed,
        "upspeed": 0,
        "eta": eta,
        "state": state.value,
        "category": item.category,
        "tags": ", ".join(item.tags),
        "save_path": item.save_path,
        "download_path": "",
        "content_path": content_path(item, job),
        "root_path": content_path(item, job) if len(files) != 1 else "",
        "added_on": item.added_on // 1000,
        "completion_on": completion,
        "last_activity": updated // 1000,
        "seen_complete": completion,
        "time_active": max(0, (now_ms - item.added_on) // 1000),
        "seeding_time": 0,
        "amount_left": max(0, size - done),
        "completed": done,
        "downloaded": done,
        "downloaded_session": done,
        "uploaded": 0,
        "uploaded_session": 0,
        # A finished item has reached its seeding goal: the *arr app may remove it.
        "ratio": 1.0 if finished else 0.0,
        "ratio_limit": 1.0,
        "max_ratio": 1.0,
        "seeding_time_limit": -2,
        "max_seeding_time": -1,
        "inactive_seeding_time_limit": -2,
        "max_inactive_seeding_time": -1,
        "dl_limit": -1,
        "up_limit": -1,
        "num_seeds": 0,
        "num_leechs": 0,
        "num_complete": 0,
        "num_incomplete": 0,
        "availability": -1,
        "priority": 0,
        "force_start": False,
        "seq_dl": False,
        "f_l_piece_prio": False,
        "super_seeding": False,
        "auto_tmm": False,
        "private": False,
        "tracker": "",
        "trackers_count": 0,
        "magnet_uri": magnet or f"magnet:?xt=urn:btih:{item.hash}",
    }


def properties_of(item: ClientItem, job: Job | None, now_ms: int) -> dict[str, Any]:
    """``torrents/properties`` of one item."""
    torrent = torrent_of(item, job, now_ms, stopped_names=False)
    comment = ""
    if job is not None and job.error is not None:
        comment = f"{job.error.code}: {job.error.message}"
    return {
        "save_path": item.save_path,
        "download_path": "",
        "creation_date": item.added_on // 1000,
        "piece_size": 0,
        "comment": comment,
        "total_wasted": 0,
        "total_uploaded": 0,
        "total_uploaded_session": 0,
        "total_downloaded": torrent["downloaded"],
        "total_downloaded_session": torrent["downloaded"],
        "up_limit": -1,
        "dl_limit": -1,
        "time_elapsed": torrent["time_active"],
        "seeding_time": 0,
        "nb_connections": 0,
        "nb_connections_limit": 0,
        "share_ratio": torrent["ratio"],
        "addition_date": torrent["added_on"],
        "completion_date": torrent["completion_on"],
        "created_by": "debrid-engine",
        "dl_speed_avg": torrent["dlspeed"],
        "dl_speed": torrent["dlspeed"],
        "eta": torrent["eta"],
        "last_seen": torrent["last_activity"],
        "peers": 0,
        "peers_total": 0,
        "pieces_have": 0,
        "pieces_num": 0,
        "reannounce": 0,
        "seeds": 0,
        "seeds_total": 0,
        "total_size": torrent["total_size"],
        "up_speed_avg": 0,
        "up_speed": 0,
        "isPrivate": False,
        "is_private": False,
        "hash": item.hash,
        "infohash_v1": item.hash,
        "infohash_v2": "",
        "name": item.name,
    }


def files_of(item: ClientItem, job: Job | None) -> list[dict[str, Any]]:
    """``torrents/files``: each file, named relative to the save path (as qBittorrent does)."""
    if job is None:
        return []
    entries = []
    for index, file in enumerate(job.files):
        path = file.local_path or os.path.join(item.folder, file.name)
        name = os.path.relpath(path, item.save_path).replace(os.sep, "/")
        done = file.size if job.status is JobStatus.COMPLETED and file.selected else file.bytes_done
        entries.append({
            "index": index,
            "name": name,
            "size": file.size,
            "progress": (done / file.size) if file.size else (1.0 if done or job.terminal else 0.0),
            "priority": 1 if file.selected else 0,
            "is_seed": job.status is JobStatus.COMPLETED and file.selected,
            "piece_range": [0, 0],
            "availability": -1,
        })
    return entries
