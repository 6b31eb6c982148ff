"""The root of the supervision tree: it restarts the SupervisorActor (and with it every child).

The supervisor survives any one message (a failed handler fails that message's
replies), so the root acts only when the supervisor dies anyway: a bug in its
own bookkeeping, or a restart whose start-up fails. It waits (a bounded time)
for the dead supervisor's children to stop, so that no job ever has two
actors and no provider object two threads, then starts a new supervisor,
which recovers everything from the store. Past ``max_restarts`` in ``window``
seconds it gives up: the engine stops cleanly and says why.

The root's mailbox carries nothing but its supervisor's death notices, so the
bounded wait for the old children blocks nobody: every caller waits for the
new supervisor anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors._base import EngineActor
from actors._messages import Ref, SupervisorDown
from actors._restarts import RestartIntensity
from providers._log import get_logger

__all__ = ["RootActor", "SupervisorHandle"]

log = get_logger("debrid.actors.root")

#: Seconds to wait for a dead supervisor's children (a provider may be mid-request).
_CHILDREN_GRACE = 30.0


class SupervisorHandle:
    """Where the Engine finds the current supervisor; it waits here while one restarts."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ref: Ref | None = None
        self.generation = 0
        self.restarts = 0
        #: Why the engine gave up (None while it runs).
        self.failure: str | None = None

    def point_at(self, ref: Ref | None) -> None:
        """The current supervisor (None while restarting)."""
        with self._cond:
            self._ref = ref
            if ref is not None:
                self.generation += 1
            self._cond.notify_all()

    def give_up(self, reason: str) -> None:
        """No supervisor will come back: callers stop waiting."""
        with self._cond:
            self.failure = reason
            self._ref = None
            self._cond.notify_all()

    @property
    def ref(self) -> Ref | None:
        """The current supervisor, or None."""
        return self._ref

    def current(self) -> tuple[Ref | None, int]:
        """The current supervisor and its generation, read together."""
        with self._cond:
            return self._ref, self.generation

    def wait_for(self, newer_than: int, timeout: float) -> tuple[Ref | None, int]:
        """A supervisor of a generation after ``newer_than`` (and that generation)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.failure is None and (self._ref is None or self.generation <= newer_than):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, self.generation
                self._cond.wait(left)
            return self._ref, self.generation


class RootActor(EngineActor):
    """Starts the supervisor and restarts it when it dies (see the module docstring)."""

    def __init__(
        self,
        *,
        start_supervisor: Callable[[Ref, bool], Ref],
        handle: SupervisorHandle,
        intensity: RestartIntensity,
        on_give_up: Callable[[str], None],
    ) -> None:
        super().__init__()
        self.start_supervisor = start_supervisor
        self.handle = handle
        self.intensity = intensity
        self.on_give_up = on_give_up
        self.current: Ref | None = None

    def on_start(self) -> None:
        """Start the first supervisor."""
        self.current = self.start_supervisor(self.actor_ref, True)
        self.handle.point_at(self.current)

    def on_receive(self, message: Any) -> None:
        """Handle a supervisor's death notice."""
        match message:
            case SupervisorDown(urn, error, children):
                self._restart(urn, error, children)
            case _:
                log.warning("unexpected_message", message=type(message).__name__)

    def on_stop(self) -> None:
        """Stop the current supervisor (it stops its children and writes what is pending)."""
        current, self.current = self.current, None
        self.handle.point_at(None)
        if current is not None:
            try:
                current.stop(block=True, timeout=_CHILDREN_GRACE)
            except (pykka.ActorDeadError, pykka.Timeout):
                log.warning("supervisor_stop_timed_out")

    def _restart(self, urn: str, error: str, children: tuple[Ref, ...]) -> None:
        if self.current is None or str(self.current.actor_urn) != urn:
            return  # not the current one (already replaced)
        self.handle.point_at(None)
        self.current = None
        while True:
            if self.intensity.record("supervisor"):
                reason = (
                    f"the supervisor crashed {self.intensity.count('supervisor')} times in "
                    f"{self.intensity.window:g}s (last: {error}); the engine stopped"
                )
                log.error("engine_gave_up", reason=reason)
                self.handle.give_up(reason)
                self.on_give_up(reason)
                return
            deadline = time.monotonic() + _CHILDREN_GRACE
            for child in children:
                if not child.actor_stopped.wait(max(0.0, deadline - time.monotonic())):
                    log.warning("child_still_running", actor=str(child))
            self.handle.restarts += 1
            log.warning("supervisor_restarting", error=error, restarts=self.handle.restarts)
            try:
                self.current = self.start_supervisor(self.actor_ref, False)
            except Exception as exc:
                log.exception("supervisor_restart_failed")
                error, children = repr(exc), ()
                continue
            self.handle.point_at(self.current)
            return
