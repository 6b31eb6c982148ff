"""The Pykka actor type every actor of the engine is built on."""

from __future__ import annotations

import queue
from typing import Any

import pykka

__all__ = ["EngineActor"]


class EngineActor(pykka.ThreadingActor):
    """A ``ThreadingActor`` on a daemon thread whose inbox is a ``queue.SimpleQueue``.

    Pykka's inbox is a ``queue.Queue``: a lock, three conditions and a deque,
    written in Python, built for every actor and locked twice for every
    message. A job actor lives for a few messages, so that cost is paid once per
    job; ``SimpleQueue`` is implemented in C and gives Pykka all it asks of an
    inbox (``put``, ``get``, ``empty``), with the same FIFO order. This is the
    extension point Pykka provides for new actor types. Measured by
    ``tests/benchmarks/bench_engine.py`` (see the README).
    """

    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        return queue.SimpleQueue()
