"""The base of every engine actor: Pykka semantics on a C-implemented inbox."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pykka
import pytest

from actors._base import EngineActor


class Collector(EngineActor):
    def __init__(self, expected: int, done: threading.Event) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.expected = expected
        self.done = done

    def on_receive(self, message: Any) -> Any:
        if message == "ask":
            return len(self.seen)
        self.seen.append(message)
        if len(self.seen) == self.expected:
            self.done.set()
        return None


def test_messages_from_many_threads_arrive_each_in_its_sender_order() -> None:
    done = threading.Event()
    ref = Collector.start(4 * 500, done)
    try:
        assert isinstance(ref.actor_inbox, queue.SimpleQueue)

        def send(sender: int) -> None:
            for i in range(500):
                ref.tell((sender, i))

        senders = [threading.Thread(target=send, args=(s,)) for s in range(4)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        assert done.wait(10)
        assert ref.ask("ask", timeout=10) == 2000
        seen = ref.proxy().seen.get(timeout=10)
        for sender in range(4):
            assert [i for s, i in seen if s == sender] == list(range(500))
    finally:
        ref.stop()


def test_messages_queued_behind_a_stop_are_answered_with_actor_dead() -> None:
    # Pykka drains the inbox at teardown (empty() and get() on the SimpleQueue).
    gate = threading.Event()

    class Slow(EngineActor):
        def on_receive(self, message: Any) -> Any:
            if message == "block":
                gate.wait(10)
            return message

    ref = Slow.start()
    ref.tell("block")
    stopped = ref.stop(block=False)
    late = ref.ask("late", block=False)
    gate.set()
    stopped.get(timeout=10)
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=10)
