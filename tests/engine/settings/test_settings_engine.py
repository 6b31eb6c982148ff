"""Settings.engine_config: an EngineConfig that starts an engine as the settings say."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine import Engine, EngineConfig, JobStatus
from engine._secrets import FileSecretStore
from engine.settings import load_settings
from providers import MockProvider, ProviderRegistry

WriteConfig = Callable[[str], Path]  # the write_config fixture (conftest.py)


def test_engine_config_carries_the_settings(write_config: WriteConfig, tmp_path: Path) -> None:
    path = write_config(
        """
        bandwidth_bps = 5000000
        poll_interval = 1.5
        [providers.mock]
        step_seconds = 0.1
        [providers.realdebrid]
        poll_interval = 7
        base_url = "http://127.0.0.1:1/rest/1.0"
        """
    )
    settings = load_settings(env={"DEBRID_CONFIG": str(path),
                                  "DEBRID_DATABASE": str(tmp_path / "jobs.db")})
    config = settings.engine_config()
    assert isinstance(config, EngineConfig)
    assert config.database == str(tmp_path / "jobs.db")
    assert config.bandwidth_bps == 5_000_000.0
    assert config.default_poll_interval == 1.5
    assert config.providers == {
        "mock": {"poll_interval": 1.5, "step_seconds": 0.1},
        "realdebrid": {"poll_interval": 7.0, "base_url": "http://127.0.0.1:1/rest/1.0"},
    }
    assert isinstance(config.secrets, FileSecretStore)
    assert config.secrets.path == path.parent / "secrets.json"
    config.providers["mock"]["step_seconds"] = 9.0  # the config's own copy
    assert settings.providers["mock"]["step_seconds"] == 0.1


def test_engine_config_overrides_replace_fields() -> None:
    config = load_settings(env={}).engine_config(database=":memory:", seed=7)
    assert (config.database, config.seed) == (":memory:", 7)


def test_the_registry_names_are_accepted_and_handed_on(write_config: WriteConfig) -> None:
    registry = ProviderRegistry()
    registry.register_provider("mine", MockProvider)
    path = write_config("[providers.mine]\nstep_seconds = 0.5\n")
    settings = load_settings(env={"DEBRID_CONFIG": str(path)}, registry=registry)
    assert settings.engine_config().registry is registry


def test_an_engine_from_the_settings_starts_the_mock_with_the_cap(tmp_path: Path) -> None:
    settings = load_settings(env={"DEBRID_DATABASE": str(tmp_path / "jobs.db"),
                                  "DEBRID_BANDWIDTH_BPS": "250000"})
    with Engine(settings.engine_config()) as engine:
        assert engine.provider_names() == ("mock",)
        job = engine.create_job("mock", {"magnet": "magnet:?xt=urn:btih:" + "ab" * 20})
        assert job.status is JobStatus.QUEUED
        limits = engine.set_bandwidth(job_id=job.id, bps=None)  # changes nothing global
        assert limits["global_bps"] == 250_000.0
    assert (tmp_path / "jobs.db").exists()
