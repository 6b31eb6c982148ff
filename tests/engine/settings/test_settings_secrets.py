"""No secret reaches describe(), render_text(), repr(Settings) or a ConfigError."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from engine.settings import ConfigError, Settings, load_settings, store_key

WriteConfig = Callable[[str], Path]  # the write_config fixture (conftest.py)

SECRETS = ("SECRET-abc123", "SECRET-tb456", "SECRET-db789", "SECRET-hook0", "SECRET-opt1",
           "SECRET-path1", "SECRET-q1", "SECRET-arg1")


def every_rendering(settings: Settings) -> str:
    return "\n".join([
        json.dumps(settings.describe()), settings.render_text(), repr(settings), str(settings),
        repr(settings.providers), repr(settings.notify),
    ])


@pytest.fixture
def loaded(write_config: WriteConfig) -> Settings:
    path = write_config(
        """
        database = "postgresql://engine:SECRET-db789@db.example/jobs"
        [providers.realdebrid]
        api_token = "SECRET-abc123"
        [providers.mock]
        client_secret = "SECRET-opt1"
        nested = {password = "SECRET-opt1"}
        [notify]
        on_complete_webhooks = ["https://hook:SECRET-hook0@hooks.example/done",
                                "https://hooks.example/services/SECRET-path1?token=SECRET-q1"]
        on_failure_command = ["/bin/notify", "--header", "Authorization: Bearer SECRET-arg1"]
        """
    )
    return load_settings(env={"DEBRID_CONFIG": str(path), "DEBRID_TORBOX_API_KEY": "SECRET-tb456"})


def test_secrets_are_used_but_never_shown(loaded: Settings) -> None:
    assert loaded.providers["realdebrid"]["api_token"] == "SECRET-abc123"
    assert loaded.providers["torbox"]["api_key"] == "SECRET-tb456"
    shown = every_rendering(loaded)
    for secret in SECRETS:
        assert secret not in shown
    described = loaded.describe()
    assert described["providers.realdebrid.api_token"]["value"] == "***"
    assert described["providers.torbox.api_key"] == {"value": "***",
                                                     "source": "env DEBRID_TORBOX_API_KEY"}
    assert described["providers.mock.client_secret"]["value"] == "***"
    assert described["providers.mock.nested"]["value"] == {"password": "***"}
    assert described["database"]["value"] == "postgresql://engine:***@db.example/jobs"
    # Review finding: webhook paths and queries, and command arguments, carry tokens.
    assert described["notify.on_complete_webhooks"]["value"] == [
        "https://hooks.example/***", "https://hooks.example/***"
    ]
    assert described["notify.on_failure_command"]["value"] == ["/bin/notify", "***", "***"]


def test_the_keys_file_tells_whether_a_provider_key_is_set(write_config: WriteConfig) -> None:
    path = write_config("[providers.realdebrid]\n[providers.torbox]\n")
    settings = load_settings(env={"DEBRID_CONFIG": str(path)})
    described = settings.describe()
    assert described["providers.realdebrid.api_token"] == {"value": "(unset)", "source": "default"}
    assert described["providers.torbox.api_key"]["value"] == "(unset)"

    store_key(settings, "torbox.api_key", "SECRET-tb456")
    described = settings.describe()
    assert described["providers.torbox.api_key"] == {"value": "***",
                                                     "source": str(settings.secrets_path)}
    assert "SECRET-tb456" not in every_rendering(settings)


def test_render_text_is_an_aligned_table_of_key_value_source(loaded: Settings) -> None:
    lines = loaded.render_text().splitlines()
    assert lines[0].split() == ["KEY", "VALUE", "SOURCE"]
    value_column = lines[0].index("VALUE")
    assert all(line[value_column - 2 : value_column] == "  " for line in lines)
    row = next(line for line in lines if line.startswith("providers.realdebrid.api_token "))
    assert row.split() == ["providers.realdebrid.api_token", "***", str(loaded.config_path)]
    assert len(lines) == len(loaded.describe()) + 1


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ('api_token = "SECRET-abc123"\n', {}),  # an unknown key holding a secret
        ('[api]\ntoken = "SECRET-abc123"\n', {}),
        ('[providers.nosuch]\napi_key = "SECRET-abc123"\n', {}),
        ('[notify]\non_complete_webhooks = ["ftp://u:SECRET-abc123@h/x"]\n', {}),
        ('[api]\nport = {password = "SECRET-abc123"}\n', {}),
        ("", {"DEBRID_REALDEBRID_API_TOKEN": "SECRET-abc123 with spaces"}),
        ("", {"DEBRID_TORBOX_API_KEY": "SECRET-abc123\nSECRET-abc123"}),
    ],
)
def test_a_config_error_never_holds_a_secret(
    write_config: WriteConfig, text: str, env: dict[str, str]
) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"DEBRID_CONFIG": str(path), **env})
    error = caught.value
    for rendering in (str(error), repr(error), repr(error.args), str(error.value), error.message):
        assert "SECRET-abc123" not in rendering


def test_a_config_error_on_a_secret_key_keeps_no_value() -> None:
    error = ConfigError("env X", "providers.torbox.api_key", "bad", value="SECRET-abc123")
    assert error.value == "<secret>"
    assert "SECRET-abc123" not in str(error)


@hypothesis_settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Function-scoped fixtures: only the autouse default_config_path, the same for every example.
@given(tail=st.text(alphabet=st.characters(categories=["L", "N", "P", "S"]), min_size=4))
def test_no_secret_value_ever_shows(tail: str) -> None:
    secret = "SECRET-" + tail
    settings = load_settings(env={"DEBRID_REALDEBRID_API_TOKEN": secret})
    assert settings.providers["realdebrid"]["api_token"] == secret.strip()
    assert secret.strip() not in every_rendering(settings)
