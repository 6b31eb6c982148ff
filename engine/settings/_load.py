"""load_settings: the config file, then the environment, then flags, each key checked.

Where the file is: the ``config`` flag, else ``DEBRID_CONFIG``, else
``default_config_path()``; only a missing file at the default place means "all
defaults". Relative paths in the file are taken from the file's directory, those
of the environment and flags from the working directory. An empty environment
variable counts as unset. ``DEBRID_REALDEBRID_API_TOKEN`` and
``DEBRID_TORBOX_API_KEY`` add their provider (to the file's providers, or to the
default mock); a table that says ``enabled = false`` stays disabled.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.settings._errors import ConfigError, show_value
from engine.settings._model import (
    ApiSettings,
    CategorySettings,
    NotifySettings,
    QbitSettings,
    Settings,
    default_config_path,
)
from engine.settings._schema import (
    CATEGORY_KEYS,
    ENGINE_PROVIDER_KEYS,
    KEYS,
    PROVIDER_ENV,
    QBIT_PASSWORD_ENV,
    TABLES,
    Bad,
    check_secret,
    is_loopback,
)
from providers import ProviderRegistry, default_registry

__all__ = ["CONFIG_ENV", "load_settings"]

#: The environment variable that names the config file.
CONFIG_ENV = "DEBRID_CONFIG"

_Sourced = dict[str, tuple[Any, str]]  # dotted key -> (value, source)


def load_settings(
    flags: Mapping[str, tuple[Any, str]] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    registry: ProviderRegistry | None = None,
) -> Settings:
    """The effective settings: the config file < the environment < ``flags``.

    ``flags`` maps dotted keys (``"api.port"``, ``"database"``, ``"config"``) to
    ``(value, flag name)``, e.g. ``{"api.port": (9000, "--port")}``; a value of None
    is a flag not given. A string value is read like an environment variable.
    ``env`` defaults to ``os.environ``. ``registry`` holds the provider names a
    ``[providers.<name>]`` table may use (the built-ins by default).
    Raises ``ConfigError`` naming the source and key of the first bad value.
    """
    env = os.environ if env is None else env
    given = {key: pair for key, pair in (flags or {}).items() if pair[0] is not None}
    names = (registry or default_registry()).names()
    path, path_source = _config_path(given, env)
    file_source = str(path)
    data = _read(path, path_source)

    values: _Sourced = {}
    providers = _from_file(data, file_source, path.parent, values, names)
    providers = _from_env(env, values, providers, names)
    _from_flags(given, values)
    if providers is None:
        providers = _default_providers()
    return _build(path, path_source, values, providers, registry)


def _default_providers() -> dict[str, dict[str, tuple[Any, str]]]:
    """The providers without a [providers] table: the mock."""
    return {"mock": {"step_seconds": (2.0, "default")}}


def _config_path(flags: Mapping[str, tuple[Any, str]], env: Mapping[str, str]) -> tuple[Path, str]:
    if "config" in flags:
        value, flag = flags["config"]
        source = f"flag {flag}"
    elif env.get(CONFIG_ENV):
        value, source = env[CONFIG_ENV], f"env {CONFIG_ENV}"
    else:
        return default_config_path(), "default"
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigError(source, "config", f"{show_value(value)} is not a path",
                          value=value, expected="the path of a TOML file")
    return Path(os.fspath(value)).expanduser().absolute(), source


def _read(path: Path, source: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if source == "default":
            return {}
        raise ConfigError(source, "config", f"{str(path)!r} does not exist",
                          value=str(path), expected="an existing TOML file") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "is not UTF-8 text", expected="a TOML file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", _syntax_message(exc, text), expected="TOML") from None


def _syntax_message(exc: tomllib.TOMLDecodeError, document: str) -> str:
    """``not valid TOML at line 3, column 7: <what tomllib says>``.

    tomllib (3.11) gives the place only in its text: ``(at line 3, column 7)``, or
    ``(at end of document)``, which is the last line.
    """
    text = str(exc)
    place = re.search(r"\s*\(at (line \d+, column \d+|end of document)\)$", text)
    if place is None:
        return f"not valid TOML: {text}"
    where = place.group(1)
    if where == "end of document":
        where = f"line {max(1, len(document.splitlines()))} (the end of the file)"
    return f"not valid TOML at {where}: {text[: place.start()]}"


def _check(key: str, raw: Any, source: str, base: Path) -> Any:
    try:
        return KEYS[key].check(raw, base)
    except Bad as bad:
        raise ConfigError(source, key, bad.message, value=raw, expected=bad.expected) from None


def _unknown(source: str, key: str, known: Any) -> ConfigError:
    return ConfigError(source, key, "unknown key",
                       expected="one of " + ", ".join(sorted(known)))


def _not_table(source: str, key: str, value: Any) -> ConfigError:
    return ConfigError(source, key, f"{show_value(value)} is not a table",
                       value=value if not isinstance(value, dict) else None,
                       expected=f"a table [{key}]")


def _from_file(
    data: dict[str, Any], source: str, base: Path, values: _Sourced, names: tuple[str, ...]
) -> dict[str, dict[str, tuple[Any, str]]] | None:
    """Check the file's keys into ``values``; returns its provider tables (None: no [providers])."""
    top = {key for key in KEYS if "." not in key} | set(TABLES)
    providers: dict[str, dict[str, tuple[Any, str]]] | None = None
    for name, value in data.items():
        if name not in top:
            raise _unknown(source, name, top)
        if name == "providers":
            providers = _provider_tables(value, source, names)
        elif name in TABLES:
            if not isinstance(value, dict):
                raise _not_table(source, name, value)
            inner = {key.partition(".")[2] for key in KEYS if key.startswith(name + ".")}
            for sub, item in value.items():
                key = f"{name}.{sub}"
                if key == "qbittorrent.categories":
                    values[key] = (_category_tables(item, source, base), source)
                    continue
                if key == "qbittorrent.password":
                    raise ConfigError(source, key, "a password does not belong in the config file",
                                      expected=f"{QBIT_PASSWORD_ENV}, or the keys file's "
                                      "qbittorrent.password")
                if sub not in inner:
                    raise _unknown(source, key, inner)
                values[key] = (_check(key, item, source, base), source)
        else:
            values[name] = (_check(name, value, source, base), source)
    return providers


