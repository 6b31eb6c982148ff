"""The ``[qbittorrent]`` table: keys, categories, the password's places, and its errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.server._daemon import _qbit_options
from engine.settings import CategorySettings, ConfigError, QbitSettings, load_settings

WriteConfig = Callable[[str], Path]


def test_defaults(default_config_path: Path) -> None:
    settings = load_settings(env={})
    assert settings.qbittorrent == QbitSettings()
    options = _qbit_options(settings, settings.download_roots)
    assert options.enabled and options.password is None
    assert options.save_path == settings.download_dir


def test_the_table_and_its_categories(write_config: WriteConfig,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(
        """
        [qbittorrent]
        username = "sonarr"
        save_path = "/data/dl"
        prefix = "/qbit"
        api_version = "2.11.2"
        session_timeout = 120

        [qbittorrent.categories.tv]
        save_path = "/data/dl/tv"
        provider = "mock"
        arr_url = "http://127.0.0.1:8989/"
        arr_api_key_env = "SONARR_KEY"

        [qbittorrent.categories.movies]
        """
    )
    settings = load_settings(env={"DEBRID_CONFIG": str(path),
                                  "DEBRID_QBITTORRENT_PASSWORD": "pw-123456"})
    qbit = settings.qbittorrent
    assert (qbit.username, qbit.prefix, qbit.api_version) == ("sonarr", "/qbit", "2.11.2")
    assert qbit.password == "pw-123456"
    assert "pw-123456" not in repr(settings)
    assert settings.sources["qbittorrent.password"] == "env DEBRID_QBITTORRENT_PASSWORD"
    assert qbit.categories == (
        CategorySettings(name="tv", save_path=Path("/data/dl/tv"), provider="mock",
                         arr_url="http://127.0.0.1:8989", arr_api_key_env="SONARR_KEY"),
        CategorySettings(name="movies"),
    )
    with pytest.raises(Exception, match="SONARR_KEY is not set"):
        _qbit_options(settings, settings.download_roots)
    monkeypatch.setenv("SONARR_KEY", "arr-key-777")
    options = _qbit_options(settings, settings.download_roots)
    tv = options.category("tv")
    assert tv is not None and tv.arr is not None and tv.arr.api_key == "arr-key-777"
    assert "arr-key-777" not in repr(options) and "pw-123456" not in repr(options)
    assert options.stopped_names and options.app_version.startswith("v5.")


@pytest.mark.parametrize(("text", "key"), [
    ('[qbittorrent]\npassword = "x"', "qbittorrent.password"),
    ('[qbittorrent]\nprefix = "no-slash"', "qbittorrent.prefix"),
    ('[qbittorrent]\napi_version = "4.6"', "qbittorrent.api_version"),
    ('[qbittorrent]\nprovider = "torbox"', "qbittorrent.provider"),
    ('[qbittorrent.categories.tv]\ncolour = "red"', "qbittorrent.categories.tv.colour"),
    ('[qbittorrent.categories.tv]\narr_url = "http://x:8989"', "qbittorrent.categories.tv"),
    ('[qbittorrent.categories.tv]\narr_url = "ftp://x"\narr_api_key_env = "K"',
     "qbittorrent.categories.tv.arr_url"),
    ('[qbittorrent.categories.tv]\nprovider = "nope"', "qbittorrent.categories.tv.provider"),
])
def test_bad_values_name_their_key(write_config: WriteConfig, text: str, key: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"DEBRID_CONFIG": str(path)})
    assert caught.value.key == key


def test_the_keys_file_can_hold_the_password(write_config: WriteConfig) -> None:
    path = write_config("[qbittorrent]\nusername = \"u\"\n")
    settings = load_settings(env={"DEBRID_CONFIG": str(path)})
    settings.secret_store().set("qbittorrent.password", "from-keys-file")
    options = _qbit_options(settings, settings.download_roots)
    assert (options.username, options.password) == ("u", "from-keys-file")
