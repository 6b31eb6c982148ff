"""TorBox's answers turned into data or ``ProviderError``: the one error table.

TorBox wraps answers in ``{success, error, detail, data}``; ``error`` is a code
string and ``detail`` a message safe to show (GOSDK "Standard Response"). Codes
ending in ``ERROR`` are server-side faults, the rest caller errors (GOSDK), which
is the fallback for codes not in the table. Parameter validation answers with
FastAPI's 422 body instead of the envelope (SPEC).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from providers._errors import ErrorRule, ProviderError
from providers._http import json_body

__all__ = ["ERRORS", "ErrorRule", "envelope", "envelope_data", "is_active_limit", "scrub"]


def _same(code: str, retryable: bool, retry_after: float | None = None) -> ErrorRule:
    return ErrorRule(code, retryable, retry_after)


#: TorBox error code -> rule. Official codes from the GOSDK errors table unless noted.
ERRORS: dict[str, ErrorRule] = {
    # Server-side faults: wait and try again.
    "DATABASE_ERROR": _same("DATABASE_ERROR", True),  # transient on requestdl (rdt-client#1025)
    "UNKNOWN_ERROR": _same("UNKNOWN_ERROR", True),
    "DOWNLOAD_SERVER_ERROR": _same("DOWNLOAD_SERVER_ERROR", True),  # "wait and retry" (GOSDK)
    "NO_SERVERS_AVAILABLE_ERROR": _same("NO_SERVERS_AVAILABLE_ERROR", True),
    "SEARCH_ERROR": _same("SEARCH_ERROR", True),
    "REDIRECT_ERROR": _same("REDIRECT_ERROR", True),
    "SERVER_ERROR": _same("SERVER_ERROR", True),  # TBSDKNET
    "COULD_NOT_PERFORM_ACTION": _same("COULD_NOT_PERFORM_ACTION", True),  # TBSDKNET
    # Credentials.
    "NO_AUTH": _same("NO_AUTH", False),
    "BAD_TOKEN": _same("BAD_TOKEN", False),
    # Reported intermittently for valid keys (torrentio-scraper#344): worth a retry.
    "AUTH_ERROR": _same("AUTH_ERROR", True),
    "OAUTH_VERIFICATION_ERROR": _same("OAUTH_VERIFICATION_ERROR", False),
    "INVALID_DEVICE": _same("INVALID_DEVICE", False),
    "DEVICE_ALREADY_AUTHED": _same("DEVICE_ALREADY_AUTHED", False),  # TBSDKNET
    # Bad requests: the same request will fail again.
    "INVALID_OPTION": _same("INVALID_OPTION", False),
    "MISSING_REQUIRED_OPTION": _same("MISSING_REQUIRED_OPTION", False),
    "TOO_MANY_OPTIONS": _same("TOO_MANY_OPTIONS", False),
    "DIFF_ISSUE": _same("DIFF_ISSUE", False),
    "ENDPOINT_NOT_FOUND": _same("ENDPOINT_NOT_FOUND", False),
    "ITEM_NOT_FOUND": _same("NOT_FOUND", False),  # the engine's common "no such remote job"
    "DUPLICATE_ITEM": _same("DUPLICATE_ITEM", False),
    "PLAN_RESTRICTED_FEATURE": _same("PLAN_RESTRICTED_FEATURE", False),
    "BOZO_TORRENT": _same("BOZO_TORRENT", False),
    "BOZO_NZB": _same("BOZO_NZB", False),
    "BOZO_RSS_FEED": _same("BOZO_RSS_FEED", False),
    "BOZO_REGEX": _same("BOZO_REGEX", False),
    "TOO_MUCH_DATA": _same("TOO_MUCH_DATA", False),  # body over ~100 MB
    "DOWNLOAD_TOO_LARGE": _same("DOWNLOAD_TOO_LARGE", False),  # over the plan's size cap
    "LINK_OFFLINE": _same("LINK_OFFLINE", False),
    "VENDOR_DISABLED": _same("VENDOR_DISABLED", False),
    "SELLIX_ERROR": _same("SELLIX_ERROR", False),  # payments: retrying will not pay
    "DEPRECATED": _same("DEPRECATED", False),  # 410 on legacy routes (torbox-cli README)
    "PERMISSION_DENIED": _same("PERMISSION_DENIED", False),  # TBSDKNET
    "BREACH_OF_TOS": _same("BREACH_OF_TOS", False),  # TBSDKNET
    "BANNED_CONTENT_DETECTED": _same("BANNED_CONTENT_DETECTED", False),  # TBSDKNET
    "BANNED_USER": _same("BANNED_USER", False),  # TBSDKNET
    # Account limits.
    # Slots full: the engine re-queues the job and waits for one (RDT retries in 2 min).
    "ACTIVE_LIMIT": _same("ACTIVE_LIMIT", True, 120.0),
    "SEEDING_LIMIT": _same("SEEDING_LIMIT", True, 300.0),  # TBSDKNET; frees like a slot
    "COOLDOWN_LIMIT": _same("COOLDOWN_LIMIT", True, 1800.0),  # free-plan cooldowns last long
    "MONTHLY_LIMIT": _same("MONTHLY_LIMIT", False),  # not before next month
    # No wait of their own: the Retry-After if any, else short growing waits (_http).
    "RATE_LIMIT_EXCEEDED": _same("RATE_LIMITED", True),  # decypharr's 429 body
    "TOO_MANY_REQUESTS": _same("RATE_LIMITED", True),  # TBSDKNET
    # add_only_if_cached refused: not in the facts; the fake's answer (docs/torbox.md).
    "DOWNLOAD_NOT_CACHED": _same("NOT_CACHED", False),
}


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked (server text is never trusted not to echo it)."""
    if secret and secret in text:
        return text.replace(secret, "***")
    return text


