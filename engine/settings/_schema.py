"""The config file's keys: each one's checks, its environment variable and how text becomes it.

One ``Key`` per scalar key (``api.port``...), in the order ``config show`` lists
them. A check takes a value as TOML (or a flag) gives it and returns the
normalised value, or raises ``Bad``; ``parse`` first turns the text of an
environment variable or a string flag into such a value, and leaves text it
cannot read as it is so that the check names what was wrong with it.
Provider tables (``[providers.<name>]``) are free-form options, apart from the two
keys the engine reads itself (``ENGINE_PROVIDER_KEYS``).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from engine.settings._errors import SECRET, show_value

__all__ = [
    "CATEGORY_KEYS",
    "ENGINE_PROVIDER_KEYS",
    "KEYS",
    "PROVIDER_ENV",
    "QBIT_PASSWORD_ENV",
    "TABLES",
    "Bad",
    "Key",
    "check_secret",
    "is_loopback",
]


class Bad(Exception):
    """A value a check refused: what is wrong, and what would have been accepted."""

    def __init__(self, message: str, expected: str) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected


Check = Callable[[Any, Path], Any]


@attrs.frozen
class Key:
    """One scalar key: its dotted name, check, text parser and environment variable."""

    name: str
    check: Check
    parse: Callable[[str], Any] | None = None  # None: the key takes no text (a list)
    env: str | None = None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- text parsers (environment variables, string flags) ---------------------------------
def _text(text: str) -> Any:
    return text


def _int_text(text: str) -> Any:
    return int(text) if re.fullmatch(r"\s*[+-]?\d+\s*", text) else text


def _number_text(text: str) -> Any:
    if re.fullmatch(r"\s*[+-]?\d+\s*", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _bool_text(text: str) -> Any:
    return {"true": True, "false": False}.get(text.strip().lower(), text)


# -- checks ------------------------------------------------------------------------------
def _nonempty_string(value: Any, what: str, expected: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"{show_value(value)} is not {what}", expected)
    return value


def _path(value: Any, base: Path) -> Path:
    """``~`` expanded; a relative path is taken from ``base`` (the config file's directory)."""
    text = _nonempty_string(value, "a path", "a non-empty path string")
    if "\0" in text:
        raise Bad(f"{show_value(value)} is not a path", "a path without NUL characters")
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _database(value: Any, base: Path) -> str:
    text = _nonempty_string(value, "a database path or URL", "a path or a URL")
    if text == ":memory:" or "://" in text:
        return text
    return str(_path(text, base))


def _each(value: Any, check: Check, base: Path, expected: str) -> tuple[Any, ...]:
    """``check`` applied to every item of the list ``value``; its errors expect ``expected``."""
    if not isinstance(value, list | tuple):
        raise Bad(f"{show_value(value)} is not a list", expected)
    try:
        return tuple(check(item, base) for item in value)
    except Bad as bad:
        raise Bad(bad.message, expected) from None


def _paths(value: Any, base: Path) -> tuple[Path, ...]:
    return _each(value, _path, base, "a list of directory paths")


def _bandwidth(value: Any, _base: Path) -> float | None:
    if not _number(value) or not math.isfinite(value) or value < 0:
        raise Bad(f"{show_value(value)} is not a bandwidth cap",
                  "a number of bytes per second >= 0, 0 for none")
    return float(value) if value > 0 else None


def _seconds(value: Any, _base: Path) -> float:
    if not _number(value) or not math.isfinite(value) or value <= 0:
        raise Bad(f"{show_value(value)} is not a duration", "a number of seconds above 0")
    return float(value)


def _choice(*options: str) -> Check:
    expected = " or ".join(repr(option) for option in options)

    def check(value: Any, _base: Path) -> str:
        if not isinstance(value, str) or value.strip().lower() not in options:
            raise Bad(f"{show_value(value)} is not a valid choice", expected)
        return value.strip().lower()

    return check


def _host(value: Any, _base: Path) -> str:
    if not isinstance(value, str) or not value or re.search(r"[\s/@]", value):
        raise Bad(f"{show_value(value)} is not a host", "a host name or an IP address")
    return value


def _hosts(value: Any, base: Path) -> tuple[str, ...]:
    return _each(value, _host, base, "a list of host names")


def _port(value: Any, _base: Path) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise Bad(f"{show_value(value)} is not a port", "an int 0-65535")
    return value


def _bool(value: Any, _base: Path) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"{show_value(value)} is not a boolean", "true or false")
    return value


def _int_at_least(low: int) -> Check:
    def check(value: Any, _base: Path) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise Bad(f"{show_value(value)} is not a valid count", f"an int >= {low}")
        return value

    return check


def _origins(value: Any, _base: Path) -> tuple[str, ...]:
    expected = "a list of origins like 'https://example.com:8443'"
    if not isinstance(value, list | tuple):
        raise Bad(f"{show_value(value)} is not a list", expected)
    for item in value:
        parts = _url_parts(item)
        if parts is None or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
            raise Bad(f"{show_value(item)} is not an origin", expected)
    return tuple(value)


