"""Jobs and transitions to table rows and back, through the cattrs converter.

Column values are plain tuples in ``JOB_COLUMNS`` / ``TRANSITION_COLUMNS``
order, ready for ``executemany``. ``payload`` and ``files`` go through the
project's converter (torrent bytes become base64 text) and then JSON;
``metadata`` is stored as JSON as it is. The round trip is exact for every Job
whose metadata is plain JSON data (str keys; lists rather than tuples): JSON has
no tuples, so a tuple in metadata comes back as a list.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Mapping
from typing import Any

import orjson

from persistence._search import joined_search_text, payload_search_text
from providers._convert import converter
from providers._errors import StoreError, ValidationError
from providers._job import Job, JobErrorInfo, JobFile, Transition
from providers._payload import StartJobPayload
from providers._status import JobStatus

__all__ = [
    "IDENTITY_COLUMNS",
    "JOB_COLUMNS",
    "TRANSITION_COLUMNS",
    "job_from_row",
    "job_to_row",
    "transition_from_row",
    "transition_to_row",
]

#: The columns of ``jobs`` that ``job_to_row`` fills, in tuple order.
JOB_COLUMNS = (
    "id",
    "provider",
    "status",
    "priority",
    "progress",
    "payload",
    "files",
    "metadata",
    "error_code",
    "error_message",
    "attempt",
    "remote_id",
    "submitted",
    "created_at",
    "updated_at",
    "search",
)

#: What a job is, fixed when it is first stored: an update never rewrites these.
IDENTITY_COLUMNS = frozenset({"id", "provider", "priority", "payload", "created_at"})

#: The columns of ``job_transitions`` that ``transition_to_row`` fills (``id`` is the database's).
TRANSITION_COLUMNS = ("job_id", "attempt", "from_status", "to_status", "at")

_FILES_TYPE = tuple[JobFile, ...]


# One encoder for every write: ``json.dumps`` with non-default separators builds
# a new encoder on each call. ASCII escapes (the default) keep lone surrogates,
# which JSON from a provider may carry, storable: they have no UTF-8 form, and
# both databases store UTF-8. It also keeps what orjson refuses (below).
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _fast_dumps(value: Any) -> str:
    """JSON of data the engine builds itself (payloads, file lists), ten times faster.

    orjson refuses lone surrogates and non-text keys; those take the standard
    encoder. It is not used for metadata, where it would turn NaN into null.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _dumps(value)


class _PayloadText:
    """The JSON of each payload still in use, kept until the payload itself goes.

    A job is written several times over its life, always with the same payload
    object, and a payload may hold a torrent of megabytes that is not worth
    encoding again. Entries hang on weak references and leave with their
    payload: no size to choose, so a bulk add of more jobs than a fixed-size
    cache would hold does not encode every payload twice.
    """

    def __init__(self) -> None:
        # Plain dict operations are atomic, which the weakref callback needs:
        # it may run on any thread, even one inside this object.
        self._items: dict[int, tuple[weakref.ref[StartJobPayload], str, str]] = {}

    def __call__(self, payload: StartJobPayload) -> str:
        return self.entry(payload)[1]

    def entry(self, payload: StartJobPayload) -> tuple[object, str, str]:
        """``(reference, JSON, search part)``: the payload's JSON and its part of its
        job's search text (``payload_search_text``)."""
        key = id(payload)
        hit = self._items.get(key)
        # The identity check guards against a stale entry under a reused id.
        if hit is not None and hit[0]() is payload:
            return hit
        text = _fast_dumps(converter.unstructure(payload))
        search = payload_search_text(payload.url, payload.magnet, payload.download_dir)
        items = self._items
        entry = (weakref.ref(payload, lambda _: items.pop(key, None)), text, search)
        self._items[key] = entry
        return entry

    def __len__(self) -> int:
        return len(self._items)


_payload_text = _PayloadText()


