"""Fixtures shared by the provider tests: a FakeClock, fake servers, and providers bound to them.

Each module starts the fake it needs as its own ``fake`` fixture (TorBox or Real-Debrid, with
its knobs) through ``serve``; ``make`` and ``provider`` build providers bound to that fake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from engine.testing._fakehttp import FakeServer
from engine.testing.realdebrid import FakeRealDebrid
from engine.testing.torbox import FakeTorBox
from providers import FakeClock
from providers.realdebrid import RealDebridProvider
from providers.torbox import TorBoxProvider

S = TypeVar("S", bound=FakeServer)
BoundProvider = TorBoxProvider | RealDebridProvider


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def serve() -> Iterator[Callable[[S], S]]:
    """Start a fake server for the test (``serve(FakeTorBox(clock=clock))``); stopped afterwards."""
    running: list[FakeServer] = []

    def start(server: S) -> S:
        server.start()
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def make(fake: FakeTorBox | FakeRealDebrid) -> Iterator[Callable[..., BoundProvider]]:
    """Providers bound to the fake (several make a crash and a restart); closed afterwards."""
    made: list[BoundProvider] = []

    def build(**options: Any) -> BoundProvider:
        made.append(fake.make_provider(**options))
        return made[-1]

    yield build
    for provider in made:
        provider.close()


@pytest.fixture
def provider(
    fake: FakeTorBox | FakeRealDebrid, make: Callable[..., BoundProvider], clock: FakeClock
) -> BoundProvider:
    """A provider bound to the fake, without buckets: these tests are about the API, not pacing.

    FakeTorBox's providers get no buckets unless asked for; FakeRealDebrid's must be told.
    """
    if isinstance(fake, FakeRealDebrid):
        return make(clock=clock, limited=False)
    return make()
