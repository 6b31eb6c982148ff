"""The exception tree of debrid-engine.

Every error the engine raises on purpose is an ``EngineError``::

    EngineError
     ├── ValidationError        bad input: names the field, the value and what was expected
     ├── InvalidTransition      a move the job state machine does not allow
     ├── ProviderError          anything a remote service (or its fake) did wrong
     ├── JobNotFound            no job with that id
     ├── UnknownProvider        no provider registered under that name
     ├── DuplicateProvider      a provider name registered twice
     ├── StoreError             the job store cannot be opened, read or written
     │    └── UnstorableValue   one change holds a value the database refuses
     ├── EngineNotRunning       a call on an engine that is not started (or already stopped)
     └── WaitTimeout            a blocking call ran out of time (also a ``TimeoutError``)

The tree lives in ``providers`` because that package imports nothing else of the
project; ``engine`` re-exports every name. ``ErrorRule`` is the one shape of the
real providers' error tables: how a service's error answer becomes a
``ProviderError``.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "DuplicateProvider",
    "EngineError",
    "EngineNotRunning",
    "ErrorRule",
    "InvalidTransition",
    "JobNotFound",
    "ProviderError",
    "StoreError",
    "UnknownProvider",
    "UnstorableValue",
    "ValidationError",
    "WaitTimeout",
]


class EngineError(Exception):
    """Root of every error debrid-engine raises on purpose."""


class ValidationError(EngineError, ValueError):
    """Input that does not have the expected form.

    ``field`` is the dotted path of the offending key (``"select.min_size"``),
    ``expected`` a short description of what would have been accepted.
    """

    def __init__(self, field: str, message: str, *, value: Any = None, expected: str = "") -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.message = message
        text = f"{field}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds from ``args`` (the formatted text), which does not fit __init__.
        return (
            _rebuild_validation_error,
            (type(self), self.field, self.message, self.value, self.expected),
        )


def _rebuild_validation_error(
    cls: type[ValidationError], field: str, message: str, value: Any, expected: str
) -> ValidationError:
    return cls(field, message, value=value, expected=expected)


class InvalidTransition(EngineError):
    """A state change the job state machine does not allow."""

    def __init__(self, from_status: object, to_status: object, job_id: str | None = None) -> None:
        self.from_status = from_status
        self.to_status = to_status
        self.job_id = job_id
        where = f" for job {job_id}" if job_id else ""
        super().__init__(f"invalid transition {_label(from_status)} -> {_label(to_status)}{where}")

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds from ``args`` (the formatted text), which does not fit __init__.
        return (type(self), (self.from_status, self.to_status, self.job_id))


def _label(status: object) -> str:
    return str(getattr(status, "name", status))


class ProviderError(EngineError):
    """A failure reported by (or while talking to) a provider.

    ``code`` is a stable, upper-case name (``"BAD_TOKEN"``, ``"PROVIDER_UNAVAILABLE"``,
    ``"RATE_LIMITED"``...). ``retryable`` says whether trying again later may work;
    ``retry_after`` (seconds) is the provider's own hint of when. The message never
    holds a secret: providers build it from codes and public fields only.
    """

    def __init__(
        self,
        message: str,
        provider: str,
        code: str = "PROVIDER_ERROR",
        http_status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"[{provider}] {code}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (
                self.message,
                self.provider,
                self.code,
                self.http_status,
                self.retryable,
                self.retry_after,
            ),
        )


@attrs.frozen
class ErrorRule:
    """How one of a service's error answers surfaces as a ``ProviderError``.

    ``code`` is the engine's stable code, ``retryable`` whether trying again may
    help, ``retry_after`` the wait (seconds) to assume when the answer says none.
    """

    code: str
    retryable: bool
    retry_after: float | None = None


class JobNotFound(EngineError, KeyError):
    """No job with the given id exists in the store."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r}")

    def __str__(self) -> str:
        return f"no job with id {self.job_id!r}"


class UnknownProvider(EngineError, KeyError):
    """No provider is registered under the given name."""

    def __init__(self, name: str, known: tuple[str, ...] = ()) -> None:
        self.name = name
        self.known = known
        super().__init__(name)

    def __str__(self) -> str:
        known = ", ".join(self.known) or "none"
        return f"unknown provider {self.name!r} (registered: {known})"


class DuplicateProvider(EngineError):
    """A provider name was registered twice."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a provider named {name!r} is already registered")

    def __reduce__(self) -> tuple[Any, ...]:
        # The default would pass the formatted text back in as the name.
        return (type(self), (self.name,))


class StoreError(EngineError):
    """The job store cannot be opened, read or written (corrupt, locked, unreachable)."""


class UnstorableValue(StoreError):
    """One change holds a value the database refuses (a lone surrogate, a NUL, a huge int).

    Unlike any other ``StoreError``, trying again cannot help: the engine drops
    that change alone (and fails its replies) rather than hold every other one.
    """


class EngineNotRunning(EngineError):
    """The engine is not started, or has been stopped."""


class WaitTimeout(EngineError, TimeoutError):
    """A blocking engine call did not finish within its timeout."""
