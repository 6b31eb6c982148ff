"""TorBox's ``download_state`` strings mapped onto ``JobStatus``: the one table.

The state string never says "ready": TorBox tells clients not to use
``completed`` as the completion signal, and a ``completed`` item whose files
were evicted is not ready (PYSDK; hydralauncher/hydra#2655). Ready is
``download_finished and download_present``, decided by the caller before this
table is consulted. Every state here is therefore either still in progress or a
failure.

QUEUED is kept for items in TorBox's queue table (their own endpoint, see
``_provider``); once TorBox accepts an item, nothing maps back to QUEUED, so an
ordinary lifecycle never reports a step backwards.
"""

from __future__ import annotations

import re

import attrs

from providers._status import JobStatus

__all__ = ["STATES", "StateEntry", "lookup_state"]

_R, _D, _F = JobStatus.RESOLVING, JobStatus.DOWNLOADING, JobStatus.FAILED


@attrs.frozen
class StateEntry:
    """Where a native state puts a job, and the error code when that is FAILED."""

    status: JobStatus
    error_code: str | None = None


#: Keys are lower-case: clients see ``metaDL`` and friends in camelCase.
STATES: dict[str, StateEntry] = {
    # TorBox's own list (PYSDK get_torrent_list; POSTMAN).
    "downloading": StateEntry(_D),
    "uploading": StateEntry(_D),  # seeding; ready only by the flags
    "stalled (no seeds)": StateEntry(_D),  # still trying (PYSDK)
    "paused": StateEntry(_D),
    "completed": StateEntry(_D),  # "not the completion signal" (PYSDK; hydra#2655)
    "cached": StateEntry(_D),  # ready once present (decypharr#401)
    "metadl": StateEntry(_R),  # fetching metadata
    "checkingresumedata": StateEntry(_R),
    # Added in TorBox v8.4.3 for downloads short of seeders: alive, not failed
    # (decypharr#318, PR #328).
    "incomplete": StateEntry(_D),
    # Plain qBittorrent states, which PYSDK says TorBox may pass through
    # (qBittorrent WebUI API 4.1 list; stopped* from newer qBittorrent, unconfirmed).
    "error": StateEntry(_F, "DOWNLOAD_ERROR"),
    "missingfiles": StateEntry(_F, "MISSING_FILES"),
    "pausedup": StateEntry(_D),
    "queuedup": StateEntry(_D),
    "stalledup": StateEntry(_D),
    "checkingup": StateEntry(_D),
    "forcedup": StateEntry(_D),
    "stoppedup": StateEntry(_D),
    "allocating": StateEntry(_R),
    "queueddl": StateEntry(_R),  # accepted, waiting inside the client: not TorBox's queue
    "checkingdl": StateEntry(_R),
    "pauseddl": StateEntry(_D),
    "stoppeddl": StateEntry(_D),
    "stalleddl": StateEntry(_D),
    "forceddl": StateEntry(_D),
    "moving": StateEntry(_D),
    "unknown": StateEntry(_D),  # qBittorrent's own "unknown" is a documented value
    # Variants clients handle (RDT status switch; DECY); unconfirmed as server output.
    "stalled": StateEntry(_D),
    "processing": StateEntry(_R),
    "checking": StateEntry(_R),
    "queued": StateEntry(_R),
    "downloaded": StateEntry(_D),  # DECY treats it as done: ready still needs the flags
    # Usenet-style states rdt-client handles (RDT; unconfirmed officially).
    "missing": StateEntry(_F, "MISSING_FILES"),
    "failed": StateEntry(_F, "DOWNLOAD_ERROR"),
}

#: Prefix families (rdt-client matches usenet states by prefix: "failed (...)", "repairing").
_PREFIXES: tuple[tuple[str, StateEntry], ...] = (
    ("failed", STATES["failed"]),
    ("error", STATES["error"]),
    ("downloading", StateEntry(_D)),
    ("uploading", StateEntry(_D)),
    ("stalled", StateEntry(_D)),
    ("paused", StateEntry(_D)),
    ("queued", StateEntry(_R)),
    ("checking", StateEntry(_R)),
    ("waiting", StateEntry(_D)),
    ("direct unpack", StateEntry(_D)),
    ("repair", StateEntry(_D)),
    ("verifying", StateEntry(_D)),
)

# DECY strips parenthesised suffixes: "uploading (no peers)" -> "uploading".
_SUFFIX = re.compile(r"\s*\(.*\)\s*$")


def lookup_state(native: str) -> StateEntry | None:
    """The entry for a ``download_state``; None for a state nobody has documented yet."""
    key = native.strip().lower()
    entry = STATES.get(key)
    if entry is not None:
        return entry
    base = _SUFFIX.sub("", key)
    entry = STATES.get(base)
    if entry is not None:
        return entry
    for prefix, candidate in _PREFIXES:
        if base.startswith(prefix):
            return candidate
    return None
