"""Restart intensity, OTP style: at most ``max_restarts`` restarts in ``window`` seconds."""

from __future__ import annotations

from collections import deque

from providers import Clock

__all__ = ["RestartIntensity"]


class RestartIntensity:
    """Counts restarts per child; past the limit a child is given up on (or paused).

    Histories are pruned as they expire and forgotten with their child
    (``forget``), so a daemon that restarts a few children a day for months
    keeps only what falls within the window.
    """

    def __init__(self, max_restarts: int, window: float, clock: Clock) -> None:
        self.max_restarts = max_restarts
        self.window = window
        self.clock = clock
        self._history: dict[str, deque[float]] = {}
        self._records = 0

    def record(self, key: str) -> bool:
        """Count one restart of ``key``; True when that is one too many."""
        now = self.clock.monotonic()
        history = self._history.setdefault(key, deque())
        self._expire(history, now)
        history.append(now)
        self._records += 1
        if self._records % 256 == 0:
            self._sweep(now)
        return len(history) > self.max_restarts

    def forget(self, key: str) -> None:
        """``key`` is gone (its job finished): drop its history."""
        self._history.pop(key, None)

    def count(self, key: str) -> int:
        """Restarts of ``key`` within the window."""
        history = self._history.get(key)
        if history is None:
            return 0
        self._expire(history, self.clock.monotonic())
        return len(history)

    def __len__(self) -> int:
        return len(self._history)

    def _expire(self, history: deque[float], now: float) -> None:
        while history and history[0] <= now - self.window:
            history.popleft()

    def _sweep(self, now: float) -> None:
        for key in [k for k, h in self._history.items() if not h or h[-1] <= now - self.window]:
            del self._history[key]
