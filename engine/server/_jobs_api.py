"""The job routes: create (JSON or a .torrent upload), read, list, cancel, retry, bulk, clear.

Every engine call blocks (it asks the actors, with timeouts), so each runs on a
worker thread with ``run_in_threadpool``; the event loop only parses and answers.
Query parameters and bodies are checked here and refused with 422 naming the
field; a payload's own fields are checked by ``create_job`` and answered as
``payload.<field>``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.server._errors import ApiError, engine_error, error_body
from engine.server._paths import inside
from providers import EngineError, Job, JobStatus

__all__ = ["MAX_BULK_IDS", "MAX_LIMIT", "SORT_COLUMNS", "job_routes", "resolve_download_dir"]

T = TypeVar("T")

SORT_COLUMNS = ("created_at", "updated_at", "status", "progress")
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_BULK_IDS = 1000
MAX_QUERY_TEXT = 500
BULK_ACTIONS = ("cancel", "retry", "delete")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no", "")


def invalid(field: str, message: str) -> ApiError:
    """A 422 ``validation`` refusal about ``field``."""
    return ApiError(422, "validation", f"{field}: {message}", field)


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking engine call on a worker thread."""
    return await run_in_threadpool(function, *args, **kwargs)


def job_answer(job: Job, status: int = 200) -> JSONResponse:
    """``{"job": Job}``."""
    return JSONResponse({"job": job.to_dict()}, status_code=status)


def resolve_download_dir(value: object, roots: Sequence[Path]) -> None:
    """Refuse a ``download_dir`` that does not resolve inside one of ``roots``.

    The path and the roots are resolved with every symlink followed, so a link
    inside a root that points elsewhere is refused too. Nothing is created.
    """
    field = "payload.download_dir"
    if not isinstance(value, str):
        return  # create_job names the wrong type
    if not value or "\x00" in value or not os.path.isabs(value):
        raise invalid(field, "must be an absolute path inside a download root")
    if inside(value, roots):
        return
    if not roots:
        raise invalid(field, "no download roots are configured: only the default dir is used")
    raise invalid(field, "outside the download roots")


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _roots(request: Request) -> tuple[Path, ...]:
    roots: tuple[Path, ...] = request.app.state.options.download_roots
    return roots


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("body", "not valid JSON") from None
    except RecursionError:
        raise invalid("body", "JSON nested too deeply") from None


