"""What every supervised actor shares: crashes, including at start, reach the supervisor."""

from __future__ import annotations

import contextlib
import sys
import traceback
from typing import Any

import pykka

from actors._base import EngineActor
from actors._messages import ChildFailed, ChildKind, Ref

__all__ = ["SupervisedActor"]


class SupervisedActor(EngineActor):
    """A child of the SupervisorActor.

    Subclasses set ``supervisor`` and implement ``begin`` (their start-up) and
    ``child_id`` (``(ChildKind.JOB, job_id)`` or ``(ChildKind.PROVIDER, name)``).
    """

    supervisor: Ref

    def child_id(self) -> tuple[ChildKind, str]:
        """What the supervisor knows this child as."""
        raise NotImplementedError

    def begin(self) -> None:
        """Start-up work, run on the actor's own thread."""

    def on_start(self) -> None:
        """Run ``begin``; a failure there is reported like any crash."""
        try:
            self.begin()
        except Exception:
            # Pykka calls on_failure for a failed message, not for a failed on_start.
            self.on_failure(*sys.exc_info())
            raise

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Tell the supervisor, which restarts this child from the stored state."""
        kind, key = self.child_id()
        trace = "".join(traceback.format_exception(exc_type, exc, tb))
        # A dead supervisor means the engine is stopping: nobody is left to restart us.
        with contextlib.suppress(pykka.ActorDeadError):
            self.supervisor.tell(ChildFailed(kind, key, repr(exc), trace, str(self.actor_urn)))