def _category_tables(value: Any, source: str, base: Path) -> tuple[CategorySettings, ...]:
    """The ``[qbittorrent.categories.<name>]`` tables, each key checked."""
    if not isinstance(value, dict):
        raise _not_table(source, "qbittorrent.categories", value)
    found = []
    for name, options in value.items():
        key = f"qbittorrent.categories.{name}"
        if not isinstance(options, dict):
            raise _not_table(source, key, options)
        checked: dict[str, Any] = {}
        for option, item in options.items():
            check = CATEGORY_KEYS.get(option)
            if check is None:
                raise _unknown(source, f"{key}.{option}", CATEGORY_KEYS)
            try:
                checked[option] = check(item, base)
            except Bad as bad:
                raise ConfigError(source, f"{key}.{option}", bad.message, value=item,
                                  expected=bad.expected) from None
        if ("arr_url" in checked) != ("arr_api_key_env" in checked):
            raise ConfigError(source, key, "arr_url and arr_api_key_env go together",
                              expected="both, or neither")
        found.append(CategorySettings(name=name, **checked))
    return tuple(found)


def _provider_tables(
    value: Any, source: str, names: tuple[str, ...]
) -> dict[str, dict[str, tuple[Any, str]]]:
    if not isinstance(value, dict):
        raise _not_table(source, "providers", value)
    tables: dict[str, dict[str, tuple[Any, str]]] = {}
    for name, options in value.items():
        key = f"providers.{name}"
        if name not in names:
            raise ConfigError(source, key, f"unknown provider {name!r}",
                              expected="a registered provider: " + ", ".join(names))
        if not isinstance(options, dict):
            raise _not_table(source, key, options)
        checked: dict[str, tuple[Any, str]] = {}
        for option, item in options.items():
            check = ENGINE_PROVIDER_KEYS.get(option)
            try:
                checked[option] = (item if check is None else check(item, Path()), source)
            except Bad as bad:
                raise ConfigError(source, f"{key}.{option}", bad.message, value=item,
                                  expected=bad.expected) from None
        tables[name] = checked
    return tables


