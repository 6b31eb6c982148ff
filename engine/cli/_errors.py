"""The command's exit codes, and ``CliError``: one failure, as text or as JSON.

Every way a command can fail ends as a ``CliError`` carrying the exit code of
the contract (docs/faces.md, "CLI exit codes") and the control API's error
shape (``code``, ``message``, ``field``), so a failure reads the same whether
it came from the daemon over HTTP or from an engine opened in this process.
"""

from __future__ import annotations

from typing import Any

from providers import (
    EngineError,
    EngineNotRunning,
    InvalidTransition,
    JobNotFound,
    ProviderError,
    StoreError,
    UnknownProvider,
    ValidationError,
    WaitTimeout,
)

__all__ = [
    "BAD_INPUT",
    "CONFLICT",
    "EXIT_CODES_HELP",
    "FAILED",
    "NOT_FOUND",
    "OK",
    "UNREACHABLE",
    "CliError",
    "from_engine_error",
]

#: Done (or, with ``--wait``, every job COMPLETED).
OK = 0
#: A job FAILED or was CANCELLED (with ``--wait``), or the provider refused.
FAILED = 1
#: Bad input: usage, validation, config.
BAD_INPUT = 2
#: The daemon asked for does not answer, or the database is another process's.
UNREACHABLE = 3
#: No such job or provider.
NOT_FOUND = 4
#: A transition the job's state does not allow (cancel a finished job...).
CONFLICT = 5

EXIT_CODES_HELP = """\
exit codes:
  0  done (with --wait: every job COMPLETED)
  1  a job FAILED or was CANCELLED (with --wait), or the provider refused
  2  bad input: usage, validation, config
  3  the daemon asked for (--daemon) does not answer, or the database is
     owned by another engine process and no daemon answers
  4  not found (unknown job id or provider)
  5  conflict (invalid transition, e.g. cancel a completed job)

Commands talk to the daemon at --daemon, else $DEBRID_DAEMON_URL, else the
config's api.host:api.port when it answers; otherwise they open the database."""

# The owner lock's refusal (persistence/_owner.py) is a plain StoreError; its text says so.
_OWNED_MARK = "is in use by"


class CliError(Exception):
    """A command failed: ``exit_code`` for the shell, ``code``/``message``/``field`` for people."""

    def __init__(
        self, exit_code: int, code: str, message: str, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.code = code
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """``{"error": {code, message, field}}``, as the control API answers."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}

    def __str__(self) -> str:
        return self.message


def is_owner_refusal(error: StoreError) -> bool:
    """True when ``error`` is the owner lock's refusal: another engine holds the database."""
    return _OWNED_MARK in str(error)


def from_engine_error(error: EngineError) -> CliError:
    """The ``CliError`` for an engine exception raised in this process."""
    match error:
        case ValidationError():
            return CliError(BAD_INPUT, "validation", str(error), error.field)
        case JobNotFound():
            return CliError(NOT_FOUND, "not_found", str(error))
        case UnknownProvider():
            return CliError(NOT_FOUND, "unknown_provider", str(error), "provider")
        case InvalidTransition():
            return CliError(CONFLICT, "invalid_transition", str(error))
        case ProviderError():
            return CliError(FAILED, "provider_error", str(error))
        case WaitTimeout():
            return CliError(FAILED, "timeout", str(error))
        case StoreError() if is_owner_refusal(error):
            return CliError(
                UNREACHABLE,
                "database_owned",
                f"{error}; no daemon answers: start one with `debrid serve`, or point "
                "--daemon at the one that owns it",
            )
        case StoreError():
            return CliError(FAILED, "store_error", str(error))
        case EngineNotRunning():
            return CliError(UNREACHABLE, "not_running", str(error))
        case _:
            return CliError(FAILED, "engine_error", str(error))
