"""The public surface of engine.settings changes only on purpose."""

from __future__ import annotations

import engine.settings


def test_the_public_names_are_pinned() -> None:
    assert engine.settings.__all__ == [
        "ApiSettings",
        "CategorySettings",
        "ConfigError",
        "NotifySettings",
        "QbitSettings",
        "Settings",
        "api_token",
        "default_config_path",
        "default_download_dir",
        "ensure_config_dir",
        "load_settings",
        "store_key",
        "token_proof",
    ]
    for name in engine.settings.__all__:
        assert getattr(engine.settings, name).__doc__
