"""Fixtures for the settings tests: a config file in tmp_path, never the user's own dirs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import engine.settings._load

WriteConfig = Callable[[str], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write ``text`` to ``tmp_path/conf/config.toml`` and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "conf" / "config.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def default_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default config place, moved under tmp_path (nothing is there)."""
    path = tmp_path / "default-config" / "config.toml"
    monkeypatch.setattr(engine.settings._load, "default_config_path", lambda: path)
    return path
