"""Replies that are answered exactly once: a second answer is a logged no-op, never a crash.

Pykka's ``ThreadingFuture`` raises ``queue.Full`` when it is set twice. In an
actor that is an exception in the middle of a handler, which used to kill the
supervisor; here every reply the engine hands out is a ``OnceReply``, and the
helpers below also accept a plain ``ThreadingFuture`` (a test's, or an
embedder's) without letting a second answer escape.
"""

from __future__ import annotations

import queue
from typing import Any

import pykka

from providers._log import get_logger

__all__ = ["OnceReply", "answer", "fail", "is_answered"]

log = get_logger("debrid.actors.replies")


class OnceReply(pykka.ThreadingFuture[Any]):
    """A future whose first answer wins; later ones are logged and dropped."""

    def set(self, value: Any | None = None) -> None:
        """Answer with ``value`` unless already answered."""
        try:
            super().set(value)
        except queue.Full:
            log.warning("reply_answered_twice", kind="value")

    def set_exception(self, exc_info: Any = None) -> None:
        """Answer with an exception unless already answered."""
        try:
            super().set_exception(exc_info)
        except queue.Full:
            log.warning("reply_answered_twice", kind="exception")


def answer(reply: pykka.ThreadingFuture[Any], value: Any) -> None:
    """Set ``value`` on ``reply`` once; a second answer is logged, not raised."""
    try:
        reply.set(value)
    except queue.Full:
        log.warning("reply_answered_twice", kind="value")


def fail(reply: pykka.ThreadingFuture[Any], error: BaseException) -> None:
    """Answer ``reply`` with ``error`` once; a second answer is logged, not raised."""
    try:
        reply.set_exception(exc_info=(type(error), error, None))
    except queue.Full:
        log.warning("reply_answered_twice", kind="exception")


def is_answered(reply: pykka.ThreadingFuture[Any]) -> bool:
    """True once ``reply`` holds a value or an exception."""
    try:
        reply.get(timeout=0)
    except pykka.Timeout:
        return False
    except Exception:  # noqa: BLE001 - an exception was the answer
        return True
    return True
