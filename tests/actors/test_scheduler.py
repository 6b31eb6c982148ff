"""The scheduler delivers delayed messages on the injected clock, in order, never early."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from actors import Scheduler
from engine.testing import advance_until
from providers import FakeClock


class Recorder(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, got: list[Any], changed: threading.Event) -> None:
        super().__init__()
        self.got = got
        self.changed = changed

    def on_receive(self, message: Any) -> None:
        self.got.append(message)
        self.changed.set()


def test_messages_arrive_in_due_order_and_not_before_their_time(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    got: list[Any] = []
    changed = threading.Event()
    ref = Recorder.start(got, changed)
    try:
        scheduler.schedule(30, ref, "late")
        scheduler.schedule(10, ref, "early")
        scheduler.schedule(20, ref, "middle")
        clock.advance(9.9)
        assert not changed.wait(0.1)
        assert got == []
        advance_until(clock, lambda: len(got) == 3, step=1.0)
        assert got == ["early", "middle", "late"]
    finally:
        ref.stop()


def test_cancelled_timer_is_never_delivered(clock: FakeClock, scheduler: Scheduler) -> None:
    got: list[Any] = []
    changed = threading.Event()
    ref = Recorder.start(got, changed)
    try:
        handle = scheduler.schedule(5, ref, "cancelled")
        scheduler.schedule(6, ref, "kept")
        handle.cancel()
        advance_until(clock, lambda: got == ["kept"], step=1.0)
        assert got == ["kept"]
    finally:
        ref.stop()


def test_delivery_to_a_dead_actor_is_dropped_quietly(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    got: list[Any] = []
    changed = threading.Event()
    dead = Recorder.start([], threading.Event())
    dead.stop()
    alive = Recorder.start(got, changed)
    try:
        scheduler.schedule(1, dead, "lost")
        scheduler.schedule(2, alive, "after")
        advance_until(clock, lambda: got == ["after"], step=1.0)
    finally:
        alive.stop()


def test_schedule_after_stop_is_ignored(clock: FakeClock) -> None:
    scheduler = Scheduler(clock)
    scheduler.start()
    scheduler.stop()
    ref = Recorder.start([], threading.Event())
    try:
        assert scheduler.schedule(1, ref, "x").cancelled
        assert scheduler.pending() == 0
    finally:
        ref.stop()


def test_cancelled_timers_do_not_pile_up_in_the_heap(
    clock: FakeClock, scheduler: Scheduler
) -> None:
    ref = Recorder.start([], threading.Event())
    try:
        handles = [scheduler.schedule(3600, ref, i) for i in range(5000)]
        for handle in handles:
            handle.cancel()
        # Hours-long stall timers of finished jobs are dropped, not kept until due.
        assert scheduler.pending() < 2048
    finally:
        ref.stop()


def test_settled_says_when_everything_due_has_been_told() -> None:
    clock = FakeClock()
    scheduler = Scheduler(clock)
    told = threading.Event()

    class Target:
        def tell(self, message: object) -> None:
            told.set()

    assert scheduler.settled()
    scheduler.schedule(5.0, Target(), "wake")  # type: ignore[arg-type]
    assert scheduler.settled()  # not due yet
    clock.advance(5.0)
    assert not scheduler.settled()  # due, the thread has not run
    scheduler.start()
    try:
        assert told.wait(5)
        for _ in range(100_000):
            if scheduler.settled():
                break
        assert scheduler.settled()
    finally:
        scheduler.stop()
