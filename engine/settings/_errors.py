"""ConfigError, and how a value is shown in an error or a listing without leaking a secret.

``ConfigError`` sits under ``ValidationError`` in the engine's exception tree::

    EngineError
     └── ValidationError
          └── ConfigError     a config file, environment variable or flag with a bad key or value
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from providers import ValidationError

__all__ = ["SECRET", "ConfigError", "is_secret_key", "mask", "mask_url", "show_value"]

#: What an error says in place of a secret's value.
SECRET = "<secret>"  # noqa: S105 - a placeholder, not a password

# The words that make an option a secret (api_token, api_key, client_secret, password).
_SECRET_WORDS = re.compile(r"token|key|secret|password", re.IGNORECASE)
_LONGEST_SHOWN = 80


def is_secret_key(key: str) -> bool:
    """True when the last part of the dotted ``key`` names a secret."""
    return bool(_SECRET_WORDS.search(key.rsplit(".", 1)[-1]))


def mask_url(text: str) -> str:
    """``text`` with the password of a URL's ``user:password@`` part replaced by ``***``."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
        if parts.password is None:
            return text
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<a URL that cannot be parsed>"


def mask(value: Any) -> Any:
    """A copy of ``value`` with secret keys' values as ``***`` and URL passwords hidden."""
    if isinstance(value, Mapping):
        return {
            key: "***" if is_secret_key(str(key)) and item is not None else mask(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(mask(item) for item in value)
    if isinstance(value, str):
        return mask_url(value)
    return value


def show_value(value: Any) -> str:
    """A short, secret-free rendering of a bad value for an error message."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, str):
        value = mask_url(value)
    text = repr(value)
    if len(text) > _LONGEST_SHOWN:
        text = text[: _LONGEST_SHOWN - 3] + "..."
    return text


class ConfigError(ValidationError):
    """A bad key or value in the config file, an environment variable or a flag.

    ``source`` says where it came from (the file's path, ``env DEBRID_API_PORT``,
    ``flag --port``), ``key`` (also ``field``) the dotted key (``api.port``; empty
    for a file that is not TOML at all). ``str()`` reads
    ``/x/config.toml: api.port: 'x' is not a port (expected an int 0-65535)``.
    The value of a secret key is never kept: ``value`` is ``"<secret>"`` then
    (and elsewhere, secrets inside ``value`` are masked as in ``config show``).
    """

    def __init__(
        self, source: str, key: str, message: str, *, value: Any = None, expected: str = ""
    ) -> None:
        value = SECRET if is_secret_key(key) and value is not None else mask(value)
        super().__init__(key, message, value=value, expected=expected)
        self.source = source
        self.key = key
        text = f"{source}: {key}: {message}" if key else f"{source}: {message}"
        if expected:
            text += f" (expected {expected})"
        self.args = (text,)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_config_error,
            (type(self), self.source, self.key, self.message, self.value, self.expected),
        )


def _rebuild_config_error(
    cls: type[ConfigError], source: str, key: str, message: str, value: Any, expected: str
) -> ConfigError:
    return cls(source, key, message, value=value, expected=expected)


def mask_webhook(url: str) -> str:
    """A webhook as shown: its scheme, host and port; the path and query (where
    services put their tokens, ``/services/T000/B000/XXXX``) masked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme}://{host}/{'***' if hidden else ''}"


def mask_command(argv: Sequence[str]) -> list[str]:
    """A command as shown: the program, its arguments masked (they may carry a
    token: ``--header "Authorization: Bearer ..."``)."""
    return [argv[0], *(["***"] * (len(argv) - 1))] if argv else []
