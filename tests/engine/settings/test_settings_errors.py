"""ConfigError: every bad key or value names its source, its key and what was expected."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.settings import ConfigError, load_settings
from providers import ValidationError

WriteConfig = Callable[[str], Path]  # the write_config fixture (conftest.py)


def load_file(path: Path, **env: str) -> Any:
    return load_settings(env={"DEBRID_CONFIG": str(path), **env})


def test_the_message_reads_source_key_problem_and_expectation(write_config: WriteConfig) -> None:
    path = write_config('[api]\nport = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    error = caught.value
    assert str(error) == f"{path}: api.port: 'x' is not a port (expected an int 0-65535)"
    assert isinstance(error, ValidationError)
    assert (error.source, error.key, error.field, error.value) == (str(path), "api.port",
                                                                   "api.port", "x")
    assert error.expected == "an int 0-65535"
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.source) == (ConfigError, str(error), error.source)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour = 'red'\n", "colour"),
        ("[api]\nprot = 8000\n", "api.prot"),
        ("[notify]\non_done = []\n", "notify.on_done"),
        ("[logging]\nlevel = 'info'\n", "logging"),
        ("[providers.nosuch]\nenabled = true\n", "providers.nosuch"),
    ],
)
def test_an_unknown_key_anywhere_is_refused_by_name(
    write_config: WriteConfig, text: str, key: str
) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_an_unknown_flag_key_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"api.nope": (1, "--nope")}, {})
    assert str(caught.value).startswith("flag --nope: api.nope: unknown key")


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('[api]\nport = true\n', "api.port", "an int 0-65535"),
        ("[api]\nport = 70000\n", "api.port", "an int 0-65535"),
        ("[api]\nport = 80.0\n", "api.port", "an int 0-65535"),
        ("[api]\nauth = 1\n", "api.auth", "true or false"),
        ("[api]\nhost = 127\n", "api.host", "a host name or an IP address"),
        ("[api]\nallowed_hosts = [1]\n", "api.allowed_hosts", "a list of host names"),
        ("[api]\nallowed_hosts = 'x'\n", "api.allowed_hosts", "a list of host names"),
        ("[api]\ncors_origins = ['https://a.example/path']\n", "api.cors_origins", "origins"),
        ("[api]\nmax_body_bytes = 0\n", "api.max_body_bytes", "an int >= 1"),
        ("api = 3\n", "api", "a table [api]"),
        ("providers = 3\n", "providers", "a table [providers]"),
        ("[providers]\nmock = 3\n", "providers.mock", "a table [providers.mock]"),
        ("[providers.mock]\nenabled = 'yes'\n", "providers.mock.enabled", "true or false"),
        ("[providers.mock]\npoll_interval = 0\n", "providers.mock.poll_interval", "seconds"),
        ("bandwidth_bps = -1\n", "bandwidth_bps", ">= 0"),
        ("bandwidth_bps = nan\n", "bandwidth_bps", ">= 0"),
        ("bandwidth_bps = false\n", "bandwidth_bps", ">= 0"),
        ("poll_interval = 0\n", "poll_interval", "a number of seconds above 0"),
        ("poll_interval = inf\n", "poll_interval", "a number of seconds above 0"),
        ("log_format = 'xml'\n", "log_format", "'console' or 'json'"),
        ("log_level = 'loud'\n", "log_level", "'debug'"),
        ("database = 5\n", "database", "a path or a URL"),
        ("download_dir = ''\n", "download_dir", "a non-empty path string"),
        ("download_roots = '/srv'\n", "download_roots", "a list of directory paths"),
        ("[notify]\non_complete_command = 'ls -l'\n", "notify.on_complete_command", "strings"),
        ("[notify]\non_failure_command = ['ls', 2]\n", "notify.on_failure_command", "strings"),
        ("[notify]\non_failure_command = ['', 'x']\n", "notify.on_failure_command", "program"),
        ("[notify]\non_complete_webhooks = ['ftp://h/x']\n", "notify.on_complete_webhooks",
         "http://"),
        ("[notify]\non_failure_webhooks = ['http://']\n", "notify.on_failure_webhooks",
         "http://"),
        ("[notify]\ntimeout = '10'\n", "notify.timeout", "seconds above 0"),
        ("[notify]\nretries = 1.5\n", "notify.retries", "an int >= 0"),
        ("[notify]\nretries = -1\n", "notify.retries", "an int >= 0"),
    ],
)
def test_a_value_of_the_wrong_type_names_file_key_and_expectation(
    write_config: WriteConfig, text: str, key: str, expected: str
) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert caught.value.key == key
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert expected in caught.value.expected
    assert f"(expected {caught.value.expected})" in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "text", "key"),
    [
        ("DEBRID_API_PORT", "x", "api.port"),
        ("DEBRID_API_PORT", "-1", "api.port"),
        ("DEBRID_API_AUTH", "maybe", "api.auth"),
        ("DEBRID_BANDWIDTH_BPS", "fast", "bandwidth_bps"),
        ("DEBRID_POLL_INTERVAL", "0", "poll_interval"),
        ("DEBRID_LOG_FORMAT", "xml", "log_format"),
        ("DEBRID_LOG_LEVEL", "loud", "log_level"),
    ],
)
def test_a_bad_environment_value_names_the_variable(variable: str, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={variable: text})
    assert str(caught.value).startswith(f"env {variable}: {key}: ")
    assert " is not " in str(caught.value)
    assert caught.value.source == f"env {variable}"


def test_environment_text_is_read_as_the_key_type() -> None:
    settings = load_settings(env={"DEBRID_API_PORT": "0", "DEBRID_API_AUTH": "False",
                                  "DEBRID_POLL_INTERVAL": "1.5", "DEBRID_LOG_LEVEL": "DEBUG"})
    assert (settings.api.port, settings.api.auth) == (0, False)
    assert (settings.poll_interval, settings.log_level) == (1.5, "debug")


def test_a_flag_value_of_the_wrong_type_names_the_flag() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"api.port": (True, "--port")}, {})
    assert str(caught.value) == (
        "flag --port: api.port: True is not a port (expected an int 0-65535)"
    )


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("log_level = 'info'\nport = \n", "line 2"),
        ("[api]\nport = 1\n[api]\n", "line 3"),
        ("a = 'unterminated\n", "line 1"),
    ],
)
def test_a_toml_syntax_error_names_the_file_and_line(
    write_config: WriteConfig, text: str, place: str
) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}: not valid TOML at {place}")
    assert caught.value.source == str(path)


def test_a_file_that_is_not_text_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("")
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_file(path)


def test_a_directory_named_as_the_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings({"config": (tmp_path, "--config")}, {})


@pytest.mark.parametrize(
    ("text", "flags", "env", "source"),
    [
        ("[api]\nhost = '0.0.0.0'\nauth = false\n", {}, {}, "file"),
        ("[api]\nauth = false\n", {}, {"DEBRID_API_HOST": "192.168.1.5"}, "env DEBRID_API_HOST"),
        ("", {"api.host": ("::", "--host")}, {"DEBRID_API_AUTH": "false"}, "flag --host"),
        ("[api]\nhost = 'debrid.example'\n", {}, {"DEBRID_API_AUTH": "false"}, "file"),
    ],
)
def test_a_non_loopback_host_without_auth_is_refused(
    write_config: WriteConfig,
    text: str,
    flags: dict[str, tuple[Any, str]],
    env: dict[str, str],
    source: str,
) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(flags, {"DEBRID_CONFIG": str(path), **env})
    assert caught.value.key == "api.host"
    assert caught.value.source == (str(path) if source == "file" else source)
    assert "api.auth is false" in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost",
                                  "LOCALHOST"])
def test_a_loopback_host_may_run_without_auth(host: str) -> None:
    settings = load_settings({"api.host": (host, "--host")}, {"DEBRID_API_AUTH": "false"})
    assert (settings.api.host, settings.api.auth) == (host, False)


def test_any_host_may_run_with_auth() -> None:
    settings = load_settings(env={"DEBRID_API_HOST": "0.0.0.0"})
    assert (settings.api.host, settings.api.auth) == ("0.0.0.0", True)