def _from_env(
    env: Mapping[str, str],
    values: _Sourced,
    providers: dict[str, dict[str, tuple[Any, str]]] | None,
    names: tuple[str, ...],
) -> dict[str, dict[str, tuple[Any, str]]] | None:
    """Check the environment's keys into ``values``; returns the providers with env keys added."""
    cwd = Path.cwd()
    for key in KEYS.values():
        if key.env is None or not env.get(key.env):
            continue
        source = f"env {key.env}"
        assert key.parse is not None  # every key with a variable reads text
        values[key.name] = (_check(key.name, key.parse(env[key.env]), source, cwd), source)
    if env.get(QBIT_PASSWORD_ENV):
        source = f"env {QBIT_PASSWORD_ENV}"
        try:
            values["qbittorrent.password"] = (check_secret(env[QBIT_PASSWORD_ENV]), source)
        except Bad as bad:
            raise ConfigError(source, "qbittorrent.password", bad.message,
                              expected=bad.expected) from None
    for variable, (name, option) in PROVIDER_ENV.items():
        if not env.get(variable):
            continue
        source, dotted = f"env {variable}", f"providers.{name}.{option}"
        if name not in names:
            raise ConfigError(source, dotted, f"provider {name!r} is not registered",
                              expected="a registered provider: " + ", ".join(names))
        try:
            secret = check_secret(env[variable])
        except Bad as bad:
            raise ConfigError(source, dotted, bad.message, expected=bad.expected) from None
        if providers is None:  # no [providers] table: the key adds to the default set
            providers = _default_providers()
        providers.setdefault(name, {})[option] = (secret, source)
    return providers


def _from_flags(flags: Mapping[str, tuple[Any, str]], values: _Sourced) -> None:
    cwd = Path.cwd()
    for key, (value, flag) in flags.items():
        if key == "config":
            continue
        source = f"flag {flag}"
        spec = KEYS.get(key)
        if spec is None:
            raise _unknown(source, key, set(KEYS) | {"config"})
        raw = os.fspath(value) if isinstance(value, os.PathLike) else value
        if isinstance(raw, str) and spec.parse is not None:
            raw = spec.parse(raw)
        values[key] = (_check(key, raw, source, cwd), source)


def _build(
    path: Path,
    path_source: str,
    values: _Sourced,
    providers: dict[str, dict[str, tuple[Any, str]]],
    registry: ProviderRegistry | None,
) -> Settings:
    sources = {"config": str(path) if path_source == "default" else path_source}
    sources.update({key: values[key][1] if key in values else "default" for key in KEYS})
    options: dict[str, dict[str, Any]] = {}
    for name, given in providers.items():
        options[name] = {option: item for option, (item, _) in given.items()}
        sources.update({f"providers.{name}.{option}": src for option, (_, src) in given.items()})

    def got(key: str) -> dict[str, Any]:
        return {key.rpartition(".")[2]: values[key][0]} if key in values else {}

    def table(prefix: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key in KEYS:
            if key.startswith(prefix + "."):
                found.update(got(key))
        return found

    api = ApiSettings(**table("api"))
    if not api.auth and not is_loopback(api.host):
        raise ConfigError(
            sources["api.host"], "api.host",
            f"{api.host!r} is not a loopback address and api.auth is false "
            f"(set by {sources['api.auth']})",
            value=api.host,
            expected="127.0.0.1, ::1 or localhost while auth is off, or api.auth = true",
        )
    qbit = table("qbittorrent")
    categories = values.get("qbittorrent.categories", ((), "default"))[0]
    password = values.get("qbittorrent.password", (None, "default"))
    sources["qbittorrent.password"] = password[1]
    qbittorrent = QbitSettings(**qbit, categories=categories, password=password[0])
    names = (registry or default_registry()).names()
    for category in (None, *categories):
        wanted = qbittorrent.provider if category is None else category.provider
        if wanted is not None and wanted not in providers:
            key = "qbittorrent.provider" if category is None else (
                f"qbittorrent.categories.{category.name}.provider")
            raise ConfigError(sources.get(key, sources["config"]), key,
                              f"provider {wanted!r} is not configured",
                              value=wanted, expected="one of " + ", ".join(
                                  n for n in names if n in providers))
    top: dict[str, Any] = {}
    for key in KEYS:
        if "." not in key:
            top.update(got(key))
    return Settings(
        config_path=path,
        api=api,
        notify=NotifySettings(**table("notify")),
        qbittorrent=qbittorrent,
        providers=options,
        sources=sources,
        registry=registry,
        **top,
    )
