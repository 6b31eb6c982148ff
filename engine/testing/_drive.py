"""Driving an engine on a FakeClock from a test, without sleeping on wall time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from providers import FakeClock, WaitTimeout

__all__ = ["ClockDriver", "advance_until"]


def advance_until(
    clock: FakeClock,
    condition: Callable[[], bool],
    *,
    step: float = 0.25,
    timeout: float = 30.0,
    pause: float = 0.002,
) -> None:
    """Advance ``clock`` by ``step`` at a time until ``condition()`` holds.

    Between steps it yields for ``pause`` real seconds so the actors can react.
    Raises ``WaitTimeout`` after ``timeout`` real seconds: a bound for a broken
    test, never a measure of progress.
    """
    gate = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise WaitTimeout(f"condition not met within {timeout}s (clock at {clock.monotonic()})")
        clock.advance(step)
        gate.wait(pause)


class ClockDriver:
    """Advances a FakeClock in a background thread while a test makes blocking calls.

    ``with ClockDriver(clock, step=0.5): engine.wait(job_id, timeout=10)``
    """

    def __init__(self, clock: FakeClock, *, step: float = 0.25, pause: float = 0.002) -> None:
        self.clock = clock
        self.step = step
        self.pause = pause
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clock-driver", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.clock.advance(self.step)
            self._stop.wait(self.pause)

    def __enter__(self) -> ClockDriver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
