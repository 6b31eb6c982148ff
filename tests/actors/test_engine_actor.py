"""The base of every engine actor: Pykka semantics on a C-implemented inbox."""

from __future__ import annotations

import contextvars
import queue
import threading
import time
import uuid
from typing import Any

import pykka
import pytest

from actors._base import ActorThreads, EngineActor, StopFlag, next_urn


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


# -- ActorThreads: reused threads for short-lived actors -------------------------


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    """True once ``predicate()`` holds (checked on a short timed wait), False after ``timeout``."""
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.005)
    return True


class Once(EngineActor):
    """Records its thread, answers one message, then stops."""

    def __init__(self, threads: ActorThreads, seen: list[threading.Thread]) -> None:
        super().__init__()
        self.threads = threads
        self.seen = seen

    def on_start(self) -> None:
        self.seen.append(threading.current_thread())

    def on_receive(self, message: Any) -> Any:
        self.stop()
        return threading.current_thread().name


def test_actors_started_one_after_another_reuse_one_thread() -> None:
    pool = ActorThreads()
    seen: list[threading.Thread] = []
    try:
        for _ in range(50):
            ref = Once.start(pool, seen)
            name = ref.ask("hi", timeout=10)
            assert name.startswith("Once-")
            assert wait_for(lambda r=ref: not r.is_alive())  # type: ignore[misc]
        assert len(seen) == 50
        assert len({t.ident for t in seen}) <= 2  # the thread of the last one may still be busy
        assert pool.count() <= 2
    finally:
        pool.close()
    assert pool.count() == 0
    assert not any(t.is_alive() for t in seen)


def test_live_actors_each_have_a_thread_and_close_ends_them_all() -> None:
    before = threading.active_count()
    pool = ActorThreads()
    gate = threading.Event()

    class Waiting(EngineActor):
        def __init__(self) -> None:
            super().__init__()
            self.threads = pool

        def on_receive(self, message: Any) -> Any:
            gate.wait(10)
            return threading.get_ident()

    refs = [Waiting.start() for _ in range(30)]
    answers = [ref.ask("who", block=False) for ref in refs]
    assert wait_for(lambda: pool.count() == 30)
    gate.set()
    assert len({a.get(timeout=10) for a in answers}) == 30  # one thread per live actor
    for ref in refs:
        ref.stop()
    pool.close()
    assert pool.count() == 0
    assert wait_for(lambda: threading.active_count() == before)


def test_no_more_than_max_idle_threads_wait_for_work() -> None:
    pool = ActorThreads(max_idle=2, idle_seconds=60)
    gate = threading.Event()
    started = threading.Semaphore(0)
    threads: list[threading.Thread] = []

    def task() -> None:
        threads.append(threading.current_thread())
        started.release()
        gate.wait(10)

    for i in range(10):
        pool.run(f"task-{i}", task)
    for _ in range(10):
        assert started.acquire(timeout=10)
    gate.set()
    assert wait_for(lambda: sum(t.is_alive() for t in threads) == 2)
    assert pool.count() == 2
    assert {t.name for t in threads if t.is_alive()} == {"ActorThreads-idle"}
    pool.close()
    assert not any(t.is_alive() for t in threads)


def test_idle_threads_leave_after_idle_seconds() -> None:
    pool = ActorThreads(idle_seconds=0.01)
    done = threading.Event()
    pool.run("one", done.set)
    assert done.wait(10)
    assert wait_for(lambda: pool.count() == 0)
    pool.close()


def test_every_task_runs_when_threads_time_out_as_they_are_claimed() -> None:
    # Idle timeouts of half a millisecond race the claims of run(): none may be lost.
    pool = ActorThreads(max_idle=4, idle_seconds=0.0005)
    count = 0
    lock = threading.Lock()
    all_ran = threading.Event()

    def task() -> None:
        nonlocal count
        with lock:
            count += 1
            if count == 2000:
                all_ran.set()

    def submit() -> None:
        for i in range(500):
            pool.run(f"t{i}", task)

    submitters = [threading.Thread(target=submit) for _ in range(4)]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join()
    assert all_ran.wait(30), f"only {count} of 2000 tasks ran"
    pool.close()
    assert pool.count() == 0


