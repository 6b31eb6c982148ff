"""EngineConfig: where the mock keeps its remote side unless told otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import magnet

from engine import Engine, EngineConfig, JobStatus
from engine.testing import ClockDriver, advance_until
from providers import FakeClock, MockProvider, ProviderRegistry, default_registry


@pytest.fixture
def built() -> Iterator[list[MockProvider]]:
    """Mocks built by a test, closed afterwards."""
    mocks: list[MockProvider] = []
    yield mocks
    for mock in mocks:
        mock.close()


def build_mock(config: EngineConfig, built: list[MockProvider], name: str = "mock") -> MockProvider:
    registry = config.registry or default_registry()
    provider, _ = config.build_providers(registry)[name]
    assert isinstance(provider, MockProvider)
    built.append(provider)
    return provider


def test_a_mock_beside_a_file_database_gets_a_state_file_next_to_it(
    tmp_path: Path, built: list[MockProvider]
) -> None:
    config = EngineConfig(database=tmp_path / "jobs.db")
    mock = build_mock(config, built)
    assert mock.state_file == tmp_path / "jobs.db.mock-mock.sqlite3"
    assert mock.state_file.exists()


def test_the_default_state_file_is_named_after_the_configured_provider(
    tmp_path: Path, built: list[MockProvider]
) -> None:
    registry = ProviderRegistry()
    registry.register_provider("slow-mock", MockProvider)
    config = EngineConfig(
        database=f"sqlite:///{tmp_path}/jobs.db",
        registry=registry,
        providers={"slow-mock": {"step_seconds": 60.0}},
    )
    mock = build_mock(config, built, "slow-mock")
    assert mock.state_file == tmp_path / "jobs.db.mock-slow-mock.sqlite3"


@pytest.mark.parametrize(
    "database", [":memory:", "sqlite:///:memory:", "postgresql://user@localhost:5432/jobs"]
)
def test_a_mock_beside_a_database_without_a_file_stays_in_memory(
    database: str, built: list[MockProvider]
) -> None:
    config = EngineConfig(database=database)
    assert config.mock_state_file("mock") is None
    assert build_mock(config, built).state_file is None


@pytest.mark.parametrize(
    ("options", "expected"),
    [({"state_file": None}, None), ({"state_file": "mine.sqlite3"}, "mine.sqlite3")],
)
def test_a_state_file_option_given_is_kept(
    tmp_path: Path,
    built: list[MockProvider],
    options: dict[str, Any],
    expected: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = EngineConfig(database=tmp_path / "jobs.db", providers={"mock": options})
    mock = build_mock(config, built)
    assert mock.state_file == (Path(expected) if expected else None)


def test_a_mock_registered_as_an_instance_is_left_as_it_is(tmp_path: Path) -> None:
    mock = MockProvider(1.0)
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    config = EngineConfig(database=tmp_path / "jobs.db", registry=registry, providers={"mock": {}})
    assert config.build_providers(registry)["mock"][0] is mock
    assert mock.state_file is None


def test_the_default_mock_finishes_its_jobs_after_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    config = EngineConfig(
        database=tmp_path / "jobs.db",
        clock=clock,
        providers={"mock": {"step_seconds": 5.0, "poll_interval": 0.5}},
        stall_timeouts={},
    )
    with Engine(config) as first:
        jobs = [first.create_job("mock", magnet(i)) for i in range(5)]
        advance_until(clock, lambda: all(first.get_job(j.id).remote_id for j in jobs), step=0.5)
        remote_ids = [first.get_job(j.id).remote_id for j in jobs]
    # A new process: a new mock on the same default state file knows every remote id.
    with Engine(config) as second, ClockDriver(clock, step=0.5):
        done = [second.wait(j.id, timeout=60) for j in jobs]
    assert [j.status for j in done] == [JobStatus.COMPLETED] * 5
    assert [j.remote_id for j in done] == remote_ids
    after = MockProvider(5.0, state_file=tmp_path / "jobs.db.mock-mock.sqlite3")
    try:
        assert sorted(after.submissions().values()) == [1] * 5
    finally:
        after.close()
