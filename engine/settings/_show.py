"""What ``debrid config show`` prints: every effective key, its value and its source.

Secrets never appear: a secret option (a key holding token, key, secret or
password) shows as ``***`` when set and ``(unset)`` when not, and a URL's password
as ``***``. For Real-Debrid and TorBox the row of their key also tells whether
the keys file holds one.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine._config import default_database_path
from engine.settings._errors import is_secret_key, mask_command, mask_url, mask_webhook
from engine.settings._schema import KEYS

if TYPE_CHECKING:
    from engine.settings._model import Settings

__all__ = ["SET", "UNSET", "describe", "render_text"]

SET = "***"
UNSET = "(unset)"

# The option of a provider that the keys file may hold instead (as ``<name>.<option>``),
# and the stored names that count as having it (Real-Debrid's OAuth set does).
_STORED: dict[str, tuple[str, tuple[str, ...]]] = {
    "realdebrid": ("api_token", ("api_token", "access_token", "refresh_token")),
    "torbox": ("api_key", ("api_key",)),
}


def _plain(value: Any) -> Any:
    """A JSON-ready copy of ``value``, with secret options and URL passwords masked."""
    if isinstance(value, Mapping):
        return {
            str(key): _secret(item) if is_secret_key(str(key)) else _plain(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def _secret(value: Any) -> str:
    return UNSET if value is None or value == "" else SET


def _value(settings: Settings, key: str) -> Any:
    target: Any = settings
    for part in key.split("."):
        target = getattr(target, part)
    if key == "database" and target is None:
        return str(default_database_path())
    return target


def describe(settings: Settings) -> dict[str, dict[str, Any]]:
    """See ``Settings.describe``."""
    sources = settings.sources
    rows: dict[str, dict[str, Any]] = {
        "config": {"value": str(settings.config_path), "source": sources.get("config", "default")}
    }
    providers_shown = False
    for key in KEYS:
        if key.startswith("notify.") and not providers_shown:
            rows.update(_provider_rows(settings))  # between [api] and [notify], as in the file
            providers_shown = True
        value = _plain(_value(settings, key))
        if key.endswith("_webhooks"):
            value = [mask_webhook(url) for url in value]
        elif key.endswith("_command"):
            value = mask_command(value)
        rows[key] = {"value": value, "source": sources.get(key, "default")}
    return rows


def _provider_rows(settings: Settings) -> dict[str, dict[str, Any]]:
    sources = settings.sources
    stored: Mapping[str, str] | None = None
    rows: dict[str, dict[str, Any]] = {}
    for name in sorted(settings.providers):
        options = settings.providers[name]
        prefix = f"providers.{name}."
        rows[prefix + "enabled"] = {
            "value": options.get("enabled", True),
            "source": sources.get(prefix + "enabled", "default"),
        }
        inherited = sources.get("poll_interval", "default")  # the top-level key's
        rows[prefix + "poll_interval"] = {
            "value": options.get("poll_interval", settings.poll_interval),
            "source": sources.get(prefix + "poll_interval", inherited),
        }
        for option in sorted(set(options) - {"enabled", "poll_interval"}):
            item = options[option]
            rows[prefix + option] = {
                "value": _secret(item) if is_secret_key(option) else _plain(item),
                "source": sources.get(prefix + option, "default"),
            }
        if name in _STORED and _STORED[name][0] not in options:
            option, names = _STORED[name]
            if stored is None:
                stored = settings.secret_store().snapshot()
            held = any(stored.get(f"{name}.{key}") for key in names)
            rows[prefix + option] = {
                "value": SET if held else UNSET,
                "source": str(settings.secrets_path) if held else "default",
            }
    return rows


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def render_text(settings: Settings) -> str:
    """See ``Settings.render_text``."""
    rows = [("KEY", "VALUE", "SOURCE")]
    rows += [(key, _text(row["value"]), row["source"]) for key, row in describe(settings).items()]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [f"{key:<{widths[0]}}  {value:<{widths[1]}}  {source}" for key, value, source in rows]
    return "\n".join(lines) + "\n"
