"""Suite-wide fixtures: no test may leave an actor running."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest


@pytest.fixture(autouse=True)
def _no_leaked_actors() -> Iterator[None]:
    """Stop every actor after each test, and fail the test if any was left running."""
    yield
    leaked = pykka.ActorRegistry.get_all()
    if leaked:
        pykka.ActorRegistry.stop_all(block=True, timeout=10)
        names = sorted({ref.actor_class.__name__ for ref in leaked})
        pytest.fail(f"{len(leaked)} actors left running after the test: {', '.join(names)}")
