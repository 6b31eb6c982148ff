"""Stable addresses for actors that their parent may restart."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from actors._messages import Ref

__all__ = ["ProviderDown", "ProviderHandle"]


class ProviderDown(pykka.ActorDeadError):
    """The provider actor is down; ``generation`` is the one the message did not reach.

    Read together with the failure, under the handle's lock: a job that read it
    afterwards could see the new actor's generation and never re-send.
    """

    def __init__(self, message: str, generation: int) -> None:
        super().__init__(message)
        self.generation = generation


class ProviderHandle:
    """A stable address for a provider actor that the supervisor may restart.

    Job actors hold the handle, not the actor: after a restart the supervisor
    points ``ref`` at the new actor (``None`` while it is down) and bumps
    ``generation``. A job remembers the generation it sent a request to, so a
    ``ProviderRestarted(generation)`` makes it re-send only what the dead actor
    took with it, never what the new one already has.
    """

    __slots__ = ("_lock", "generation", "last", "ref")

    def __init__(self, ref: Ref | None, generation: int = 0) -> None:
        self._lock = threading.Lock()
        self.ref = ref
        #: The latest actor it pointed at, kept while it is down: whoever closes the
        #: provider waits for that actor to leave its last call first.
        self.last = ref
        self.generation = generation

    def point_at(self, ref: Ref | None) -> int:
        """Send to ``ref`` from now on (None: down); returns the new generation."""
        with self._lock:
            self.generation += 1
            self.ref = ref
            if ref is not None:
                self.last = ref
            return self.generation

    def tell(self, message: Any) -> int:
        """Send to the current actor; returns its generation. ``ActorDeadError`` while down.

        The ref and its generation are read together, so a job never believes it
        reached the new actor when its message went to the old one.
        """
        with self._lock:
            ref, generation = self.ref, self.generation
            if ref is None:
                raise ProviderDown("provider actor is restarting", generation)
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                raise ProviderDown("provider actor is gone", generation) from None
            return generation
