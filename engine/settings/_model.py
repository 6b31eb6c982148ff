"""Settings: the effective configuration, where each value came from, and what it builds.

``load_settings`` makes one from the file, the environment and flags; the
classes can also be built directly (every field has a default).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import attrs
import platformdirs

from engine._config import EngineConfig
from engine._secrets import FileSecretStore
from engine.settings import _files, _show
from engine.settings._errors import mask, mask_command, mask_webhook

if TYPE_CHECKING:
    from providers import ProviderRegistry

__all__ = [
    "ApiSettings",
    "CategorySettings",
    "NotifySettings",
    "QbitSettings",
    "Settings",
    "default_config_path",
    "default_download_dir",
]

APP_NAME = "debrid-engine"


def default_config_path() -> Path:
    """``config.toml`` in the user's config directory (``platformdirs.user_config_dir``)."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_download_dir() -> Path:
    """``debrid`` in the user's downloads directory (``~/Downloads/debrid`` on most systems).

    The downloads directory rather than the data directory, because finished
    files are the user's to open, not the engine's state.
    """
    return Path(platformdirs.user_downloads_dir()) / "debrid"


def _default_providers() -> dict[str, dict[str, Any]]:
    return {"mock": {"step_seconds": 2.0}}


class _Options(Mapping[str, Any]):
    """A provider's options, read-only; its ``repr`` masks the secret ones."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(mask(self._data))


def _frozen_providers(value: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({name: _Options(options) for name, options in value.items()})


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _masked_repr(value: Any) -> str:
    return repr(mask(value))


def _hooks_repr(value: tuple[str, ...]) -> str:
    return repr(tuple(mask_webhook(url) for url in value))


def _command_repr(value: tuple[str, ...]) -> str:
    return repr(tuple(mask_command(value)))


@attrs.frozen
class ApiSettings:
    """The ``[api]`` table: where the daemon listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8686
    auth: bool = True
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 10 * 1024 * 1024


@attrs.frozen
class NotifySettings:
    """The ``[notify]`` table: a command and webhooks run when a job completes or fails."""

    on_complete_command: tuple[str, ...] = attrs.field(default=(), repr=_command_repr)
    on_failure_command: tuple[str, ...] = attrs.field(default=(), repr=_command_repr)
    on_complete_webhooks: tuple[str, ...] = attrs.field(default=(), repr=_hooks_repr)
    on_failure_webhooks: tuple[str, ...] = attrs.field(default=(), repr=_hooks_repr)
    timeout: float = 10.0
    retries: int = 3


@attrs.frozen(kw_only=True)
class CategorySettings:
    """A ``[qbittorrent.categories.<name>]`` table: a category of the qBittorrent face."""

    name: str
    save_path: Path | None = None
    provider: str | None = None
    arr_url: str | None = None
    #: The environment variable that holds the *arr app's API key (never the key itself).
    arr_api_key_env: str | None = None
    arr_api_path: str = "/api/v3"


@attrs.frozen(kw_only=True)
class QbitSettings:
    """The ``[qbittorrent]`` table: the qBittorrent-compatible face for the *arr apps."""

    enabled: bool = True
    username: str | None = None
    #: From DEBRID_QBITTORRENT_PASSWORD (else the keys file's ``qbittorrent.password``).
    password: str | None = attrs.field(default=None, repr=lambda v: "***" if v else "None")
    save_path: Path | None = None
    provider: str | None = None
    prefix: str = ""
    api_version: str = "2.9.3"
    session_timeout: float = 3600.0
    arr_from_login: bool = False
    categories: tuple[CategorySettings, ...] = ()


@attrs.frozen(kw_only=True)
class Settings:
    """The effective configuration of the daemon and the command line.

    - ``config_path``: the config file read (it may not exist: then all defaults);
      ``config_dir`` its directory, which also holds ``secrets.json`` and ``api-token``.
    - ``database``: a path or URL; None means the engine's default (``jobs.db`` in
      the user's data directory).
    - ``download_dir``: where ``debrid add`` downloads by default (see
      ``default_download_dir``); ``download_roots``: the directories a
      ``download_dir`` sent over HTTP must resolve inside, ``download_dir`` always first.
    - ``bandwidth_bps``: the global download cap in bytes per second (None: none).
    - ``poll_interval``: the default seconds between status polls.
    - ``providers``: options by provider name, as ``EngineConfig.providers`` takes them.
    - ``sources``: for every dotted key, where its value came from: ``default``, the
      config file's path, ``env NAME`` or ``flag --name``.
    - ``registry``: the registry provider names were checked against (None: the
      built-ins); ``engine_config`` hands it to the engine.

    The ``repr`` hides secret provider options and URL passwords.
    """

    config_path: Path = attrs.field(factory=default_config_path)
    config_dir: Path = attrs.field(
        default=attrs.Factory(lambda self: self.config_path.parent, takes_self=True)
    )
    database: str | None = attrs.field(default=None, repr=_masked_repr)
    download_dir: Path = attrs.field(factory=default_download_dir)
    download_roots: tuple[Path, ...] = ()
    bandwidth_bps: float | None = None
    poll_interval: float = 2.0
    log_format: Literal["console", "json"] = "console"
    log_level: str = "info"
    api: ApiSettings = attrs.field(factory=ApiSettings)
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=_default_providers, converter=_frozen_providers, repr=_masked_repr
    )
    notify: NotifySettings = attrs.field(factory=NotifySettings)
    qbittorrent: QbitSettings = attrs.field(factory=QbitSettings)
    sources: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    registry: ProviderRegistry | None = attrs.field(default=None, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        roots = (self.download_dir, *(r for r in self.download_roots if r != self.download_dir))
        # Frozen: attrs' own documented way to finish a field in post-init.
        object.__setattr__(self, "download_roots", tuple(dict.fromkeys(roots)))

    @property
    def secrets_path(self) -> Path:
        """The keys file, ``secrets.json`` beside the config file."""
        return self.config_dir / "secrets.json"

    @property
    def api_token_path(self) -> Path:
        """The daemon's stored bearer token, ``api-token`` beside the config file."""
        return self.config_dir / "api-token"

    def secret_store(self) -> FileSecretStore:
        """The keys file as a secret store; a write creates the directory 0700 first."""
        return _files.KeysFile(self.secrets_path)

    def engine_config(self, **overrides: Any) -> EngineConfig:
        """An ``EngineConfig`` from these settings; ``overrides`` replace any of its fields.

        Each provider gets ``poll_interval`` (this ``poll_interval`` unless its table
        says otherwise) and the keys file as the engine's secret store.
        """
        providers = {
            name: {"poll_interval": self.poll_interval, **copy.deepcopy(dict(options))}
            for name, options in self.providers.items()
        }
        fields: dict[str, Any] = {
            "database": self.database,
            "providers": providers,
            "bandwidth_bps": self.bandwidth_bps,
            "default_poll_interval": self.poll_interval,
            "secrets": self.secret_store(),
        }
        if self.registry is not None:
            fields["registry"] = self.registry
        fields.update(overrides)
        return EngineConfig(**fields)

    def describe(self) -> dict[str, dict[str, Any]]:
        """Every effective key -> ``{"value": ..., "source": ...}``, secrets as ``***``.

        The shape of ``debrid config show --json``; values are JSON-ready.
        """
        return _show.describe(self)

    def render_text(self) -> str:
        """``describe()`` as an aligned table (key, value, source) for ``debrid config show``."""
        return _show.render_text(self)
