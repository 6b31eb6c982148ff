"""JobEvent and the bus that hands committed events to subscribers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from actors._base import EngineActor
from providers import Job, JobStatus
from providers._log import get_logger

__all__ = ["EventBus", "JobEvent", "Publish", "Subscribers"]

if TYPE_CHECKING:
    from actors._writer import EventBacklog

log = get_logger("debrid.actors.events")

EventKind = Literal["created", "transition", "updated", "deleted"]


@attrs.frozen
class JobEvent:
    """Something durable happened to a job (published only after it is committed).

    ``kind`` is ``created`` (a new job or a new attempt), ``transition`` (a state
    change from ``previous``), ``updated`` (progress, files, remote id) or
    ``deleted`` (the finished job, as it was, is gone from the store).
    """

    kind: EventKind
    job: Job
    previous: JobStatus | None = None

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self.job.id

    @property
    def status(self) -> JobStatus:
        """The job's status after the event."""
        return self.job.status


@attrs.frozen
class Publish:
    """Deliver these events, in order, to every subscriber."""

    events: Sequence[JobEvent]


Callback = Callable[[JobEvent], None]


class Subscribers:
    """The thread-safe list of callbacks; anyone may add or remove one at any time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callback] = {}
        self._next = 0

    def add(self, callback: Callback) -> int:
        """Subscribe; returns a token for ``remove``."""
        with self._lock:
            self._next += 1
            self._callbacks[self._next] = callback
            return self._next

    def remove(self, token: int) -> None:
        """Unsubscribe (no error when already gone)."""
        with self._lock:
            self._callbacks.pop(token, None)

    def snapshot(self) -> list[Callback]:
        """The callbacks subscribed right now."""
        with self._lock:
            return list(self._callbacks.values())


class EventBus(EngineActor):
    """Calls subscribers on its own thread, so a slow callback never stalls the engine.

    Events of one job reach each subscriber in commit order. A callback that
    raises is logged and keeps its subscription.
    """

    def __init__(self, subscribers: Subscribers, backlog: EventBacklog | None = None) -> None:
        super().__init__()
        self.subscribers = subscribers
        self.backlog = backlog

    def on_receive(self, message: Any) -> None:
        """Deliver a ``Publish``."""
        if not isinstance(message, Publish):
            return
        callbacks = self.subscribers.snapshot()
        for event in message.events:
            for callback in callbacks:
                try:
                    callback(event)
                except Exception:
                    log.exception(
                        "subscriber_failed", job_id=event.job.id, provider=event.job.provider
                    )
        if self.backlog is not None:
            self.backlog.delivered(len(message.events))
