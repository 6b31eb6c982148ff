"""Fault injection into a running engine's actors, for crash tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pykka

from actors import InjectCrash

if TYPE_CHECKING:
    from engine._engine import Engine

__all__ = ["inject_job_crash"]


def inject_job_crash(engine: Engine, job_id: str) -> bool:
    """Make the job's actor raise as a bug would; False when the job has no live actor."""
    # A testing aid reaches inside on purpose: production code never does this.
    supervisor_ref = engine._supervisor
    supervisor = supervisor_ref._actor_weakref() if supervisor_ref is not None else None
    ref = getattr(supervisor, "actors", {}).get(job_id)
    if ref is None or not hasattr(ref, "tell"):
        return False
    try:
        ref.tell(InjectCrash())
    except pykka.ActorDeadError:
        return False
    return True
