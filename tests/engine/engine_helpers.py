"""Shared bits of the engine tests (importable, unlike conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import Engine

MakeEngine = Callable[..., Engine]


def magnet(i: int) -> dict[str, str]:
    """A valid magnet payload, unique per ``i``."""
    return {"magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}"}


def crash_after_submit(base: type[Any], times: int) -> type[Any]:
    """A subclass of provider ``base`` whose first ``times`` submissions crash right
    after the remote job was made, before the engine hears of it (``.crashes`` counts)."""

    class CrashAfterSubmit(base):  # type: ignore[misc, valid-type]
        crashes = 0

        def start_job(self, payload: Any) -> Any:
            response = super().start_job(payload)
            if CrashAfterSubmit.crashes < times:
                CrashAfterSubmit.crashes += 1
                raise RuntimeError("crash between the submission and its answer")
            return response

    return CrashAfterSubmit


def stored_bytes(directory: Path) -> bytes:
    """Everything the SQLite store wrote under ``directory`` (database, WAL, shared memory)."""
    return b"".join(path.read_bytes() for path in directory.glob("jobs.db*"))
