"""The TOML config of the daemon and the command line, the keys file and the API token.

    from engine import Engine
    from engine.settings import load_settings

    settings = load_settings({"api.port": (9000, "--port")})   # file < env < flags
    with Engine(settings.engine_config()) as engine:
        ...

The file is ``--config``, else ``DEBRID_CONFIG``, else ``config.toml`` in the
user's config directory; its schema, variables and errors are those of
``docs/faces.md`` ("Config", "Keys"). Every bad key or value is a
``ConfigError`` naming where it came from and which key it is.
"""

from engine.settings._errors import ConfigError
from engine.settings._files import api_token, ensure_config_dir, store_key, token_proof
from engine.settings._load import load_settings
from engine.settings._model import (
    ApiSettings,
    CategorySettings,
    NotifySettings,
    QbitSettings,
    Settings,
    default_config_path,
    default_download_dir,
)

__all__ = [
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
