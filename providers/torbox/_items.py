"""TorBox list objects read into the engine's values: statuses, files, links, dates."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from providers._job import JobFile
from providers._responses import JobStatusResponse
from providers._status import JobStatus
from providers.torbox._ids import ItemKind, RemoteRef
from providers.torbox._states import lookup_state

__all__ = [
    "as_int",
    "is_ready",
    "item_files",
    "item_status",
    "parse_date",
    "permalink",
    "queued_status",
]

#: requestdl path and id parameter per kind (SPEC: web downloads use `web_id`).
REQUESTDL = {
    "torrent": ("/v1/api/torrents/requestdl", "torrent_id"),
    "webdl": ("/v1/api/webdl/requestdl", "web_id"),
}


def as_int(value: Any) -> int | None:
    """An id that may come as a number or a string (hydra#2262; PYSDK types webdl ids as str)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_date(value: Any) -> float | None:
    """Epoch seconds from ``...Z`` (GOSDK) or ``.78989+00:00`` (POSTMAN); naive is UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


#: States that say the item is done downloading (a parenthesised suffix dropped).
_DONE_STATES = frozenset({"cached", "completed", "uploading", "seeding", "downloaded"})


def is_ready(item: dict[str, Any]) -> bool:
    """Ready means present on TorBox's side, and finished.

    Finished is ``download_finished`` (PYSDK; hydra#2655), or a done state at
    progress 1: cached items have been seen as ``cached``, present, progress 1,
    without ``download_finished`` (decypharr#401), and would sit at 100% for
    ever. Present is never assumed: a ``completed`` item whose files were
    evicted is not ready (hydra#2655).
    """
    if item.get("download_present") is not True:
        return False
    if item.get("download_finished") is True:
        return True
    state = item.get("download_state")
    progress = item.get("progress")
    if not isinstance(state, str) or not isinstance(progress, int | float):
        return False
    done = state.split("(", 1)[0].strip().lower() in _DONE_STATES
    return done and not isinstance(progress, bool) and progress >= 1


def permalink(base_url: str, kind: ItemKind, item_id: int, file_id: int) -> str:
    """The requestdl permalink TorBox recommends storing (PYSDK), without the token.

    The token is added only when the link is requested (``resolve_download_url``),
    so the stored form never holds the key.
    """
    path, id_param = REQUESTDL[kind]
    query = urlencode({id_param: item_id, "file_id": file_id, "redirect": "true"})
    return f"{base_url.rstrip('/')}{path}?{query}"


def item_files(
    item: dict[str, Any], kind: ItemKind, base_url: str, with_links: bool
) -> tuple[JobFile, ...]:
    """The item's files; names keep TorBox's top folder (``Folder/file.ext``), md5 as given."""
    item_id = as_int(item.get("id"))
    files: list[JobFile] = []
    listed = item.get("files")
    for raw in listed if isinstance(listed, list) else ():
        if not isinstance(raw, dict):
            continue
        file_id = as_int(raw.get("id"))
        if file_id is None:
            continue
        name = raw.get("name") or raw.get("short_name") or f"file-{file_id}"
        md5 = raw.get("md5")
        link = None
        if with_links and item_id is not None:
            link = permalink(base_url, kind, item_id, file_id)
        files.append(
            JobFile(
                id=file_id,
                name=str(name),
                size=as_int(raw.get("size")) or 0,
                link=link,
                md5=md5 if isinstance(md5, str) and md5 else None,
            )
        )
    return tuple(files)


def _progress(item: dict[str, Any]) -> float:
    # A fraction 0..1, not percent (RDT, DECY multiply by 100; TBSDKNET).
    value = item.get("progress")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return 0.0
    return round(min(100.0, max(0.0, float(value) * 100.0)), 2)


def item_status(
    item: dict[str, Any],
    kind: ItemKind,
    base_url: str,
    on_unknown: Callable[[str], None],
    remote_id: str | None = None,
) -> JobStatusResponse:
    """One list object as a ``JobStatusResponse`` (links are left to ``get_file_links``)."""
    native = str(item.get("download_state") or "")
    item_id = as_int(item.get("id"))
    error_code = error_message = None
    progress = _progress(item)
    web_error = item.get("error") if kind == "webdl" else None
    if is_ready(item):
        status, progress = JobStatus.COMPLETED, 100.0
    elif isinstance(web_error, str) and web_error:
        # Web downloads carry their failure as text in `error` (PYSDK list model).
        status, error_code, error_message = JobStatus.FAILED, "DOWNLOAD_ERROR", web_error
    else:
        entry = lookup_state(native)
        if entry is None:
            # New states appear without notice (decypharr#318): still working.
            on_unknown(native)
            status = JobStatus.DOWNLOADING
        else:
            status, error_code = entry.status, entry.error_code
            if status is JobStatus.FAILED:
                error_message = f"TorBox reports the download as {native!r}"
    item_hash = item.get("hash") if isinstance(item.get("hash"), str) else None
    metadata: dict[str, Any] = {
        "kind": kind,
        "torbox_id": item_id,
        "name": item.get("name"),
        "size": as_int(item.get("size")),
        "hash": item_hash,
        "cached": item.get("cached") is True,
        "download_finished": item.get("download_finished") is True,
        "download_present": item.get("download_present") is True,
        "download_speed": as_int(item.get("download_speed")),
        "eta": as_int(item.get("eta")),
        "expires_at": parse_date(item.get("expires_at")),
    }
    if kind == "torrent":
        metadata["seeds"] = as_int(item.get("seeds"))
    return JobStatusResponse(
        remote_id=remote_id or str(RemoteRef(kind, item_id or 0)),
        status=status,
        progress=progress,
        files=item_files(item, kind, base_url, with_links=False),
        native_status=native,
        info_hash=item_hash if kind == "torrent" else None,
        error_code=error_code,
        error_message=error_message,
        metadata=metadata,
    )


def queued_status(entry: dict[str, Any], kind: ItemKind, remote_id: str) -> JobStatusResponse:
    """An entry of TorBox's queue: QUEUED until TorBox starts it under a new id."""
    item_hash = entry.get("hash") if isinstance(entry.get("hash"), str) else None
    return JobStatusResponse(
        remote_id=remote_id,
        status=JobStatus.QUEUED,
        native_status="queued",
        info_hash=item_hash if kind == "torrent" else None,
        metadata={
            "kind": kind,
            "queued_id": as_int(entry.get("id")),
            "name": entry.get("name"),
            "hash": item_hash,
        },
    )
