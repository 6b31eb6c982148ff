"""load_settings: the file, then the environment, then flags, and where each value came from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.settings import ApiSettings, ConfigError, NotifySettings, load_settings

WriteConfig = Callable[[str], Path]  # the write_config fixture (conftest.py)


def test_no_file_at_the_default_place_gives_the_defaults(default_config_path: Path) -> None:
    settings = load_settings(env={})
    assert settings.config_path == default_config_path
    assert settings.config_dir == default_config_path.parent
    assert settings.api == ApiSettings()
    assert settings.notify == NotifySettings()
    assert settings.providers == {"mock": {"step_seconds": 2.0}}
    assert settings.database is None
    assert settings.bandwidth_bps is None
    assert settings.poll_interval == 2.0
    assert (settings.log_format, settings.log_level) == ("console", "info")
    assert settings.download_roots == (settings.download_dir,)
    assert settings.sources["config"] == str(default_config_path)
    assert {settings.sources[key] for key in settings.sources if key != "config"} == {"default"}
    assert not default_config_path.parent.exists()  # loading creates nothing


def test_file_then_env_then_flag_each_key_says_where_it_came_from(
    write_config: WriteConfig,
) -> None:
    path = write_config(
        """
        database = "from-file.db"
        poll_interval = 3.0
        log_level = "debug"
        bandwidth_bps = 1000
        [api]
        port = 9001
        auth = true
        """
    )
    env = {
        "DEBRID_CONFIG": str(path),
        "DEBRID_API_PORT": "9002",
        "DEBRID_LOG_LEVEL": "warning",
        "DEBRID_DATABASE": "/env/jobs.db",
    }
    flags = {"api.port": (9003, "--port"), "database": ("/flag/jobs.db", "--database")}
    settings = load_settings(flags, env)

    assert settings.api.port == 9003
    assert settings.sources["api.port"] == "flag --port"
    assert settings.database == "/flag/jobs.db"
    assert settings.sources["database"] == "flag --database"
    assert settings.log_level == "warning"
    assert settings.sources["log_level"] == "env DEBRID_LOG_LEVEL"
    assert settings.poll_interval == 3.0
    assert settings.sources["poll_interval"] == str(path)
    assert settings.bandwidth_bps == 1000.0
    assert settings.sources["bandwidth_bps"] == str(path)
    assert settings.sources["api.auth"] == str(path)
    assert settings.sources["api.host"] == "default"
    assert settings.sources["config"] == "env DEBRID_CONFIG"

    without_flags = load_settings(env=env)
    assert without_flags.api.port == 9002
    assert without_flags.sources["api.port"] == "env DEBRID_API_PORT"
    assert without_flags.database == "/env/jobs.db"

    file_only = load_settings(env={"DEBRID_CONFIG": str(path)})
    assert file_only.api.port == 9001
    assert file_only.database == str(path.parent / "from-file.db")  # relative to the file


def test_the_config_flag_beats_the_config_variable(write_config: WriteConfig,
                                                   tmp_path: Path) -> None:
    path = write_config("log_format = 'json'\n")
    settings = load_settings({"config": (path, "--config")},
                             {"DEBRID_CONFIG": str(tmp_path / "absent.toml")})
    assert settings.log_format == "json"
    assert settings.config_path == path
    assert settings.sources["config"] == "flag --config"


@pytest.mark.parametrize(
    ("flags", "env", "source"),
    [
        ({"config": ("{missing}", "--config")}, {}, "flag --config"),
        ({}, {"DEBRID_CONFIG": "{missing}"}, "env DEBRID_CONFIG"),
    ],
)
def test_a_missing_file_named_by_flag_or_env_is_an_error(
    tmp_path: Path, flags: dict[str, tuple[str, str]], env: dict[str, str], source: str
) -> None:
    missing = str(tmp_path / "nowhere" / "config.toml")
    flags = {k: (v.format(missing=missing), f) for k, (v, f) in flags.items()}
    env = {k: v.format(missing=missing) for k, v in env.items()}
    with pytest.raises(ConfigError) as caught:
        load_settings(flags, env)
    assert caught.value.source == source
    assert caught.value.key == caught.value.field == "config"
    assert missing in str(caught.value)


def test_flags_that_were_not_given_are_ignored_and_text_flags_are_parsed(
    write_config: WriteConfig,
) -> None:
    path = write_config("[api]\nport = 9001\n")
    settings = load_settings(
        {"api.port": (None, "--port"), "api.host": ("::1", "--host"),
         "poll_interval": ("0.5", "--poll-interval"), "download_dir": (path.parent, "--dir")},
        {"DEBRID_CONFIG": str(path)},
    )
    assert settings.api.port == 9001
    assert settings.api.host == "::1"
    assert settings.poll_interval == 0.5
    assert settings.download_dir == path.parent


def test_paths_expand_the_home_directory(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_config('download_dir = "~/dl"\ndownload_roots = ["~/media", "rel"]\n')
    settings = load_settings(env={"DEBRID_CONFIG": str(path), "DEBRID_DATABASE": "~/jobs.db"})
    assert settings.download_dir == tmp_path / "home" / "dl"
    assert settings.download_roots == (
        tmp_path / "home" / "dl", tmp_path / "home" / "media", path.parent / "rel",
    )
    assert settings.database == str(tmp_path / "home" / "jobs.db")
    flagged = load_settings({"config": ("~/../conf/config.toml", "--config")}, {})
    assert flagged.config_path.resolve() == path.resolve()


def test_download_dir_is_always_the_first_download_root(write_config: WriteConfig) -> None:
    path = write_config('download_dir = "/d"\ndownload_roots = ["/srv/a", "/d", "/srv/b"]\n')
    settings = load_settings(env={"DEBRID_CONFIG": str(path)})
    assert settings.download_roots == (Path("/d"), Path("/srv/a"), Path("/srv/b"))


def test_a_bandwidth_of_zero_means_no_cap(write_config: WriteConfig) -> None:
    path = write_config("bandwidth_bps = 5000\n")
    assert load_settings(env={"DEBRID_CONFIG": str(path)}).bandwidth_bps == 5000.0
    settings = load_settings(env={"DEBRID_CONFIG": str(path), "DEBRID_BANDWIDTH_BPS": "0"})
    assert settings.bandwidth_bps is None
    assert settings.sources["bandwidth_bps"] == "env DEBRID_BANDWIDTH_BPS"


def test_urls_are_databases_as_they_are(write_config: WriteConfig) -> None:
    path = write_config('database = "postgresql://db.example/jobs"\n')
    assert load_settings(env={"DEBRID_CONFIG": str(path)}).database == "postgresql://db.example/jobs"
    assert load_settings(env={"DEBRID_DATABASE": ":memory:"}).database == ":memory:"


def test_an_empty_variable_counts_as_unset() -> None:
    settings = load_settings(env={"DEBRID_API_PORT": "", "DEBRID_CONFIG": ""})
    assert settings.api.port == 8686
    assert settings.sources["api.port"] == "default"


def test_api_and_notify_tables_are_read(write_config: WriteConfig) -> None:
    path = write_config(
        """
        [api]
        host = "localhost"
        auth = false
        allowed_hosts = ["debrid.example"]
        cors_origins = ["https://ui.example:8443"]
        max_body_bytes = 2048
        [notify]
        on_complete_command = ["/bin/notify", "done"]
        on_failure_webhooks = ["https://hooks.example/fail"]
        timeout = 2.5
        retries = 0
        """
    )
    settings = load_settings(env={"DEBRID_CONFIG": str(path)})
    assert settings.api == ApiSettings(
        host="localhost", port=8686, auth=False, allowed_hosts=("debrid.example",),
        cors_origins=("https://ui.example:8443",), max_body_bytes=2048,
    )
    assert settings.notify == NotifySettings(
        on_complete_command=("/bin/notify", "done"),
        on_failure_webhooks=("https://hooks.example/fail",), timeout=2.5, retries=0,
    )


def test_a_providers_table_lists_exactly_the_providers(write_config: WriteConfig) -> None:
    path = write_config(
        """
        [providers.realdebrid]
        base_url = "http://127.0.0.1:1/rest/1.0"
        poll_interval = 5
        nested = {a = [1, 2]}
        """
    )
    settings = load_settings(env={"DEBRID_CONFIG": str(path)})
    assert settings.providers == {
        "realdebrid": {"base_url": "http://127.0.0.1:1/rest/1.0", "poll_interval": 5.0,
                       "nested": {"a": [1, 2]}},
    }
    assert settings.sources["providers.realdebrid.base_url"] == str(path)


def test_an_empty_providers_table_means_no_providers(write_config: WriteConfig) -> None:
    path = write_config("[providers]\n")
    assert load_settings(env={"DEBRID_CONFIG": str(path)}).providers == {}


def test_a_provider_key_in_the_environment_adds_that_provider(
    write_config: WriteConfig,
) -> None:
    env = {"DEBRID_REALDEBRID_API_TOKEN": "SECRET-rd", "DEBRID_TORBOX_API_KEY": "SECRET-tb"}
    settings = load_settings(env=env)
    assert settings.providers == {
        "mock": {"step_seconds": 2.0},
        "realdebrid": {"api_token": "SECRET-rd"},
        "torbox": {"api_key": "SECRET-tb"},
    }
    assert settings.sources["providers.torbox.api_key"] == "env DEBRID_TORBOX_API_KEY"

    path = write_config('[providers.torbox]\napi_key = "SECRET-file"\nenabled = true\n')
    settings = load_settings(env={"DEBRID_CONFIG": str(path), "DEBRID_TORBOX_API_KEY": "SECRET-tb"})
    assert settings.providers == {"torbox": {"api_key": "SECRET-tb", "enabled": True}}
    assert settings.sources["providers.torbox.enabled"] == str(path)


def test_settings_built_directly_keep_download_dir_first() -> None:
    from engine.settings import Settings  # noqa: PLC0415

    settings = Settings(config_path=Path("/c/config.toml"), download_dir=Path("/d"),
                        download_roots=(Path("/x"),))
    assert settings.config_dir == Path("/c")
    assert settings.download_roots == (Path("/d"), Path("/x"))


def test_a_provider_key_in_the_environment_leaves_a_disabled_provider_disabled(
    write_config: WriteConfig,
) -> None:
    path = write_config("[providers.realdebrid]\nenabled = false\n")
    settings = load_settings(env={"DEBRID_CONFIG": str(path),
                                  "DEBRID_REALDEBRID_API_TOKEN": "SECRET-rd"})
    assert settings.providers == {"realdebrid": {"enabled": False, "api_token": "SECRET-rd"}}
