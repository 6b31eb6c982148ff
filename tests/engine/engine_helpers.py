"""Shared bits of the engine tests (importable, unlike conftest)."""

from __future__ import annotations

from collections.abc import Callable

from engine import Engine

MakeEngine = Callable[..., Engine]


def magnet(i: int) -> dict[str, str]:
    """A valid magnet payload, unique per ``i``."""
    return {"magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}"}
