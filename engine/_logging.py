"""Log output for the command line and the daemon: console key-value lines or JSON.

Embedding applications do not need this: the engine's loggers (``debrid.*``) go
through the standard ``logging`` module and follow the application's setup.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import IO, Any

__all__ = ["JsonFormatter", "configure_logging"]

_HANDLER_MARK = "_debrid_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and its fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``."""
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "debrid_event", record.getMessage()),
        }
        data.update(getattr(record, "debrid_fields", {}) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(
    fmt: str = "console", level: str | int = "INFO", stream: IO[str] | None = None
) -> logging.Handler:
    """Send ``debrid.*`` (and pykka's) log lines to ``stream`` (stderr by default).

    Calling it again replaces the handler it installed before.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    for name in ("debrid", "pykka"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level if isinstance(level, int) else level.upper())
        logger.propagate = False
    return handler
