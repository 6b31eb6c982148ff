"""The local side of a transfer: free space, and the ``.part`` file a fetch writes into."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

__all__ = ["NoSpace", "check_space", "free_bytes", "open_part"]


class NoSpace(Exception):
    """The disk does not have room for what a file still needs plus the margin."""


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on ``directory``'s file system."""
    return shutil.disk_usage(directory).free


def check_space(
    directory: Path, needed: int, margin: int, free_of: Callable[[Path], int] | None = None
) -> None:
    """Raise ``NoSpace`` unless ``needed + margin`` bytes are free under ``directory``
    (``free_of`` measures it: ``free_bytes`` unless a test says otherwise)."""
    free = (free_of or free_bytes)(directory)
    if free < needed + margin:
        raise NoSpace(
            f"{directory}: {needed} bytes still to download plus a margin of {margin}, "
            f"but only {free} bytes are free"
        )


def open_part(path: Path, size: int) -> int:
    """Open (or create) ``path`` for writing at any offset, ``size`` bytes long.

    The space is reserved up front where the file system allows it, so a full disk
    shows at the start (``ENOSPC``) rather than half-way; bytes already there stay.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        current = os.fstat(fd).st_size
        if current > size:
            os.ftruncate(fd, size)
        elif current < size:
            _reserve(fd, current, size)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    return fd


def _reserve(fd: int, current: int, size: int) -> None:
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, current, size - current)
            return
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            # EINVAL / EOPNOTSUPP: this file system cannot; a sparse file will do.
    os.ftruncate(fd, size)
