"""Where a path sent over HTTP may point: inside the configured download roots."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["inside"]


def inside(path: str | os.PathLike[str], roots: Iterable[Path]) -> bool:
    """True when ``path`` resolves (symlinks followed) inside one of ``roots``, or is one."""
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False
