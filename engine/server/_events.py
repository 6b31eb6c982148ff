"""``GET /api/events``: the engine's job events as server-sent events.

``EventHub`` subscribes to the engine and keeps the last 10,000 events in a
ring, each with an id one above the one before. The ids of a daemon start at
its start time in microseconds, so they also grow across restarts: an id from
an earlier daemon is below this one's ring, a gap, and the stream answers
``event: reset`` (the client reloads its list) instead of silently skipping.

The engine calls ``publish`` on its event thread: it formats the event, appends
it under a lock and wakes each waiting stream on that stream's event loop with
``call_soon_threadsafe``; it never waits for a stream.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable

import attrs

from actors import JobEvent

__all__ = ["KEEPALIVE_SECONDS", "RING_SIZE", "EventHub", "SseEvent"]

RING_SIZE = 10_000
KEEPALIVE_SECONDS = 15.0


@attrs.frozen
class SseEvent:
    """One job event, formatted once for every stream."""

    id: int
    text: str


@attrs.define(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event


class EventHub:
    """The ring of recent job events and the streams waiting for more (thread-safe)."""

    def __init__(
        self,
        size: int = RING_SIZE,
        *,
        keepalive: float = KEEPALIVE_SECONDS,
        first_id: int | None = None,
    ) -> None:
        self.keepalive = keepalive
        self._lock = threading.Lock()
        self._ring: collections.deque[SseEvent] = collections.deque(maxlen=size)
        self._last = first_id if first_id is not None else time.time_ns() // 1000
        self._waiters: set[_Waiter] = set()
        self._closed = False
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def last_id(self) -> int:
        """The id of the newest event (the start id while there is none)."""
        with self._lock:
            return self._last

    @property
    def closed(self) -> bool:
        """True once ``close`` was called: every stream ends."""
        return self._closed

    def attach(self, subscribe: Callable[[Callable[[JobEvent], None]], Callable[[], None]]) -> None:
        """Follow an engine's events (``engine.subscribe``)."""
        if self._unsubscribe is None:
            self._unsubscribe = subscribe(self.publish)

    def detach(self) -> None:
        """Stop following the engine."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def publish(self, event: JobEvent) -> None:
        """Keep ``event`` and wake the streams (called on the engine's event thread)."""
        data = {
            "kind": event.kind,
            "previous": event.previous.value if event.previous is not None else None,
            "job": event.job.to_dict(),
        }
        payload = json.dumps(data, separators=(",", ":"))
        with self._lock:
            self._last += 1
            text = f"id: {self._last}\nevent: job\ndata: {payload}\n\n"
            self._ring.append(SseEvent(self._last, text))
            waiters = list(self._waiters)
        _wake(waiters)

    def close(self) -> None:
        """End every stream (the daemon stops): waiting ones wake and return."""
        with self._lock:
            self._closed = True
            waiters = list(self._waiters)
        _wake(waiters)

    def since(self, after: int) -> tuple[list[SseEvent], bool]:
        """The events after id ``after`` and whether some were lost (a gap to reset)."""
        with self._lock:
            if after > self._last:
                return [], True  # an id this daemon never gave
            if not self._ring:
                # Nothing to replay; an id from before this daemon's first (an earlier
                # run's stream) is still a gap the client must reload across.
                return [], after < self._last
            oldest = self._ring[0].id
            if after < oldest - 1:
                return list(self._ring), True
            skip = after - oldest + 1
            return [e for i, e in enumerate(self._ring) if i >= skip], False

    async def stream(self, last_event_id: int | None) -> AsyncIterator[str]:
        """The text of the event stream: replay after ``last_event_id``, then live."""
        waiter = _Waiter(asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
            cursor = self._last if last_event_id is None else last_event_id
        try:
            yield "retry: 2000\n\n"
            while not self._closed:
                waiter.event.clear()
                events, gap = self.since(cursor)
                if gap:
                    cursor = self.last_id
                    yield f"id: {cursor}\nevent: reset\ndata: {{}}\n\n"
                    continue
                if events:
                    for event in events:
                        yield event.text
                    cursor = events[-1].id
                    continue
                try:
                    await asyncio.wait_for(waiter.event.wait(), self.keepalive)
                except TimeoutError:
                    yield ": keepalive\n\n"
        finally:
            with self._lock:
                self._waiters.discard(waiter)


def _wake(waiters: list[_Waiter]) -> None:
    for waiter in waiters:
        with contextlib.suppress(RuntimeError):  # its loop has closed: the stream is gone
            waiter.loop.call_soon_threadsafe(waiter.event.set)
