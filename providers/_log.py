"""Structured logging that goes through the standard library.

Loggers from ``get_logger`` are structlog loggers wrapped around stdlib loggers
named ``debrid.*``: an embedding application's logging configuration (levels,
handlers) applies to them, and nothing here touches structlog's global
configuration. Each line is an event name with key-value context; values under
secret-looking keys are masked before anything is formatted.

The HTTP libraries log too: httpx writes every request's full URL at INFO, and
credentials travel in some query strings (TorBox's requestdl ``token``,
Real-Debrid's device ``code``). ``redact_http_logs`` puts one filter on their
loggers that masks such query values in every record; the HTTP layer installs
it whenever it builds a client, so it is there before the first request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from providers._bounded import BoundedDict

__all__ = [
    "HTTP_LOGGERS",
    "SECRET_KEYS",
    "EventLogger",
    "RedactUrlSecrets",
    "WarnOnce",
    "get_logger",
    "mask_url_secrets",
    "redact_http_logs",
    "redact_secrets",
]

#: Keys whose values are never written out.
SECRET_KEYS = re.compile(r"(token|secret|password|api_?key|authorization|cookie)", re.IGNORECASE)
#: A query parameter that carries a credential, with its value: a secret-looking
#: name, or ``code`` (an OAuth device or authorization code: whoever holds
#: Real-Debrid's can fetch the user's client pair and tokens).
_URL_SECRET = re.compile(
    r"(?i)([?&;](?:code|device_code|[\w.%-]*(?:token|secret|password|api_?key)[\w.%-]*)=)"
    r"[^&;#\s\"'<>]*"
)
#: The loggers of httpx and httpcore (httpcore's are per module, and a filter on a
#: parent logger never sees its children's records).
HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask the value of every key that looks like it holds a secret."""
    for key in list(event_dict):
        if key != "event" and SECRET_KEYS.search(key):
            event_dict[key] = "***"
    return event_dict


def mask_url_secrets(text: str) -> str:
    """``text`` with the value of every credential-carrying query parameter masked."""
    return _URL_SECRET.sub(r"\1***", text) if "=" in text else text


class RedactUrlSecrets(logging.Filter):
    """Masks credentials in the query strings of a record's message and arguments.

    The record keeps its shape (its format string and arguments), so handlers
    format it as before; an argument that held a secret (an ``httpx.URL``)
    becomes its masked text. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; always True."""
        if isinstance(record.msg, str):
            record.msg = mask_url_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _masked(arg) for key, arg in record.args.items()}
        return True


def _masked(arg: Any) -> Any:
    if isinstance(arg, int | float | bool) or arg is None:
        return arg
    text = str(arg)
    masked = mask_url_secrets(text)
    return arg if masked == text else masked


_REDACTION = RedactUrlSecrets()


def redact_http_logs() -> None:
    """Put the one ``RedactUrlSecrets`` filter on httpx's and httpcore's loggers.

    Idempotent and cheap: the HTTP layer calls it for every client it builds, so
    the filter is there before any request, and back if a logging configuration
    cleared the loggers' filters meanwhile.
    """
    for name in HTTP_LOGGERS:
        logging.getLogger(name).addFilter(_REDACTION)  # addFilter skips one already there


def _to_stdlib(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    # The message is readable under any formatter; the dict rides along so that
    # the engine's own formatters (console, JSON) can render it structured.
    event = str(event_dict.pop("event", ""))
    exc_info = event_dict.pop("exc_info", None)
    fields = " ".join(f"{k}={_short(v)}" for k, v in event_dict.items())
    message = f"{event} {fields}" if fields else event
    kwargs: dict[str, Any] = {"extra": {"debrid_event": event, "debrid_fields": dict(event_dict)}}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (message,), kwargs


def _short(value: Any) -> str:
    text = str(value)
    if " " in text or not text:
        text = repr(text)
    return text


class EventLogger:
    """A structlog logger that checks the stdlib level before doing any work.

    Hot paths log every transition; when the level is off, a call costs one
    ``isEnabledFor`` and nothing is formatted.
    """

    __slots__ = ("_bound", "_std")

    def __init__(self, name: str) -> None:
        self._std = logging.getLogger(name)
        self._bound: Any = structlog.wrap_logger(
            self._std,
            processors=[
                structlog.contextvars.merge_contextvars,
                redact_secrets,
                _to_stdlib,
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
        )

    def enabled(self, level: int) -> bool:
        """Whether a line at ``level`` would be written (check before costly arguments)."""
        return self._std.isEnabledFor(level)

    def debug(self, event: str, **fields: Any) -> None:
        """Log ``event`` at DEBUG."""
        if self._std.isEnabledFor(logging.DEBUG):
            self._bound.debug(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at INFO."""
        if self._std.isEnabledFor(logging.INFO):
            self._bound.info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log ``event`` at WARNING."""
        if self._std.isEnabledFor(logging.WARNING):
            self._bound.warning(event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR."""
        if self._std.isEnabledFor(logging.ERROR):
            self._bound.error(event, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR with the exception being handled."""
        if self._std.isEnabledFor(logging.ERROR):
            self._bound.exception(event, **fields)


def get_logger(name: str) -> EventLogger:
    """A logger for ``name`` (a ``debrid.*`` stdlib logger underneath)."""
    return EventLogger(name)


class WarnOnce:
    """Logs ``event`` at WARNING once for each distinct value of ``field``.

    For words a service answers that a table does not know (a new state): said
    once, not on every poll. The last ``limit`` values are remembered, so a
    server that invents a new word per answer costs bounded memory, and at worst
    a line again for a word seen long ago.
    """

    __slots__ = ("_context", "_event", "_field", "_log", "_seen")

    def __init__(
        self, log: EventLogger, event: str, field: str, *, limit: int = 1024, **context: Any
    ) -> None:
        self._log = log
        self._event = event
        self._field = field
        self._context = context
        self._seen: BoundedDict[str, None] = BoundedDict(limit)

    def __call__(self, value: str) -> None:
        """Warn about ``value`` unless it was warned about already."""
        if value not in self._seen:
            self._seen[value] = None
            self._log.warning(self._event, **self._context, **{self._field: value})
