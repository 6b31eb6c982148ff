"""Every failure of the control API as ``{"error": {"code", "message", "field"}}``.

Engine errors map to the status table of ``docs/faces.md``; anything else is
logged here and answered ``500 internal`` without its details: an answer never
holds a traceback, a path of the code or a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from providers._log import get_logger

__all__ = [
    "ApiError",
    "BodyTooLarge",
    "CatchAll",
    "engine_error",
    "error_body",
    "error_response",
    "exception_handlers",
]

log = get_logger("debrid.server")


class ApiError(Exception):
    """A refusal an endpoint raises: status, code, message and the field it is about."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        super().__init__(message)


class BodyTooLarge(ApiError):
    """The request body went past ``max_body_bytes`` while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "too_large", f"request body above {limit} bytes")


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The one shape of an error answer."""
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON error answer."""
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


def validation_field(error: ValidationError, prefix: str | None) -> str:
    """``error.field`` under ``prefix`` (payload fields are answered as ``payload.x``)."""
    if prefix is None or error.field == prefix or error.field.startswith(prefix + "."):
        return error.field
    return f"{prefix}.{error.field}"


def engine_error(error: EngineError, *, field_prefix: str | None = None) -> ApiError:
    """The status, code and message for an ``EngineError`` (see the module docstring)."""
    match error:
        case ValidationError():
            return ApiError(422, "validation", str(error), validation_field(error, field_prefix))
        case JobNotFound():
            return ApiError(404, "not_found", str(error))
        case UnknownProvider():
            return ApiError(404, "unknown_provider", str(error))
        case InvalidTransition():
            return ApiError(409, "invalid_transition", str(error))
        case WaitTimeout():
            return ApiError(504, "timeout", "the engine did not answer in time")
        case EngineNotRunning():
            return ApiError(503, "not_running", "the engine is stopped or failing")
        case StoreError():
            return ApiError(503, "not_running", "the job store is unreachable")
        case ProviderError():
            # Providers build their messages from codes and public fields only.
            return ApiError(502, "provider_error", str(error))
        case _:
            log.error("engine_error_unmapped", error_type=type(error).__name__)
            return ApiError(500, "internal", "internal error")


def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field)


def _engine_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    return _api_error(_, engine_error(exc))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "validation"}


def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = 422 if exc.status_code == 400 else exc.status_code
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = {404: "no such route", 405: "method not allowed"}.get(
        exc.status_code, "bad request"
    )
    field = "body" if exc.status_code == 400 else None
    return error_response(status, code, message, field, headers=exc.headers)


def _internal(request: Request, exc: Exception) -> Response:
    log.error(
        "request_failed",
        method=request.method,
        path=request.url.path,
        error_type=type(exc).__name__,
    )
    return error_response(500, "internal", "internal error")


class CatchAll:
    """Innermost layer: an unexpected exception is logged and answered ``500 internal``.

    Starlette's own last-resort handler answers too, then re-raises for the server
    to log the whole traceback; this answers once and logs it here, as an event.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            log.error("request_failed", method=scope.get("method"), path=scope.get("path"),
                      error_type=type(exc).__name__, exc_info=True)
            if not started:
                await error_response(500, "internal", "internal error")(scope, receive, send)


def exception_handlers() -> dict[Any, Any]:
    """The handlers ``create_app`` installs (``Exception`` catches the rest)."""
    return {
        ApiError: _api_error,
        EngineError: _engine_error,
        HTTPException: _http_error,
        Exception: _internal,
    }