def _storable(text: str) -> str:
    """Text both databases accept: provider error texts may carry NULs or lone surrogates.

    Such characters are written as escapes; one odd byte from a provider must
    never make a whole batch of changes unwritable.
    """
    if "\x00" in text or _SURROGATE.search(text):
        return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def file_dicts(files: tuple[JobFile, ...]) -> list[dict[str, Any]]:
    """What the converter makes of ``files``, written out: every job's last write
    carries its file list, and this is four times quicker (a test keeps the two equal)."""
    return [
        {
            "id": f.id,
            "name": f.name,
            "size": f.size,
            "link": f.link,
            "selected": f.selected,
            "local_path": f.local_path,
            "bytes_done": f.bytes_done,
            "md5": f.md5,
            "transfer": None if f.transfer is None else converter.unstructure(f.transfer),
            "verified": f.verified,
        }
        for f in files
    ]


def job_to_row(job: Job) -> tuple[Any, ...]:
    """The ``jobs`` row of ``job``, in ``JOB_COLUMNS`` order.

    Raises ``ValidationError`` (field ``metadata``) when the metadata is not
    JSON-serialisable: refused before anything is written, rather than stored
    in a form that would not read back as the same job.
    """
    try:
        metadata = "{}" if job.metadata == {} else _dumps(job.metadata)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "metadata",
            f"job {job.id}: metadata is not JSON-serialisable: {exc}",
            expected="JSON data (dict, list, str, int, float, bool, None)",
        ) from exc
    error = job.error
    _, payload_json, payload_search = _payload_text.entry(job.payload)
    files = job.files
    search = joined_search_text(job.id, payload_search, [f.name for f in files])
    return (
        job.id,
        job.provider,
        job.status._value_,  # the plain text (``.value`` is a slower property)
        job.payload.priority,
        float(job.progress),
        payload_json,
        _fast_dumps(file_dicts(files)) if files else "[]",
        metadata,
        None if error is None else _storable(error.code),
        None if error is None else _storable(error.message),
        job.attempt,
        None if job.remote_id is None else _storable(job.remote_id),
        bool(job.submitted),
        job.created_at,
        job.updated_at,
        search,
    )


def job_from_row(row: Mapping[str, Any]) -> Job:
    """The ``Job`` stored in ``row`` (a mapping of column name to value).

    Raises ``StoreError`` for a row that cannot be read back (edited by hand,
    or written by an incompatible version).
    """
    try:
        code = row["error_code"]
        return Job(
            id=row["id"],
            provider=row["provider"],
            status=JobStatus(row["status"]),
            payload=converter.structure(json.loads(row["payload"]), StartJobPayload),
            progress=float(row["progress"]),
            files=converter.structure(json.loads(row["files"]), _FILES_TYPE),
            metadata=json.loads(row["metadata"]),
            error=None if code is None else JobErrorInfo(code, row["error_message"] or ""),
            attempt=int(row["attempt"]),
            remote_id=row["remote_id"],
            submitted=bool(row["submitted"]),
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
        )
    except Exception as exc:
        # cattrs raises its own exception groups; any failure here means the
        # stored row is unreadable, which is a store problem, not the caller's.
        raise StoreError(f"job {row.get('id')!r}: stored row cannot be read: {exc}") from exc


def transition_to_row(transition: Transition) -> tuple[Any, ...]:
    """The ``job_transitions`` row of ``transition``, in ``TRANSITION_COLUMNS`` order."""
    before = transition.from_status
    return (
        transition.job_id,
        transition.attempt,
        None if before is None else before._value_,
        transition.to_status._value_,
        transition.at,
    )


def transition_from_row(row: Mapping[str, Any]) -> Transition:
    """The ``Transition`` stored in ``row``."""
    try:
        before = row["from_status"]
        return Transition(
            job_id=row["job_id"],
            attempt=int(row["attempt"]),
            from_status=None if before is None else JobStatus(before),
            to_status=JobStatus(row["to_status"]),
            at=int(row["at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"job {row.get('job_id')!r}: stored transition cannot be read: {exc}"
        ) from exc
