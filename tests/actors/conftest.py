"""Fixtures for the provider actor's tests: a FakeClock, a scheduler on it, a harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_provider_actor import Harness, RecordingScheduler

from providers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scheduler(clock: FakeClock) -> Iterator[RecordingScheduler]:
    scheduler = RecordingScheduler(clock)
    scheduler.start()
    yield scheduler
    scheduler.stop()


@pytest.fixture
def h(clock: FakeClock, scheduler: RecordingScheduler) -> Iterator[Harness]:
    harness = Harness(clock, scheduler)
    yield harness
    harness.stop()
