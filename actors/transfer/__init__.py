"""The mechanics of a local download, below the DownloadActor: safe names, byte
ranges, bandwidth buckets, free space, one HTTP transfer, and verification.

Nothing here is an actor: these run on the DownloadActor's worker threads (or
are pure), and the actor decides what happens next.
"""

from actors.transfer._bandwidth import Bandwidth, TokenBucket
from actors.transfer._fetch import (
    Abort,
    AbortReason,
    FetchOutcome,
    FetchResult,
    HashFeed,
    ProbeResult,
    Validator,
    fetch_range,
    probe,
)
from actors.transfer._names import place_files, safe_relative_path
from actors.transfer._ranges import ByteRanges, plan_segments
from actors.transfer._space import NoSpace, check_space, free_bytes, open_part
from actors.transfer._verify import Checked, Md5Progress, verify
from actors.transfer._wire import Wire, WireAnswer

__all__ = [
    "Abort",
    "AbortReason",
    "Bandwidth",
    "ByteRanges",
    "Checked",
    "FetchOutcome",
    "FetchResult",
    "HashFeed",
    "Md5Progress",
    "NoSpace",
    "ProbeResult",
    "TokenBucket",
    "Validator",
    "Wire",
    "WireAnswer",
    "check_space",
    "fetch_range",
    "free_bytes",
    "open_part",
    "place_files",
    "plan_segments",
    "probe",
    "safe_relative_path",
    "verify",
]
