"""Remote ids: what the engine stores for a TorBox item, as an opaque string.

``torrent:123`` and ``webdl:45`` name items of TorBox's two lists (their numbers
may collide: they are separate tables). A queued item has its own id in the
queue table and gets a new torrent/webdl id when it starts (rdt-client#987), so
its remote id carries the hash it will be found by afterwards:
``queued:torrent:9:<hash>``. The hash is public (an info-hash, or the md5 of a
link), never a secret.
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

__all__ = ["ItemKind", "RemoteRef", "parse_remote_id"]

ItemKind = Literal["torrent", "webdl"]

_ITEM = re.compile(r"^(torrent|webdl):(\d+)$")
_QUEUED = re.compile(r"^queued:(torrent|webdl):(\d+):([0-9a-f]{1,64})$")


@attrs.frozen
class RemoteRef:
    """A parsed remote id: an item of ``kind`` (queued when ``queued``) with TorBox's number."""

    kind: ItemKind
    number: int
    queued: bool = False
    hash: str | None = None

    def __str__(self) -> str:
        if self.queued:
            return f"queued:{self.kind}:{self.number}:{self.hash}"
        return f"{self.kind}:{self.number}"


def parse_remote_id(remote_id: str) -> RemoteRef | None:
    """The reference behind ``remote_id``; None when it is not one of ours."""
    match = _ITEM.match(remote_id)
    if match:
        kind: ItemKind = "torrent" if match.group(1) == "torrent" else "webdl"
        return RemoteRef(kind, int(match.group(2)))
    match = _QUEUED.match(remote_id)
    if match:
        kind = "torrent" if match.group(1) == "torrent" else "webdl"
        return RemoteRef(kind, int(match.group(2)), queued=True, hash=match.group(3))
    return None