def test_an_actor_does_not_see_the_context_of_the_one_before_on_its_thread() -> None:
    pool = ActorThreads(max_idle=1)
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    results: list[tuple[int, str]] = []
    done = [threading.Event(), threading.Event()]

    def first() -> None:
        var.set("first")
        results.append((threading.get_ident(), var.get()))
        done[0].set()

    def second() -> None:
        results.append((threading.get_ident(), var.get()))
        done[1].set()

    pool.run("first", first)
    assert done[0].wait(10)
    assert wait_for(lambda: pool._idle == 1)  # the thread is waiting for work again
    pool.run("second", second)
    assert done[1].wait(10)
    pool.close()
    assert results[0][0] == results[1][0]  # the same thread...
    assert results == [(results[0][0], "first"), (results[0][0], "unset")]  # ...a fresh context


def test_a_closed_pool_still_runs_what_it_is_given() -> None:
    pool = ActorThreads()
    pool.close()
    done = threading.Event()
    pool.run("late", done.set)
    assert done.wait(10)


def test_engine_actor_sets_what_pykka_sets_with_a_urn_of_its_own() -> None:
    """``EngineActor.__init__`` stands in for Pykka's: same attributes, no ``uuid4``.

    If a Pykka upgrade gives actors a new field in ``__init__``, this fails
    instead of every actor missing it.
    """

    class Plain(pykka.ThreadingActor):
        pass

    class Ours(EngineActor):
        pass

    plain, ours = Plain(), Ours()
    assert set(vars(ours)) == set(vars(plain))
    assert isinstance(ours.actor_inbox, queue.SimpleQueue)
    assert ours.actor_ref.actor_class is Ours
    assert not ours.actor_stopped.is_set()
    urn = uuid.UUID(ours.actor_urn.removeprefix("urn:uuid:"))  # the shape of a UUID URN
    assert ours.actor_urn == urn.urn


def test_urns_are_unique_across_threads() -> None:
    urns: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        mine = [next_urn() for _ in range(2000)]
        with lock:
            urns.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(urns) == len(set(urns)) == 16000
    refs = [Collector.start(1, threading.Event()) for _ in range(5)]
    try:
        assert len({ref.actor_urn for ref in refs}) == 5
        assert all(pykka.ActorRegistry.get_by_urn(ref.actor_urn) is ref for ref in refs)
    finally:
        for ref in refs:
            ref.stop()


def test_the_stop_flag_behaves_as_an_event_without_one_until_waited_on() -> None:
    """``StopFlag`` replaces Pykka's per-actor Event: set, is_set and wait as an Event
    does them, whichever of set and wait comes first."""
    flag = StopFlag()
    assert not flag.is_set() and flag._event is None
    assert flag.wait(0.01) is False  # a timeout: False, as Event.wait
    waiter_saw: list[bool] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        waiter_saw.append(flag.wait(10))

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait(5)
    deadline = time.monotonic() + 5
    while flag._event is None and time.monotonic() < deadline:
        started.wait(0.001)  # until the waiter made its Event: wait first, then set
    assert flag._event is not None
    flag.set()
    thread.join(5)
    assert waiter_saw == [True] and flag.is_set()
    early = StopFlag()
    early.set()  # set before anyone waits: no Event is ever made
    assert early.wait(0) is True and early._event is None


def test_an_actor_stopped_flag_wakes_a_waiting_stopper() -> None:
    class Quiet(EngineActor):
        pass

    ref = Quiet.start()
    woke: list[bool] = []
    thread = threading.Thread(target=lambda: woke.append(ref.actor_stopped.wait(10)))
    thread.start()
    ref.stop()
    thread.join(10)
    assert woke == [True] and not ref.is_alive()