def _url_parts(value: Any) -> Any:
    """The split http(s) URL ``value``, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts


def _webhooks(value: Any, _base: Path) -> tuple[str, ...]:
    expected = "a list of http:// or https:// URLs"
    if not isinstance(value, list | tuple):
        raise Bad(f"{show_value(value)} is not a list", expected)
    for item in value:
        if _url_parts(item) is None:
            raise Bad(f"{show_value(item)} is not an http(s) URL", expected)
    return tuple(value)


def _command(value: Any, _base: Path) -> tuple[str, ...]:
    expected = "a list of strings, the program first (an empty list for none)"
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise Bad(f"{show_value(value)} is not a command", expected)
    if value and not value[0].strip():
        raise Bad("the program (the first item) is empty", expected)
    return tuple(value)


def check_secret(value: Any) -> str:
    """A secret given in the environment: a string without whitespace (never shown)."""
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"{SECRET} is empty", "a non-empty key")
    value = value.strip()
    if re.search(r"\s", value):
        raise Bad(f"{SECRET} holds whitespace", "a key without spaces or line breaks")
    return str(value)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (brackets allowed)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _matching(pattern: str, what: str, expected: str, *, empty: bool = False) -> Check:
    """A check that the value is text matching ``pattern`` (or "" when ``empty``)."""

    def check(value: Any, _: Path) -> Any:
        if empty and value == "":
            return ""
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise Bad(f"{show_value(value)} is not {what}", expected)
        return value

    return check


_URL_PATH = r"(/[A-Za-z0-9._~-]+)+"
_prefix = _matching(_URL_PATH, "a URL path prefix", "like /qbittorrent, or empty", empty=True)
_api_path = _matching(_URL_PATH, "an API path", "like /api/v3")
_api_version = _matching(r"2\.\d{1,2}(\.\d{1,2})?", "a Web API version", "a version like 2.9.3")
_name = _matching(r"[^\s:]+", "a name", "a non-empty name without spaces or ':'")
_env_name = _matching(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name",
                      "a name like SONARR_API_KEY")


def _arr_url(value: Any, _: Path) -> Any:
    parts = _url_parts(value)
    if parts is None or parts.query or parts.fragment or "@" in parts.netloc:
        raise Bad(f"{show_value(value)} is not an *arr app's URL", "like http://127.0.0.1:8989")
    return str(value).rstrip("/")


#: The keys of a ``[qbittorrent.categories.<name>]`` table.
CATEGORY_KEYS: dict[str, Check] = {
    "save_path": _path,
    "provider": _name,
    "arr_url": _arr_url,
    "arr_api_key_env": _env_name,
    "arr_api_path": _api_path,
}

KEYS: dict[str, Key] = {
    key.name: key
    for key in (
        Key("database", _database, _text, "DEBRID_DATABASE"),
        Key("download_dir", _path, _text, "DEBRID_DOWNLOAD_DIR"),
        Key("download_roots", _paths),
        Key("bandwidth_bps", _bandwidth, _number_text, "DEBRID_BANDWIDTH_BPS"),
        Key("poll_interval", _seconds, _number_text, "DEBRID_POLL_INTERVAL"),
        Key("log_format", _choice("console", "json"), _text, "DEBRID_LOG_FORMAT"),
        Key("log_level", _choice("debug", "info", "warning", "error"), _text,
            "DEBRID_LOG_LEVEL"),
        Key("api.host", _host, _text, "DEBRID_API_HOST"),
        Key("api.port", _port, _int_text, "DEBRID_API_PORT"),
        Key("api.auth", _bool, _bool_text, "DEBRID_API_AUTH"),
        Key("api.allowed_hosts", _hosts),
        Key("api.cors_origins", _origins),
        Key("api.max_body_bytes", _int_at_least(1), _int_text),
        Key("notify.on_complete_command", _command),
        Key("notify.on_failure_command", _command),
        Key("notify.on_complete_webhooks", _webhooks),
        Key("notify.on_failure_webhooks", _webhooks),
        Key("notify.timeout", _seconds, _number_text),
        Key("notify.retries", _int_at_least(0), _int_text),
        Key("qbittorrent.enabled", _bool, _bool_text, "DEBRID_QBITTORRENT_ENABLED"),
        Key("qbittorrent.username", _name, _text, "DEBRID_QBITTORRENT_USERNAME"),
        Key("qbittorrent.save_path", _path, _text),
        Key("qbittorrent.provider", _name, _text),
        Key("qbittorrent.prefix", _prefix, _text),
        Key("qbittorrent.api_version", _api_version, _text),
        Key("qbittorrent.session_timeout", _seconds, _number_text),
        Key("qbittorrent.arr_from_login", _bool, _bool_text),
    )
}

#: The tables of the file (``providers`` is checked apart: its keys are provider names).
TABLES = ("api", "notify", "providers", "qbittorrent")

#: The environment variable of the qBittorrent face's password (a secret: never in the file).
QBIT_PASSWORD_ENV = "DEBRID_QBITTORRENT_PASSWORD"  # noqa: S105 - a variable name

#: The keys of a provider table that the engine reads (the rest are the provider's options).
ENGINE_PROVIDER_KEYS: dict[str, Check] = {"enabled": _bool, "poll_interval": _seconds}

#: Environment variables that give a provider its key (and so configure that provider).
PROVIDER_ENV: dict[str, tuple[str, str]] = {
    "DEBRID_REALDEBRID_API_TOKEN": ("realdebrid", "api_token"),
    "DEBRID_TORBOX_API_KEY": ("torbox", "api_key"),
}
