"""Fixtures for engine tests: a FakeClock and engines on real SQLite files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import MakeEngine, wrap_stores

from engine import Engine, EngineConfig
from providers import FakeClock, MockProvider, ProviderRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from faulty_store import FaultyStore


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only the test moves."""
    return FakeClock()


@pytest.fixture
def make_engine(tmp_path: Path, clock: FakeClock) -> Iterator[MakeEngine]:
    """Start an engine on ``tmp_path/jobs.db`` with the given mock (or providers).

    ``make_engine(mock=MockProvider(...), **config)`` registers that instance as
    ``mock``; the engine is stopped at the end of the test.
    """
    started: list[Engine] = []

    def make(
        mock: MockProvider | None = None,
        *,
        poll_interval: float = 0.5,
        database: Any = None,
        **config: Any,
    ) -> Engine:
        registry = ProviderRegistry()
        registry.register_provider("mock", mock if mock is not None else MockProvider(1.0))
        # Stall timeouts only where a test asks for them: the clock driver may run
        # fake hours ahead of a slow machine.
        config.setdefault("stall_timeouts", {})
        engine = Engine(
            EngineConfig(
                database=database or tmp_path / "jobs.db",
                providers={"mock": {"poll_interval": poll_interval}},
                registry=registry,
                clock=clock,
                **config,
            )
        )
        engine.start()
        started.append(engine)
        return engine

    yield make
    for engine in started:
        engine.stop()


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> list[FaultyStore]:
    """Every engine started in the test opens its store wrapped in a FaultyStore."""
    return wrap_stores(monkeypatch, FaultyStore)
