"""Local paths from untrusted provider names: inside the job's folder, valid on
common file systems, and never two files on one path.

A provider's name is a relative path (``Show/Season 1/e01.mkv``) that a hostile
or sloppy service may fill with anything: ``..``, absolute paths, drive
letters, backslashes, control characters, Windows-reserved names, names too
long for a file system. Each component is made safe on its own; the folders
that are left stay, so a pack keeps its layout.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

__all__ = ["place_files", "safe_component", "safe_relative_path"]

_NAME_MAX = 255  # bytes of UTF-8 per component (ext4, btrfs, xfs, NTFS in UTF-16 units)
_EXTENSION_MAX = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INVALID = re.compile(r'[:?|*<>"]')
_DRIVE = re.compile(r"^[A-Za-z]:(?=[/\\]|$)")  # C:\x, C:/x, C: (not a:b, a name)
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)
_FALLBACK = "file"


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, at a character boundary."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def fit(name: str, limit: int = _NAME_MAX) -> str:
    """``name`` within ``limit`` bytes, its extension kept (when it is a short one)."""
    if len(name.encode()) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and len((dot + extension).encode()) <= _EXTENSION_MAX:
        tail = dot + extension
        return _cut(stem, limit - len(tail.encode())).rstrip(" .") + tail
    return _cut(name, limit).rstrip(" .") or "_"


def safe_component(part: str) -> str | None:
    """One path component made safe; None when nothing is left to keep (``.``, ``..``)."""
    part = _CONTROL.sub("", part)
    if part in ("", ".", ".."):
        return None
    part = _INVALID.sub("_", part).lstrip(" ").rstrip(" .")
    if not part:
        return "_"
    base, dot, rest = part.partition(".")
    if base.lower().rstrip(" ") in _RESERVED:
        part = f"{base}_{dot}{rest}"
    return fit(part)


def safe_relative_path(name: str) -> PurePosixPath:
    """A relative path from a provider's ``name`` that stays below the folder it is put in."""
    text = unicodedata.normalize("NFC", name)
    text = _DRIVE.sub("", text.lstrip())
    parts = [safe_component(p) for p in re.split(r"[/\\]", text)]
    kept = [p for p in parts if p is not None]
    return PurePosixPath(*kept) if kept else PurePosixPath(_FALLBACK)


def _key(path: PurePosixPath) -> tuple[str, ...]:
    """How a case-insensitive, normalising file system sees a path."""
    return tuple(unicodedata.normalize("NFC", p).casefold() for p in path.parts)


def _numbered(name: str, n: int) -> str:
    """``name (n).ext`` within the length limit (``.hidden`` and ``..x`` have no stem
    to number before: the number goes at the end)."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem.strip(" .") or len((dot + extension).encode()) > _EXTENSION_MAX:
        stem, dot, extension = name, "", ""
    tail = f" ({n}){dot}{extension}"
    return _cut(stem, _NAME_MAX - len(tail.encode())).rstrip(" .") + tail


def place_files(files: Iterable[tuple[int, str]], root: Path) -> dict[int, Path]:
    """A path under ``root`` for every ``(file id, provider name)``, in order.

    No two paths are the same when compared as a case-insensitive file system
    would, and no file's path is another's folder: a later clash gets a numbered
    name (``name (1).ext``, or ``folder (1)/name`` where a folder meets a file).
    """
    files_at: set[tuple[str, ...]] = set()
    folders_at: set[tuple[str, ...]] = set()
    placed: dict[int, Path] = {}
    for file_id, name in files:
        parts = list(safe_relative_path(name).parts)
        # Folders first: one that is a file already gets a number.
        for depth in range(len(parts) - 1):
            n = 0
            base = parts[depth]
            while _key(PurePosixPath(*parts[: depth + 1])) in files_at:
                n += 1
                parts[depth] = _numbered(base, n)
            folders_at.add(_key(PurePosixPath(*parts[: depth + 1])))
        base, n = parts[-1], 0
        while (key := _key(PurePosixPath(*parts))) in files_at or key in folders_at:
            n += 1
            parts[-1] = _numbered(base, n)
        files_at.add(key)
        placed[file_id] = root.joinpath(*parts)
    return placed
