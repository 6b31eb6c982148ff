"""Fault injection into a running engine's actors, for crash tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pykka

from actors import InjectCrash

if TYPE_CHECKING:
    from engine._engine import Engine

__all__ = ["inject_job_crash", "inject_provider_crash", "inject_supervisor_crash"]


def inject_job_crash(engine: Engine, job_id: str) -> bool:
    """Make the job's actor raise as a bug would; False when the job has no live actor."""
    # A testing aid reaches inside on purpose: production code never does this.
    supervisor_ref = engine._supervisor.ref
    supervisor = supervisor_ref._actor_weakref() if supervisor_ref is not None else None
    ref = getattr(supervisor, "actors", {}).get(job_id)
    if ref is None or not hasattr(ref, "tell"):
        return False
    try:
        ref.tell(InjectCrash())
    except pykka.ActorDeadError:
        return False
    return True


def inject_supervisor_crash(engine: Engine) -> bool:
    """Kill the engine's supervisor as a bug in it would; its root restarts it from the store."""
    ref = engine._supervisor.ref
    return ref is not None and _crash(ref)


def inject_provider_crash(engine: Engine, provider: str) -> bool:
    """Make a provider actor raise as a bug would; the supervisor restarts it."""
    handle = engine._handles.get(provider)
    return handle is not None and _crash(handle)


def _crash(target: Any) -> bool:
    try:
        target.tell(InjectCrash())
    except pykka.ActorDeadError:
        return False
    return True