def _rule_for(code: str | None, status: int) -> ErrorRule:
    if code is not None and code in ERRORS:
        return ERRORS[code]
    if code is not None:
        # Unknown codes: "...ERROR" is a server fault (GOSDK); others are ours.
        return ErrorRule(code, code.endswith("ERROR") or status >= 500)
    if status >= 500:
        return ErrorRule("PROVIDER_UNAVAILABLE", True)
    if status in (401, 403):
        # Either status may carry an auth failure (GOSDK 403; TBNET also checks 401).
        return ErrorRule("BAD_TOKEN", False)
    return ErrorRule("PROVIDER_ERROR", False)


#: Told the slot counts (``data``, ``{}`` when absent) of an ACTIVE_LIMIT refusal.
OnActiveLimit = Callable[[dict[str, Any]], None]


def envelope_data(
    response: httpx.Response,
    provider: str,
    secret: str | None,
    on_active_limit: OnActiveLimit | None = None,
) -> Any:
    """The ``data`` of a successful answer; a ``ProviderError`` for anything else."""
    return envelope(response, provider, secret, on_active_limit)[0]


def envelope(
    response: httpx.Response,
    provider: str,
    secret: str | None,
    on_active_limit: OnActiveLimit | None = None,
) -> tuple[Any, str]:
    """``(data, detail)`` of a successful answer; a ``ProviderError`` for anything else.

    The body is parsed once; an ACTIVE_LIMIT refusal (whatever its status: POSTMAN,
    TBNET) hands its slot counts to ``on_active_limit`` before it is raised.
    """
    status = response.status_code
    if status == 429:
        wait = response.extensions.get("debrid_retry_after")
        raise ProviderError(
            "rate limit exceeded",
            provider,
            code="RATE_LIMITED",
            http_status=429,
            retryable=True,
            retry_after=float(wait) if wait is not None else None,
        )
    # TorBox's own refusals come in its JSON envelope (auth failures included): an
    # error page without it (HTML, or nothing) is something in front of TorBox, an
    # edge's challenge page or a proxy, and a retryable PROVIDER_UNAVAILABLE whatever
    # its status; a success that does not parse is a retryable BAD_RESPONSE.
    body = json_body(response, provider)
    if status == 422:
        raise _validation_error(body, provider)
    if isinstance(body, dict) and "success" in body:
        if body.get("success") is True and status < 400:
            detail = body.get("detail")
            return body.get("data"), detail if isinstance(detail, str) else ""
        error = _envelope_error(body, status, provider, secret)
        if error.code == "ACTIVE_LIMIT" and on_active_limit is not None:
            data = body.get("data")
            on_active_limit(data if isinstance(data, dict) else {})
        raise error
    # JSON, but not TorBox's: a proxy or a half-deployed server answered.
    rule = _rule_for(None, status)
    if 200 <= status < 300:
        rule = ErrorRule("PROVIDER_UNAVAILABLE", True)
    raise ProviderError(
        f"unexpected answer (HTTP {status}) to {response.request.method} "
        f"{response.request.url.path}",
        provider,
        code=rule.code,
        http_status=status,
        retryable=rule.retryable,
    )


def is_active_limit(body: dict[str, Any]) -> bool:
    """ACTIVE_LIMIT by code (RDT, TBNET) or by shape: error null with the slot counts (POSTMAN)."""
    if body.get("error") == "ACTIVE_LIMIT":
        return True
    data = body.get("data")
    return body.get("error") is None and isinstance(data, dict) and "active_limit" in data


def _envelope_error(
    body: dict[str, Any], status: int, provider: str, secret: str | None
) -> ProviderError:
    raw_code = body.get("error")
    code = (
        "ACTIVE_LIMIT" if is_active_limit(body) else raw_code if isinstance(raw_code, str) else None
    )
    rule = _rule_for(code, status)
    detail = body.get("detail")
    message = scrub(
        detail if isinstance(detail, str) and detail else (code or f"HTTP {status}"), secret
    )
    return ProviderError(
        message,
        provider,
        code=rule.code,
        http_status=status,
        retryable=rule.retryable,
        retry_after=rule.retry_after,
    )


def _validation_error(body: Any, provider: str) -> ProviderError:
    # FastAPI's {"detail": [{"loc": [...], "msg": ...}]}; inputs are left out, they
    # may hold what we sent.
    problems: list[str] = []
    detail = body.get("detail") if isinstance(body, dict) else None
    for entry in detail if isinstance(detail, list) else []:
        if isinstance(entry, dict):
            where = entry.get("loc")
            loc = ".".join(map(str, where)) if isinstance(where, list) else str(where or "")
            problems.append(f"{loc}: {entry.get('msg', 'invalid')}")
    text = "; ".join(problems) or "request failed validation"
    return ProviderError(
        f"TorBox rejected the request: {text}",
        provider,
        code="VALIDATION_ERROR",
        http_status=422,
        retryable=False,
    )
