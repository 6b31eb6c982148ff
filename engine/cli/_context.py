"""What every command starts from: its arguments, its output, the settings and a backend.

The backend is chosen once per run: the daemon named by ``--daemon`` (it must
answer, else exit 3), else the one at ``$DEBRID_DAEMON_URL`` or the config's
``api.host:api.port`` if it answers ``/api/health`` within a second, else the
engine opened here on the database.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from engine.cli._errors import BAD_INPUT, UNREACHABLE, CliError
from engine.cli._output import Output

if TYPE_CHECKING:
    from engine.cli._backend import Backend
    from engine.settings import Settings

__all__ = ["DAEMON_ENV", "Context"]

#: Where the command looks for a daemon when ``--daemon`` is not given.
DAEMON_ENV = "DEBRID_DAEMON_URL"

# Addresses a daemon binds to that a client cannot connect to as such.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


class Context:
    """One run of the command: parsed ``args``, ``output``, and lazily the settings and backend."""

    def __init__(self, args: argparse.Namespace, output: Output,
                 flags: dict[str, tuple[Any, str]] | None = None) -> None:
        self.args = args
        self.output = output
        self._flags = flags or {}
        self._settings: Settings | None = None
        self._backend: Backend | None = None

    def settings(self) -> Settings:
        """The effective settings (config file < environment < flags); bad ones exit 2."""
        if self._settings is None:
            from engine.settings import ConfigError, load_settings  # noqa: PLC0415

            flags = {
                "config": (getattr(self.args, "config", None), "--config"),
                "database": (getattr(self.args, "database", None), "--database"),
                **self._flags,
            }
            try:
                self._settings = load_settings(flags)
            except ConfigError as error:
                raise CliError(BAD_INPUT, "config", str(error), error.key or None) from error
        return self._settings

    def backend(self) -> Backend:
        """The daemon over HTTP if one answers, else the engine on the database."""
        if self._backend is None:
            self._backend = self._choose()
        return self._backend

    def _choose(self) -> Backend:
        from engine.cli._http import HttpBackend, daemon_answers  # noqa: PLC0415
        from engine.cli._local import LocalBackend  # noqa: PLC0415

        settings = self.settings()
        asked = getattr(self.args, "daemon", None)
        url = asked or os.environ.get(DAEMON_ENV, "").strip() or self._configured_url(settings)
        if url is not None:
            url = url.rstrip("/")
            if daemon_answers(url):
                from engine.cli._http import check_proof  # noqa: PLC0415
                from engine.settings import api_token  # noqa: PLC0415

                token = api_token(settings) if settings.api.auth else None
                if token is not None:
                    check_proof(url, token)  # before the token is ever sent there
                return HttpBackend(url, token)
        if asked:
            raise CliError(UNREACHABLE, "unreachable", f"no daemon answers at {asked}")
        return LocalBackend(settings.engine_config())

    @staticmethod
    def _configured_url(settings: Settings) -> str | None:
        host, port = settings.api.host, settings.api.port
        if not port:
            return None  # port 0: the daemon takes any free port, nobody knows which
        host = _ANY_ADDRESS.get(host, host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def close(self) -> None:
        """Let go of the backend, if one was opened."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()
