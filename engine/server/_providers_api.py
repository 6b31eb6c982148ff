"""Health and providers: ``/api/health``, ``/api/providers``, ``/api/providers/{name}/test``.

Both read ``Engine.health()``. The report names the store; a database URL's
password is masked before it leaves (``postgresql://user:***@host/db``), in
every string of the report.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.server._jobs_api import call, invalid

__all__ = ["mask_store_password", "provider_routes"]


def _passwords(engine: Any) -> list[str]:
    try:
        parts = urlsplit(str(engine.database))
    except ValueError:
        return []
    return [parts.password] if parts.password else []


def mask_store_password(data: Any, secrets: list[str]) -> Any:
    """``data`` with each of ``secrets`` replaced by ``***`` in every string."""
    if not secrets:
        return data
    if isinstance(data, str):
        for secret in secrets:
            data = data.replace(secret, "***")
        return data
    if isinstance(data, dict):
        return {k: mask_store_password(v, secrets) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_store_password(v, secrets) for v in data]
    return data


async def health(request: Request) -> JSONResponse:
    """``GET /api/health``: 200 when ready (``?live=1``: when live), else 503, with the report."""
    live_only = request.query_params.get("live", "0").strip().lower()
    if live_only not in ("0", "1", "true", "false", ""):
        raise invalid("live", "must be 1 or 0")
    engine = request.app.state.engine
    report = await call(engine.health)
    good = report.live if live_only in ("1", "true") else report.ready
    body = mask_store_password(report.to_dict(), _passwords(engine))
    return JSONResponse(body, status_code=200 if good else 503)


async def providers(request: Request) -> JSONResponse:
    """``GET /api/providers``: each provider's state from the health report."""
    engine = request.app.state.engine
    report = await call(engine.health)
    listed = [attrs.asdict(p, recurse=True) for p in report.providers.values()]
    return JSONResponse({"providers": mask_store_password(listed, _passwords(engine))})


async def test_provider(request: Request) -> JSONResponse:
    """``POST /api/providers/{name}/test`` → ``{"result": TestConnectionResponse}``."""
    engine = request.app.state.engine
    result = await call(engine.test_connection, request.path_params["name"])
    return JSONResponse({"result": attrs.asdict(result, recurse=True)})


def provider_routes() -> list[Route]:
    """The routes of this module."""
    return [
        Route("/api/health", health, methods=["GET"]),
        Route("/api/providers", providers, methods=["GET"]),
        Route("/api/providers/{name}/test", test_provider, methods=["POST"]),
    ]
