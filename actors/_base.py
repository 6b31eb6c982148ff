"""The Pykka actor type every actor of the engine is built on, and its reusable threads."""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pykka

from actors._replies import fail
from providers import EngineNotRunning

__all__ = ["ActorThreads", "EngineActor", "replies_of"]

_Task = tuple[str, Callable[[], None]]


class ActorThreads:
    """Threads that run short-lived actors' loops, one actor at a time each, and are reused.

    Pykka gives every actor a thread of its own for its whole life; that stays
    true here. What changes is where the thread comes from: a job actor lives
    for a few messages, and making and ending an OS thread for each (a Python
    ``Thread`` with its events, ``clone``, a fresh stack, the wait for it to
    start) cost more than everything the actor does. When an actor's loop ends,
    its thread waits up to ``idle_seconds`` for the next actor to run; at most
    ``max_idle`` threads wait at once, so a burst leaves no crowd behind.

    Each actor runs in a fresh ``contextvars`` context and under a thread name of
    its own, so nothing of one actor is seen by the next on the same thread.
    """

    def __init__(self, *, max_idle: int = 64, idle_seconds: float = 10.0) -> None:
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Workers waiting for a task that no start() has claimed yet. A start()
        # that finds one claims it and queues its task; so the waiting workers
        # are always the unclaimed ones plus one per queued task.
        self._idle = 0
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._threads: set[threading.Thread] = set()
        self._closed = False

    def run(self, name: str, loop: Callable[[], None]) -> None:
        """Run ``loop`` on a waiting thread, or on a new one when none waits."""
        with self._lock:
            if self._idle > 0 and not self._closed:
                self._idle -= 1
                self._tasks.put((name, loop))
                return
            thread = threading.Thread(target=self._work, args=((name, loop),), name=name)
            thread.daemon = True
            if not self._closed:
                self._threads.add(thread)
        thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Let the waiting threads end, and wait (up to ``timeout``) for the busy ones."""
        with self._lock:
            self._closed = True
            leaving, self._idle = self._idle, 0
            threads = list(self._threads)
        for _ in range(leaving):
            self._tasks.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def count(self) -> int:
        """How many threads this pool has now (busy or waiting)."""
        with self._lock:
            return len(self._threads)

    def _work(self, first: _Task) -> None:
        me = threading.current_thread()
        task: _Task | None = first
        try:
            while task is not None:
                name, loop = task
                me.name = name
                contextvars.Context().run(loop)
                me.name = "ActorThreads-idle"  # not the name of an actor that has ended
                task = self._next()
        finally:
            with self._lock:
                self._threads.discard(me)

    def _next(self) -> _Task | None:
        with self._lock:
            if self._closed or self._idle >= self._max_idle:
                return None
            self._idle += 1
        try:
            return self._tasks.get(timeout=self._idle_seconds)
        except queue.Empty:
            with self._lock:
                if self._idle > 0:  # nobody counted on this thread: it may go
                    self._idle -= 1
                    return None
            # A start() claimed this thread just as it timed out: its task is queued.
            return self._tasks.get()


# The URNs of this process's actors: a random prefix once, then a counter (see
# ``EngineActor.__init__``). ``next()`` on a count is atomic under the GIL.
_URN_PREFIX = uuid.uuid4().hex[:20]
_URN_SERIAL = itertools.count(1)


def next_urn() -> str:
    """A URN in the shape of a UUID one, unique within this process, for no system call."""
    serial = next(_URN_SERIAL) & 0xFFFF_FFFF_FFFF
    p = _URN_PREFIX
    return f"urn:uuid:{p[:8]}-{p[8:12]}-{p[12:16]}-{p[16:20]}-{serial:012x}"


class StopFlag:
    """What Pykka and we ask of an actor's ``actor_stopped``: ``threading.Event``'s
    ``set``, ``is_set`` and ``wait``, with no Condition until somebody waits.

    Pykka makes an Event per actor, that is a Condition, its lock and a deque of
    waiters, for a flag that is set once and read in the actor's loop; a job
    actor lives for a few messages, so that was paid once per job. Nearly
    nobody waits on it (a stop with a deadline, tests): the first waiter makes
    the Event, under one lock shared by all flags (taken only by ``set`` and
    ``wait``, a few microseconds each).
    """

    __slots__ = ("_event", "_flag")
    _making = threading.Lock()

    def __init__(self) -> None:
        self._flag = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        """True once set."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake whoever waits."""
        with self._making:
            self._flag = True
            event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until set, at most ``timeout`` seconds; True when set."""
        with self._making:
            if self._flag:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


class EngineActor(pykka.ThreadingActor):
    """A ``ThreadingActor`` on a daemon thread whose inbox is a ``queue.SimpleQueue``.

    Pykka's inbox is a ``queue.Queue``: a lock, three conditions and a deque,
    written in Python, built for every actor and locked twice for every
    message. A job actor lives for a few messages, so that cost is paid once per
    job; ``SimpleQueue`` is implemented in C and gives Pykka all it asks of an
    inbox (``put``, ``get``, ``empty``), with the same FIFO order. This is the
    extension point Pykka provides for new actor types. Measured by
    ``tests/benchmarks/bench_engine.py`` (see the README).

    An actor given ``threads`` (an ``ActorThreads``) runs its loop on one of
    those reusable threads instead of a new one, through Pykka's other extension
    point for actor types, ``_start_actor_loop``.
    """

    use_daemon_thread = True
    #: Where this actor's loop runs; None for a thread of its own, as Pykka does.
    threads: ActorThreads | None = None

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        """What ``pykka.Actor.__init__`` does, but for the URN.

        Pykka names each actor with ``uuid4()``, that is ``os.urandom``, a system
        call that lets go of the GIL: the supervisor, which starts every job
        actor, then waits for another thread to hand the GIL back, once per job
        (about a third of its time in ``bench_engine.py``). ``next_urn`` is as
        unique within the process, which is all Pykka's registry needs.
        ``tests/actors/test_engine_actor.py`` checks that this sets what Pykka's own
        ``__init__`` sets, so a Pykka upgrade that adds a field is caught.
        """
        self.actor_urn = next_urn()
        self.actor_inbox = self._create_actor_inbox()
        self.actor_stopped = StopFlag()  # type: ignore[assignment]  # an Event's interface
        self._actor_ref = pykka.ActorRef(self)

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        return queue.SimpleQueue()

    def _start_actor_loop(self) -> None:
        if self.threads is None:
            super()._start_actor_loop()
            return
        self.threads.run(f"{type(self).__name__}-{self.actor_urn[-12:]}", self._actor_loop)

    def _actor_loop_teardown(self) -> None:
        # Messages still in the inbox when the actor stops (or dies) may carry
        # replies of their own (they were told, not asked): answer them rather
        # than leave their callers to time out. Then what Pykka does: asks get
        # ActorDeadError, a stop request its answer.
        gone = EngineNotRunning(f"{type(self).__name__} stopped before handling this request")
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()
            message = envelope.message
            for reply in replies_of(message):
                fail(reply, gone)
            if envelope.reply_to is None:
                continue
            if isinstance(message, pykka.messages._ActorStop):
                envelope.reply_to.set(None)
            else:
                dead = pykka.ActorDeadError(f"{self.actor_ref} stopped before handling the message")
                envelope.reply_to.set_exception(exc_info=(pykka.ActorDeadError, dead, None))


def replies_of(message: Any) -> tuple[pykka.ThreadingFuture[Any], ...]:
    """The replies a told message carries (``reply``, or ``replies``), if any."""
    reply = getattr(message, "reply", None)
    if isinstance(reply, pykka.ThreadingFuture):
        return (reply,)
    replies = getattr(message, "replies", None)
    if isinstance(replies, tuple):
        return tuple(r for r in replies if isinstance(r, pykka.ThreadingFuture))
    return ()
