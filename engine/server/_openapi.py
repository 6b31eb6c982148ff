"""``GET /api/openapi.json``: the OpenAPI 3.1 document of the control API, built by hand.

Kept beside the routes it describes; a test checks that every route of the app
is here and that every route here but ``/login`` refuses a request without
credentials.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["openapi_document", "openapi_routes"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_JOB = {"$ref": "#/components/schemas/Job"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        401: "no or wrong token or cookie",
        403: "Host not ours, or a cookie request without the CSRF token",
        404: "unknown job or provider",
        409: "a move the job's state does not allow",
        413: "body above max_body_bytes",
        422: "a bad body or parameter (field names it)",
        429: "too many failed logins from this address",
        503: "the engine is stopped or failing",
        504: "the engine did not answer in time",
    }
    common = (401, 403, 429, 503, 504)
    return {str(s): _json(_ERROR, reasons[s]) for s in sorted({*common, *statuses})}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            "description": description}


_JOB_ID = _path("job_id", "the job's id")
_JOB_ANSWER = _json({"type": "object", "properties": {"job": _JOB}, "required": ["job"]}, "the job")
_SORTS = ["created_at", "updated_at", "status", "progress"]
_STATUS = ["queued", "resolving", "downloading", "completed", "failed", "cancelled"]


def _paths() -> dict[str, Any]:
    return {
        "/login": {"get": {
            "summary": "Trade a one-time login code for the session cookie",
            "security": [],
            "parameters": [{**_query("code", {"type": "string"}, "the one-time code"),
                            "required": True}],
            "responses": {"303": {"description": "cookie set; redirect to /provider-test"},
                          **_errors(401)},
        }},
        "/api/proof": {"get": {
            "summary": "HMAC-SHA256 of the nonce under the API token, to check the daemon "
                       "before sending it the token (null with authentication off)",
            "security": [],
            "parameters": [{**_query("nonce", {"type": "string", "minLength": 16,
                                               "maxLength": 128}, "a fresh random text"),
                            "required": True}],
            "responses": {"200": _json({"type": "object", "properties": {
                "proof": {"type": ["string", "null"]}}, "required": ["proof"]}, "the proof"),
                **_errors(422)},
        }},
        "/api/session": {"get": {
            "summary": "The CSRF token of this session",
            "responses": {"200": _json({"type": "object", "properties": {
                "csrf_token": {"type": "string"}, "auth": {"type": "string"}},
                "required": ["csrf_token"]}, "the token"), **_errors()},
        }},
        "/api/jobs": {
            "get": {
                "summary": "List jobs, filtered, sorted and paged",
                "parameters": [
                    _query("status", {"type": "string"},
                           f"comma-separated statuses ({', '.join(_STATUS)})"),
                    _query("provider", {"type": "string"}, "a provider name"),
                    _query("q", {"type": "string", "maxLength": 500},
                           "text in the id, the payload or a file name"),
                    _query("sort", {"type": "string", "enum": _SORTS, "default": "created_at"},
                           "column to sort by"),
                    _query("order", {"type": "string", "enum": ["asc", "desc"],
                                     "default": "desc"}, "sort direction"),
                    _query("limit", {"type": "integer", "minimum": 0, "maximum": 1000,
                                     "default": 50}, "page size"),
                    _query("offset", {"type": "integer", "minimum": 0, "default": 0},
                           "jobs to skip"),
                ],
                "responses": {"200": _json({"type": "object", "properties": {
                    "jobs": {"type": "array", "items": _JOB}, "total": {"type": "integer"},
                    "limit": {"type": "integer"}, "offset": {"type": "integer"}}},
                    "a page of jobs"), **_errors(422)},
            },
            "post": {
                "summary": "Create a job (JSON, or multipart with a .torrent file)",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "provider": {"type": "string"},
                        "payload": {"$ref": "#/components/schemas/StartJobPayload"}},
                        "required": ["provider", "payload"]}},
                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                        "provider": {"type": "string"},
                        "payload": {"type": "string", "description": "JSON text"},
                        "torrent": {"type": "string", "format": "binary"}},
                        "required": ["provider"]}},
                }},
                "responses": {"201": _JOB_ANSWER, **_errors(404, 413, 422)},
            },
            "delete": {
                "summary": "Delete the completed jobs",
                "parameters": [{**_query("status", {"type": "string", "enum": ["completed"]},
                                         "only completed"), "required": True}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "deleted": {"type": "integer"}}}, "how many were deleted"), **_errors(422)},
            },
        },
        "/api/jobs/bulk": {"post": {
            "summary": "Cancel, retry or delete many jobs",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {
                    "action": {"type": "string", "enum": ["cancel", "retry", "delete"]},
                    "ids": {"type": "array", "items": {"type": "string"}, "maxItems": 1000}},
                "required": ["action", "ids"]}}}},
            "responses": {"200": _json({"type": "object", "properties": {"results": {
                "type": "object", "additionalProperties": {"type": "object", "properties": {
                    "ok": {"type": "boolean"}, "job": {"oneOf": [_JOB, {"type": "null"}]},
                    "error": {"$ref": "#/components/schemas/ErrorDetail"}}}}}},
                "a result per id"), **_errors(413, 422)},
        }},
        "/api/jobs/{job_id}": {"get": {
            "summary": "One job",
            "parameters": [_JOB_ID, _query("sync", {"type": "boolean", "default": False},
                                           "ask the provider now")],
            "responses": {"200": _JOB_ANSWER, **_errors(404, 422)},
        }},
        "/api/jobs/{job_id}/cancel": {"post": {
            "summary": "Cancel a job that is not finished",
            "parameters": [_JOB_ID],
            "responses": {"200": _JOB_ANSWER, **_errors(404, 409)},
        }},
        "/api/jobs/{job_id}/retry": {"post": {
            "summary": "Start a new attempt of a failed or cancelled job",
            "parameters": [_JOB_ID],
            "responses": {"200": _JOB_ANSWER, **_errors(404, 409)},
        }},
        "/api/providers": {"get": {
            "summary": "Each provider's state (from health)",
            "responses": {"200": _json({"type": "object", "properties": {"providers": {
                "type": "array", "items": {"type": "object"}}}}, "the providers"),
                **_errors()},
        }},
        "/api/client/refusals": {"get": {
            "summary": "The last adds the qBittorrent face refused, newest first, and why",
            "responses": {"200": _json({"type": "object", "properties": {"refusals": {
                "type": "array", "items": {"type": "object", "properties": {
                    "at": {"type": "integer"}, "source": {"type": "string"},
                    "reason": {"type": "string"}}}}}}, "the refusals"),
                **_errors()},
        }},
        "/api/providers/{name}/test": {"post": {
            "summary": "Check that a provider answers and accepts its credentials",
            "parameters": [_path("name", "the provider's name")],
            "responses": {"200": _json({"type": "object", "properties": {
                "result": {"$ref": "#/components/schemas/TestConnectionResponse"}}},
                "the check's result"), **_errors(404)},
        }},
        "/api/events": {"get": {
            "summary": "Job events as server-sent events (event: job / reset)",
            "parameters": [
                _query("last_event_id", {"type": "integer"}, "resume after this id"),
                {"name": "Last-Event-ID", "in": "header", "required": False,
                 "schema": {"type": "integer"}, "description": "resume after this id"},
            ],
            "responses": {"200": {"description": "the stream", "content": {
                "text/event-stream": {"schema": {"type": "string"}}}}, **_errors(422)},
        }},
        "/api/health": {"get": {
            "summary": "Liveness and readiness with the figures behind them",
            "parameters": [_query("live", {"type": "string", "enum": ["0", "1"]},
                                  "1: 200 while the supervisor runs")],
            "responses": {"200": _json({"type": "object"}, "ready (or live)"),
                          **_errors(422)},
        }},
        "/api/openapi.json": {"get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_errors()},
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics",
            "responses": {"200": {"description": "Prometheus text", "content": {
                "text/plain": {"schema": {"type": "string"}}}}, **_errors()},
        }},
        "/provider-test": {"get": {
            "summary": "The provider test page",
            "responses": {"200": {"description": "HTML", "content": {
                "text/html": {"schema": {"type": "string"}}}}, **_errors()},
        }},
        "/": {"get": {
            "summary": "Redirect to /provider-test",
            "responses": {"307": {"description": "to /provider-test"}, **_errors()},
        }},
    }


def openapi_document() -> dict[str, Any]:
    """The whole document."""
    detail = {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "field": {"type": ["string", "null"]}}, "required": ["code", "message", "field"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "debrid-engine control API", "version": "1"},
        "paths": _paths(),
        "security": [{"bearer": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "debrid_session",
                            "description": "POST and DELETE also need X-CSRF-Token"},
            },
            "schemas": {
                "ErrorDetail": detail,
                "Error": {"type": "object", "properties": {"error": detail},
                          "required": ["error"]},
                "Job": {"type": "object", "description": "Job.to_dict()", "properties": {
                    "id": {"type": "string"}, "provider": {"type": "string"},
                    "status": {"type": "string", "enum": _STATUS},
                    "progress": {"type": "number"}}},
                "StartJobPayload": {"type": "object", "properties": {
                    "url": {"type": "string"}, "magnet": {"type": "string"},
                    "torrent": {"type": "string", "description": "base64 of the .torrent"},
                    "select": {"type": "object"},
                    "download_dir": {"type": "string",
                                     "description": "must resolve inside a download root"},
                    "connections": {"type": "integer", "minimum": 1, "maximum": 16},
                    "only_if_cached": {"type": "boolean"},
                    "priority": {"type": "integer", "minimum": -1000, "maximum": 1000}}},
                "TestConnectionResponse": {"type": "object", "properties": {
                    "provider": {"type": "string"}, "ok": {"type": "boolean"},
                    "message": {"type": "string"}, "account": {"type": ["string", "null"]},
                    "details": {"type": "object"}}},
            },
        },
    }


async def openapi(_: Request) -> JSONResponse:
    """``GET /api/openapi.json``."""
    return JSONResponse(openapi_document())


def openapi_routes() -> list[Route]:
    """The route of this module."""
    return [Route("/api/openapi.json", openapi, methods=["GET"])]