async def _creation_request(request: Request) -> tuple[Any, Any]:
    """``(provider, payload)`` from a JSON body or a multipart upload."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _multipart_request(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object with provider and payload")
    unknown = sorted(set(body) - {"provider", "payload"})
    if unknown:
        raise invalid(unknown[0], "unknown key")
    if "payload" not in body:
        raise invalid("payload", "missing")
    return body.get("provider"), body["payload"]


async def _multipart_request(request: Request) -> tuple[Any, Any]:
    async with request.form(max_files=1, max_fields=10) as form:
        unknown = sorted(set(form.keys()) - {"provider", "payload", "torrent"})
        if unknown:
            raise invalid(unknown[0], "unknown field")
        provider = form.get("provider")
        raw_payload = form.get("payload")
        payload: Any = {}
        if raw_payload is not None:
            if not isinstance(raw_payload, str):
                raise invalid("payload", "must be JSON text, not a file")
            try:
                payload = json.loads(raw_payload) if raw_payload.strip() else {}
            except ValueError:
                raise invalid("payload", "not valid JSON") from None
            if not isinstance(payload, dict):
                raise invalid("payload", "must be a JSON object")
        torrent = form.get("torrent")
        if torrent is not None:
            if not isinstance(torrent, UploadFile):
                raise invalid("torrent", "must be a file (the .torrent's bytes)")
            data = await torrent.read()
            if "torrent" in payload:
                raise invalid("payload.torrent", "given twice (field and file)")
            payload["torrent"] = base64.b64encode(data).decode("ascii")
        return provider, payload


async def create_job(request: Request) -> JSONResponse:
    """``POST /api/jobs`` → 201 ``{"job": Job}``."""
    provider, payload = await _creation_request(request)
    if not isinstance(provider, str) or not provider:
        raise invalid("provider", "must be a provider name")
    if not isinstance(payload, dict):
        raise invalid("payload", "must be an object (a StartJobPayload)")
    if "download_dir" in payload:
        resolve_download_dir(payload["download_dir"], _roots(request))
    try:
        job = await call(_engine(request).create_job, provider, payload)
    except EngineError as error:
        raise engine_error(error, field_prefix="payload") from None
    return job_answer(job, 201)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise invalid(name, "must be true or false")


def _job_id(request: Request) -> str:
    job_id: str = request.path_params["job_id"]
    return job_id


async def get_job(request: Request) -> JSONResponse:
    """``GET /api/jobs/{id}`` (``?sync=true`` asks the provider first)."""
    sync = _flag(request, "sync")
    engine = _engine(request)
    function = engine.sync_job_status if sync else engine.get_job
    return job_answer(await call(function, _job_id(request)))


async def cancel_job(request: Request) -> JSONResponse:
    """``POST /api/jobs/{id}/cancel``."""
    return job_answer(await call(_engine(request).cancel_job, _job_id(request)))


async def retry_job(request: Request) -> JSONResponse:
    """``POST /api/jobs/{id}/retry``."""
    return job_answer(await call(_engine(request).retry_job, _job_id(request)))


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, f"must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise invalid(name, f"must be an integer from {low} to {high}")
    return value


def _statuses(request: Request) -> list[JobStatus] | None:
    raw = request.query_params.get("status")
    if raw is None or not raw.strip():
        return None
    statuses = []
    for part in raw.split(","):
        try:
            statuses.append(JobStatus(part.strip().lower()))
        except ValueError:
            known = ", ".join(s.value for s in JobStatus)
            raise invalid("status", f"{part.strip()!r} is not a status ({known})") from None
    return statuses


async def list_jobs(request: Request) -> JSONResponse:
    """``GET /api/jobs`` with filters, sort and paging → jobs, total, limit, offset."""
    statuses = _statuses(request)
    provider = request.query_params.get("provider") or None
    text = request.query_params.get("q") or None
    if text is not None and len(text) > MAX_QUERY_TEXT:
        raise invalid("q", f"longer than {MAX_QUERY_TEXT} characters")
    sort = request.query_params.get("sort") or "created_at"
    if sort not in SORT_COLUMNS:
        raise invalid("sort", f"must be one of {', '.join(SORT_COLUMNS)}")
    order = (request.query_params.get("order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise invalid("order", "must be asc or desc")
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 2**62)
    engine = _engine(request)

    def read() -> tuple[list[Job], int]:
        jobs = engine.list_jobs(
            statuses, provider, limit, offset, text=text, order=sort,
            descending=order == "desc",
        )
        return jobs, engine.count_jobs(statuses, provider, text=text)

    jobs, total = await call(read)
    return JSONResponse(
        {"jobs": [j.to_dict() for j in jobs], "total": total, "limit": limit, "offset": offset}
    )


async def bulk(request: Request) -> JSONResponse:
    """``POST /api/jobs/bulk`` ``{"action", "ids"}`` → a result per id."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object with action and ids")
    unknown = sorted(set(body) - {"action", "ids"})
    if unknown:
        raise invalid(unknown[0], "unknown key")
    action = body.get("action")
    if action not in BULK_ACTIONS:
        raise invalid("action", f"must be one of {', '.join(BULK_ACTIONS)}")
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise invalid("ids", "must be a list of job ids")
    if len(ids) > MAX_BULK_IDS:
        raise invalid("ids", f"more than {MAX_BULK_IDS} ids")
    engine = _engine(request)
    unique = list(dict.fromkeys(ids))

    def run() -> dict[str, Any]:
        results: dict[str, Any] = {}
        if action == "delete":
            for job_id, error in engine.delete_jobs(unique).items():
                results[job_id] = _bulk_result(None, error)
            return results
        act = engine.cancel_job if action == "cancel" else engine.retry_job
        for job_id in unique:
            try:
                results[job_id] = _bulk_result(act(job_id), None)
            except EngineError as error:
                results[job_id] = _bulk_result(None, error)
        return results

    return JSONResponse({"results": await call(run)})


def _bulk_result(job: Job | None, error: EngineError | None) -> dict[str, Any]:
    if error is not None:
        refusal = engine_error(error)
        return {"ok": False, **error_body(refusal.code, refusal.message, refusal.field)}
    return {"ok": True, "job": job.to_dict() if job is not None else None}


async def clear_jobs(request: Request) -> JSONResponse:
    """``DELETE /api/jobs?status=completed`` → ``{"deleted": N}``."""
    if request.query_params.get("status") != "completed":
        raise invalid("status", "only status=completed can be cleared")
    return JSONResponse({"deleted": await call(_engine(request).clear_completed)})


def job_routes() -> list[Route]:
    """The routes of this module (``/api/jobs...``)."""
    return [
        Route("/api/jobs", list_jobs, methods=["GET"]),
        Route("/api/jobs", create_job, methods=["POST"]),
        Route("/api/jobs", clear_jobs, methods=["DELETE"]),
        Route("/api/jobs/bulk", bulk, methods=["POST"]),
        Route("/api/jobs/{job_id}", get_job, methods=["GET"]),
        Route("/api/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/api/jobs/{job_id}/retry", retry_job, methods=["POST"]),
    ]
