"""How FakeTorBox speaks: the response envelope and FastAPI-style parameter checks.

TorBox answers ``{success, error, detail, data}`` (GOSDK "Standard Response"),
except for parameter validation, where FastAPI's own 422 body
``{"detail": [{type, loc, msg, input}]}`` comes through (SPEC components).
"""

from __future__ import annotations

import json
from typing import Any

from engine.testing._fakehttp import FakeRequest, FakeResponse

__all__ = ["Params", "fail", "form_params", "json_params", "ok"]

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def ok(data: Any = None, detail: str = "Request successful.") -> FakeResponse:
    """A successful envelope."""
    return FakeResponse.json({"success": True, "error": None, "detail": detail, "data": data})


def fail(
    status: int, error: str | None, detail: str, data: Any = None, **headers: str
) -> FakeResponse:
    """A failed envelope (``error`` may be None, as in the official ACTIVE_LIMIT example)."""
    body = {"success": False, "error": error, "detail": detail, "data": data}
    return FakeResponse.json(body, status, **headers)


class Params:
    """Reads query or body fields the way FastAPI validates them, collecting every error.

    ``where`` is FastAPI's ``loc`` prefix: ``"query"`` or ``"body"``.
    """

    def __init__(self, values: dict[str, list[str]], where: str) -> None:
        self.values = values
        self.where = where
        self.errors: list[dict[str, Any]] = []

    def _error(self, name: str, kind: str, msg: str, value: Any) -> None:
        self.errors.append({"type": kind, "loc": [self.where, name], "msg": msg, "input": value})

    def _raw(self, name: str, required: bool) -> str | None:
        found = self.values.get(name)
        if not found:
            if required:
                self._error(name, "missing", "Field required", None)
            return None
        return found[0]

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A text field."""
        return self._raw(name, required)

    def integer(
        self, name: str, default: int | None = None, *, required: bool = False
    ) -> int | None:
        """An integer field; non-integers are 422 ``int_parsing``."""
        raw = self._raw(name, required)
        if raw is None:
            return default
        try:
            return int(raw.strip())
        except ValueError:
            self._error(
                name,
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                raw,
            )
            return default

    def boolean(self, name: str, default: bool = False) -> bool:
        """A boolean field; pydantic's spellings (C# clients send ``True``/``False``)."""
        raw = self._raw(name, False)
        if raw is None:
            return default
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self._error(
            name, "bool_parsing", "Input should be a valid boolean, unable to interpret input", raw
        )
        return default

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        """One of ``allowed``; anything else is 422 ``enum``."""
        raw = self._raw(name, False)
        if raw is None:
            return default
        if raw not in allowed:
            quoted = ", ".join(f"'{a}'" for a in allowed)
            self._error(name, "enum", f"Input should be {quoted}", raw)
            return default
        return raw

    def response(self) -> FakeResponse | None:
        """The 422 answer when anything was wrong, else None."""
        if not self.errors:
            return None
        return FakeResponse.json({"detail": self.errors}, 422)


def json_params(request: FakeRequest) -> tuple[Params | None, FakeResponse | None]:
    """A JSON object body as ``Params`` (values as text); a 422 when it is not one."""
    try:
        body = json.loads(request.body or b"")
    except ValueError:
        error = {
            "type": "json_invalid",
            "loc": ["body", 0],
            "msg": "JSON decode error",
            "input": {},
        }
        return None, FakeResponse.json({"detail": [error]}, 422)
    if not isinstance(body, dict):
        error = {
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": body,
        }
        return None, FakeResponse.json({"detail": [error]}, 422)
    values: dict[str, list[str]] = {}
    for key, value in body.items():
        if value is None:
            continue
        values[key] = [json.dumps(value) if isinstance(value, bool) else _text(value)]
    return Params(values, "body"), None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def form_params(request: FakeRequest) -> tuple[Params, bytes | None]:
    """Multipart or urlencoded form fields, and the ``file`` part's bytes if any."""
    ctype = request.header("content-type") or ""
    if ctype.startswith("multipart/form-data"):
        parts = request.multipart()
        upload = parts.pop("file", None)
        values = {k: [v.decode("utf-8", "replace")] for k, v in parts.items()}
        return Params(values, "body"), upload
    if ctype.startswith("application/x-www-form-urlencoded"):
        return Params(request.form(), "body"), None
    return Params({}, "body"), None
