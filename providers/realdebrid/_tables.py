"""Real-Debrid's words mapped onto ours: one table for torrent states, one for error codes.

Every entry carries, in a short comment, where the fact comes from (the keys are
those of the facts sheet, shared/providers/realdebrid.md: [DOC] the official
API page, [RDT] rdt-client, [RIVEN] riven, [DECY] decypharr, [DMM] debrid media
manager, [RDNET] RD.NET).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from providers._errors import ErrorRule
from providers._status import JobStatus

__all__ = [
    "ERROR_CODES",
    "ERROR_STRINGS",
    "HTTP_FALLBACK",
    "STATUS_TABLE",
    "ErrorRule",
    "StatusRule",
    "error_rule",
]


@attrs.frozen
class StatusRule:
    """What one RD torrent status means for a job (``error_code`` set for failures)."""

    status: JobStatus
    error_code: str | None = None
    message: str = ""


#: The eleven statuses of the [DOC] torrent schema.
STATUS_TABLE: Mapping[str, StatusRule] = {
    # Metadata could not be fetched: no seeders, invalid or corrupt (unchained-android#124).
    "magnet_error": StatusRule(
        JobStatus.FAILED, "MAGNET_ERROR", "Real-Debrid could not resolve the magnet"
    ),
    # Fetching metadata from peers; files empty, filename "Magnet" ([DMM] addMagnet.ts).
    "magnet_conversion": StatusRule(JobStatus.RESOLVING),
    # Metadata known, nothing moves until selectFiles (rdt-client#92, #432).
    "waiting_files_selection": StatusRule(JobStatus.RESOLVING),
    # Accepted, waiting for a slot; [RDT] maps it to Downloading.
    "queued": StatusRule(JobStatus.DOWNLOADING),
    # Fetching from the swarm; speed and seeders present ([DOC]).
    "downloading": StatusRule(JobStatus.DOWNLOADING),
    # Packing the selection into an archive ([DOC]; one RAR link follows, [DECY]).
    "compressing": StatusRule(JobStatus.DOWNLOADING),
    # Transferring to the chosen host ([DOC]).
    "uploading": StatusRule(JobStatus.DOWNLOADING),
    # Done: `ended` and links[] present ([DOC]); links are unrestricted by get_file_links.
    "downloaded": StatusRule(JobStatus.COMPLETED),
    # Terminal failures, mapped to failed by every client surveyed ([RDT], [RIVEN], [DECY]).
    "error": StatusRule(JobStatus.FAILED, "REMOTE_ERROR", "Real-Debrid reported an error"),
    "virus": StatusRule(JobStatus.FAILED, "VIRUS", "Real-Debrid found a virus in the torrent"),
    "dead": StatusRule(JobStatus.FAILED, "DEAD", "the torrent is dead on Real-Debrid"),
}


#: RD's numeric ``error_code`` ([DOC] "List of numeric error codes"). Retry policy
#: from community practice (facts section 4.1): back off on 5xx-like, 21, 23, 34,
#: 36; never retry 35, 16 or 8 (8 refreshes the OAuth token instead).
ERROR_CODES: Mapping[int, ErrorRule] = {
    -1: ErrorRule("INTERNAL_ERROR", True),  # "Internal error" (July 2024 incident, rdt-client#536)
    1: ErrorRule("BAD_REQUEST", False),  # parameter_missing
    2: ErrorRule("BAD_REQUEST", False),  # bad parameter value
    3: ErrorRule("BAD_REQUEST", False),  # unknown method
    4: ErrorRule("BAD_REQUEST", False),  # method not allowed
    5: ErrorRule("RATE_LIMITED", True),  # slow down
    6: ErrorRule("PROVIDER_UNAVAILABLE", True),  # ressource unreachable
    7: ErrorRule("NOT_FOUND", False),  # unknown_ressource (deleted torrent, [RDT] UpdateData)
    8: ErrorRule("BAD_TOKEN", False),  # bad_token: refresh once, then fail ([RDNET] Requests.cs)
    9: ErrorRule("PERMISSION_DENIED", False),  # free account / not premium (MediaFusion)
    10: ErrorRule("TWO_FACTOR_REQUIRED", False),
    11: ErrorRule("TWO_FACTOR_REQUIRED", False),
    12: ErrorRule("AUTH_FAILED", False),  # invalid login
    13: ErrorRule("AUTH_FAILED", False),  # invalid password
    14: ErrorRule("ACCOUNT_LOCKED", False),
    15: ErrorRule("ACCOUNT_NOT_ACTIVATED", False),
    16: ErrorRule("HOSTER_UNSUPPORTED", False),  # never retried (facts 4.1)
    17: ErrorRule("HOSTER_MAINTENANCE", True),  # ends by itself (our decision)
    18: ErrorRule("HOSTER_LIMIT", True),  # a quota that resets (our decision)
    19: ErrorRule("HOSTER_UNAVAILABLE", False),  # broken RD copy, re-add fixes it (rclone_RD#10)
    20: ErrorRule("PREMIUM_REQUIRED", False),  # hoster not available for free users
    21: ErrorRule("ACTIVE_LIMIT", True),  # too_many_active_downloads, often HTTP 509 ([DECY])
    22: ErrorRule("IP_NOT_ALLOWED", False),
    23: ErrorRule("TRAFFIC_EXHAUSTED", True),  # [DECY] retries 23 with doubling delays
    24: ErrorRule("FILE_UNAVAILABLE", False),  # [DECY] maps 24 with 19 (zurg-public#26)
    25: ErrorRule("PROVIDER_UNAVAILABLE", True),  # service unavailable
    26: ErrorRule("UPLOAD_TOO_BIG", False),
    27: ErrorRule("UPLOAD_ERROR", True),  # a failed upload may succeed again (our decision)
    28: ErrorRule("FILE_NOT_ALLOWED", False),
    29: ErrorRule("TORRENT_TOO_BIG", False),
    30: ErrorRule("INVALID_TORRENT", False),
    31: ErrorRule("ALREADY_DONE", False),  # action_already_done: callers treat it as success
    32: ErrorRule("BAD_REQUEST", False),  # image resolution error
    33: ErrorRule("ALREADY_ACTIVE", False),  # torrent already active: start_job adopts it
    34: ErrorRule("RATE_LIMITED", True),  # too_many_requests (429)
    35: ErrorRule("INFRINGING_FILE", False),  # riven blacklists for good (riven#1367)
    36: ErrorRule("FAIR_USAGE_LIMIT", True),  # rdt-client#433; [DECY] retries it
    37: ErrorRule("DISABLED_ENDPOINT", False),  # instantAvailability since 2024-11 (comet#243)
}

#: When ``error_code`` is missing, the ``error`` string still says what happened
#: (facts 4.1: "key on error_code or the error string").
ERROR_STRINGS: Mapping[str, int] = {
    "internal_error": -1,
    "parameter_missing": 1,  # rdt-client#27
    "unknown_ressource": 7,  # RD's spelling (unchained-android)
    "bad_token": 8,  # Umbrella refreshes on this string
    "permission_denied": 9,
    "hoster_unsupported": 16,
    "hoster_unavailable": 19,  # itsToggle/rclone_RD#10
    "hoster_not_free": 20,  # string seen, code not observed
    "too_many_active_downloads": 21,  # plex_debrid
    "file_unavailable": 24,
    "action_already_done": 31,  # Umbrella
    "too_many_requests": 34,
    "infringing_file": 35,  # unchained-android#377, riven#1367
    "fair_usage_limit": 36,  # rdt-client#433
    "disabled_endpoint": 37,  # decypharr#67
}

#: Neither a known code nor a known string: judge by the HTTP status ([DOC] 4.1).
HTTP_FALLBACK: Mapping[int, ErrorRule] = {
    400: ErrorRule("BAD_REQUEST", False),
    401: ErrorRule("BAD_TOKEN", False),
    403: ErrorRule("PERMISSION_DENIED", False),
    404: ErrorRule("NOT_FOUND", False),
    429: ErrorRule("RATE_LIMITED", True),
    451: ErrorRule("INFRINGING_FILE", False),  # riven#1367, cli_debrid#492
    509: ErrorRule("ACTIVE_LIMIT", True),  # [DECY]; DMM retries a 509 after 5 s
}


def error_rule(http_status: int, error_code: int | None, error: str | None) -> ErrorRule:
    """The rule for an error answer: by ``error_code``, else by string, else by HTTP status."""
    if error_code is None and error:
        error_code = ERROR_STRINGS.get(error)
    if error_code is not None and error_code in ERROR_CODES:
        return ERROR_CODES[error_code]
    if http_status in HTTP_FALLBACK:
        return HTTP_FALLBACK[http_status]
    # riven treats every 5xx as a back-off signal (facts 4.1: _maybe_backoff).
    return ErrorRule("PROVIDER_UNAVAILABLE" if http_status >= 500 else "PROVIDER_ERROR",
                     http_status >= 500)
