"""The keys file and the API token: owner-only files in an owner-only directory."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

import engine.settings._files
from engine._secrets import FileSecretStore
from engine.settings import (
    ConfigError,
    Settings,
    api_token,
    ensure_config_dir,
    load_settings,
    store_key,
)

WriteConfig = Callable[[str], Path]  # the write_config fixture (conftest.py)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """A umask that lets everyone read: the modes must come from the code, not the umask."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.fixture
def config_settings(write_config: WriteConfig) -> Settings:
    path = write_config("")
    path.parent.chmod(0o755)
    return load_settings(env={"DEBRID_CONFIG": str(path)})


def test_ensure_config_dir_makes_an_owner_only_directory(default_config_path: Path) -> None:
    settings = load_settings(env={})
    assert ensure_config_dir(settings) == default_config_path.parent
    assert mode(default_config_path.parent) == 0o700


def test_ensure_config_dir_leaves_an_existing_directory_alone(config_settings: Settings) -> None:
    """Review finding: ``--config ./debrid.toml`` made the project directory 0700 (and
    ``/etc/debrid.toml`` as root would have made /etc so); only a directory this code
    makes is made private, and the files in it are 0600 whatever the directory."""
    assert mode(config_settings.config_dir) == 0o755
    ensure_config_dir(config_settings)
    assert mode(config_settings.config_dir) == 0o755
    store_key(config_settings, "torbox.api_key", "SECRET-tb789")
    assert mode(config_settings.secrets_path) == 0o600
    assert mode(config_settings.config_dir) == 0o755


def test_a_config_dir_that_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = attrs.evolve(load_settings(env={}), config_dir=blocker / "sub")
    with pytest.raises(ConfigError) as error:
        ensure_config_dir(settings)
    assert error.value.key == "config_dir"


def test_store_key_writes_an_owner_only_keys_file(default_config_path: Path) -> None:
    settings = load_settings(env={})
    store_key(settings, "torbox.api_key", "SECRET-tb456")
    assert settings.secrets_path == default_config_path.parent / "secrets.json"
    assert mode(settings.secrets_path) == 0o600
    assert mode(settings.config_dir) == 0o700
    assert settings.secret_store().get("torbox.api_key") == "SECRET-tb456"
    assert FileSecretStore(settings.secrets_path).get("torbox.api_key") == "SECRET-tb456"

    store_key(settings, "realdebrid.api_token", "SECRET-abc123")
    assert dict(settings.secret_store().snapshot()) == {
        "torbox.api_key": "SECRET-tb456", "realdebrid.api_token": "SECRET-abc123",
    }
    assert mode(settings.secrets_path) == 0o600


def test_store_key_tightens_an_old_keys_file(config_settings: Settings) -> None:
    config_settings.secrets_path.write_text('{"torbox.api_key": "old"}')
    config_settings.secrets_path.chmod(0o644)
    store_key(config_settings, "torbox.api_key", "new")
    assert mode(config_settings.secrets_path) == 0o600


@pytest.mark.parametrize(("key", "value"), [("", "v"), (" x", "v"), ("torbox.api_key", "")])
def test_store_key_refuses_an_empty_name_or_value(
    config_settings: Settings, key: str, value: str
) -> None:
    with pytest.raises(ConfigError):
        store_key(config_settings, key, value)
    assert not config_settings.secrets_path.exists()


def test_the_secret_store_makes_its_directory_owner_only_on_write(
    default_config_path: Path,
) -> None:
    store = load_settings(env={}).secret_store()
    assert isinstance(store, FileSecretStore)
    assert store.get("x") is None
    assert not default_config_path.parent.exists()  # reading creates nothing
    store.set("realdebrid.access_token", "SECRET-abc123")
    assert mode(default_config_path.parent) == 0o700
    assert mode(default_config_path.parent / "secrets.json") == 0o600


def test_the_api_token_comes_from_the_environment_first(config_settings: Settings) -> None:
    assert api_token(config_settings, {"DEBRID_API_TOKEN": "from-env"}) == "from-env"
    assert not config_settings.api_token_path.exists()


def test_the_api_token_is_made_once_and_kept(write_config: WriteConfig) -> None:
    path = write_config("")
    first = load_settings(env={"DEBRID_CONFIG": str(path)})
    token = api_token(first, {})
    assert len(token) >= 43
    assert first.api_token_path == path.parent / "api-token"
    assert mode(first.api_token_path) == 0o600
    assert api_token(first, {}) == token
    second = load_settings(env={"DEBRID_CONFIG": str(path)})  # another loader, same file
    assert api_token(second, {"DEBRID_API_TOKEN": ""}) == token
    assert first.api_token_path.read_text().strip() == token
    assert [p.name for p in first.config_dir.iterdir() if p.name.startswith(".")] == []


def test_an_existing_token_file_is_read_and_tightened(config_settings: Settings) -> None:
    config_settings.api_token_path.write_text("  kept-token\n")
    config_settings.api_token_path.chmod(0o644)
    assert api_token(config_settings, {}) == "kept-token"
    assert mode(config_settings.api_token_path) == 0o600


def test_an_empty_token_file_is_an_error(
    config_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.settings._files, "_WRITE_WAIT", 0.0)
    config_settings.api_token_path.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        api_token(config_settings, {})


def test_loaders_racing_for_the_first_token_all_get_the_same(write_config: WriteConfig) -> None:
    path = write_config("")
    loaders = [load_settings(env={"DEBRID_CONFIG": str(path)}) for _ in range(8)]
    start = threading.Barrier(len(loaders))
    tokens: list[str] = []

    def run(settings: Settings) -> None:
        start.wait()
        tokens.append(api_token(settings, {}))

    threads = [threading.Thread(target=run, args=(s,)) for s in loaders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == len(loaders)
    assert len(set(tokens)) == 1
    assert path.parent.joinpath("api-token").read_text().strip() == tokens[0]


def test_the_token_loser_reads_the_winner(
    config_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process creates the file between our look and our link.
    real = engine.settings._files._create_once

    def other_process_first(path: Path, token: str) -> bool:
        path.write_text("the-winner\n")
        return real(path, token)

    monkeypatch.setattr(engine.settings._files, "_create_once", other_process_first)
    assert api_token(config_settings, {}) == "the-winner"


def test_without_hard_links_the_token_is_created_in_place(
    config_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_: object) -> None:
        raise PermissionError("no hard links here")

    monkeypatch.setattr(os, "link", no_links)
    token = api_token(config_settings, {})
    assert config_settings.api_token_path.read_text().strip() == token
    assert mode(config_settings.api_token_path) == 0o600
    assert api_token(config_settings, {}) == token


def test_a_config_dir_this_user_cannot_write_is_a_config_error(
    config_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: a directory owned by someone else gave a bare PermissionError."""
    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(engine.settings._files.tempfile, "mkstemp", refuse)
    with pytest.raises(ConfigError) as error:
        api_token(config_settings, {})
    assert error.value.key == "api-token" and "Permission denied" in str(error.value)
    with pytest.raises(ConfigError) as error:
        store_key(config_settings, "torbox.api_key", "SECRET-tb000")
    assert "SECRET-tb000" not in str(error.value)
