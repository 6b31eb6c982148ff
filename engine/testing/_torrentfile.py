"""What an uploaded ``.torrent`` holds, for the fakes: its info-hash, name and files.

Both fakes read uploads with this, so a torrent sent to either comes back with
its own contents rather than files invented from the hash. Paths are as clients
show them: a multi-file torrent's files sit under its name (the top folder), a
single-file torrent's one file is its name; each service then presents them its
own way (Real-Debrid drops the top folder, TorBox keeps it).
"""

from __future__ import annotations

from typing import Any

import attrs

from providers._torrent import BencodeError, bdecode, torrent_info_hash

__all__ = ["TorrentFile", "read_torrent"]


@attrs.frozen
class TorrentFile:
    """A parsed ``.torrent``: ``files`` are ``(path, size)`` pairs, top folder included."""

    info_hash: str
    name: str
    files: tuple[tuple[str, int], ...]


def read_torrent(data: bytes) -> TorrentFile:
    """Parse ``data``; raises ``BencodeError`` (a ``ValueError``) when it is no usable torrent."""
    info_hash = torrent_info_hash(data)
    try:
        name, files = _name_and_files(bdecode(data)[b"info"])
    except (KeyError, TypeError, AttributeError) as error:
        raise BencodeError(f"not a usable torrent: {error!r}") from error
    return TorrentFile(info_hash, name, files)


def _text(raw: Any) -> str:
    if not isinstance(raw, bytes):
        raise TypeError("a name or path part is not a byte string")
    return raw.decode("utf-8", "replace")


def _size(raw: Any) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
        raise TypeError("a length is not a non-negative integer")
    return raw


def _name_and_files(info: dict[bytes, Any]) -> tuple[str, tuple[tuple[str, int], ...]]:
    # BEP 3: `name` is the file (single-file) or the folder (multi-file); the
    # `.utf-8` variants are what clients prefer when present.
    name = _text(info.get(b"name.utf-8") or info[b"name"])
    if b"files" not in info:
        return name, ((name, _size(info[b"length"])),)
    files = []
    for entry in info[b"files"]:
        parts = entry.get(b"path.utf-8") or entry[b"path"]
        path = "/".join(_text(part) for part in parts)
        files.append((f"{name}/{path}", _size(entry[b"length"])))
    if not files:
        raise TypeError("a multi-file torrent without files")
    return name, tuple(files)
