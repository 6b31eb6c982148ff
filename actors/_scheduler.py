"""One timer thread that delivers delayed messages to actors on an injectable clock.

Actors never sleep: a retry delay, a poll interval or a stall timeout is a
message scheduled here, delivered with ``tell`` when the clock reaches its time.
With a ``FakeClock`` the thread wakes on every ``advance``, so a test runs hours
of provider behaviour in milliseconds.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import Any

import pykka

from providers import Clock, RealClock
from providers._log import get_logger

__all__ = ["Scheduler", "TimerHandle"]

log = get_logger("debrid.actors.scheduler")


class TimerHandle:
    """A scheduled delivery; ``cancel()`` stops it if it has not fired yet."""

    __slots__ = ("_scheduler", "cancelled", "due")

    def __init__(self, due: float, scheduler: Scheduler | None = None) -> None:
        self.due = due
        self.cancelled = False
        self._scheduler = scheduler

    def cancel(self) -> None:
        """Do not deliver (no effect once delivered)."""
        if not self.cancelled:
            self.cancelled = True
            if self._scheduler is not None:
                self._scheduler._cancelled_one()


class Scheduler:
    """Delivers ``message`` to ``target`` after ``delay`` seconds of clock time."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or RealClock()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, TimerHandle, pykka.ActorRef[Any], Any]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._cancelled = 0
        #: Deliveries taken off the heap and not yet told (see ``settled``).
        self._delivering = 0
        self._thread = threading.Thread(target=self._run, name="debrid-scheduler", daemon=True)

    def start(self) -> None:
        """Start the timer thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer thread; pending deliveries are dropped."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(10)

    def schedule(self, delay: float, target: pykka.ActorRef[Any], message: Any) -> TimerHandle:
        """Deliver ``message`` to ``target`` after ``delay`` seconds (0: as soon as possible)."""
        due = self.clock.monotonic() + max(0.0, delay)
        handle = TimerHandle(due, self)
        with self._cond:
            if self._stopped:
                handle.cancelled = True
                return handle
            heapq.heappush(self._heap, (due, next(self._seq), handle, target, message))
            if self._heap[0][2] is handle:
                self._cond.notify_all()
        return handle

    def _cancelled_one(self) -> None:
        with self._cond:
            self._cancelled += 1
            # Cancelled timers stay in the heap until their time; when they are
            # most of it, drop them at once (stall timers live for hours).
            if self._cancelled > 1024 and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def settled(self) -> bool:
        """True when nothing due by the clock's time now is still to be told.

        For tests that move a FakeClock: after ``advance``, what fell due is told
        from this thread, a moment later; a round trip through an actor's mailbox
        proves nothing until this holds.
        """
        with self._cond:
            if self._delivering:
                return False
            return not (self._heap and self._heap[0][0] <= self.clock.monotonic())

    def pending(self) -> int:
        """How many deliveries are waiting (cancelled ones included until their time)."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            due_now: list[tuple[pykka.ActorRef[Any], Any]] = []
            with self._cond:
                if self._stopped:
                    return
                now = self.clock.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, handle, target, message = heapq.heappop(self._heap)
                    if handle.cancelled:
                        self._cancelled = max(0, self._cancelled - 1)
                    else:
                        due_now.append((target, message))
                if not due_now:
                    deadline = self._heap[0][0] if self._heap else None
                    self.clock.wait(self._cond, deadline)
                    continue
                self._delivering = len(due_now)
            for target, message in due_now:
                try:
                    target.tell(message)
                except pykka.ActorDeadError:
                    # The actor finished (job done, engine stopping): nothing to deliver to.
                    log.debug("timer_target_dead", message=type(message).__name__)
            with self._cond:
                self._delivering = 0
