"""HTTP plumbing shared by the real providers: tokens before requests, safe errors.

Every request first takes a token from each rate-limit bucket that guards it, so
the account's budget is shared by every job: waiting for it when the context is
``blocking`` (a provider used on its own), at once otherwise (the engine's
provider actor has checked the buckets before the call, and never sleeps). A 429
pauses those buckets for the Retry-After time (or ``default_pause``), at most the
buckets' ``max_pause``. Transport failures become retryable
``ProviderError``s whose messages name the method and path but never the query
string or headers, where credentials travel.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from providers._errors import ProviderError
from providers._protocol import ProviderContext

__all__ = ["ProviderHttp", "json_body", "parse_retry_after"]


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now_epoch
    if math.isnan(seconds) or seconds < 0:  # in the past, or junk
        return 0.0
    return seconds


def json_body(response: httpx.Response, provider: str) -> Any:
    """The decoded JSON body, or a retryable PROVIDER_UNAVAILABLE for anything else.

    Maintenance pages, proxies and load balancers answer with HTML or nothing.
    """
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProviderError(
            f"non-JSON answer (HTTP {response.status_code}) to {response.request.method} "
            f"{response.request.url.path}",
            provider,
            code="PROVIDER_UNAVAILABLE",
            http_status=response.status_code,
            retryable=True,
        ) from None


class ProviderHttp:
    """An httpx client bound to one provider's base URL, buckets and clock."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        context: Callable[[], ProviderContext],
        auth_headers: Callable[[], Mapping[str, str]] = dict,
        timeout: float = 30.0,
        default_pause: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self._context = context
        self._auth_headers = auth_headers
        self._default_pause = default_pause
        self.client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "debrid-engine/0.1"},
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        buckets: Sequence[str] = ("default",),
        authenticated: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request after taking a token from each of ``buckets`` that exists.

        Returns the response whatever its status (the provider maps error bodies);
        raises a retryable ``ProviderError`` for timeouts and transport failures.
        """
        ctx = self._context()
        limiters = [ctx.limiters[name] for name in buckets if name in ctx.limiters]
        for limiter in limiters:
            if ctx.blocking:
                limiter.acquire()
            else:
                limiter.take()
        headers = dict(kwargs.pop("headers", None) or {})
        if authenticated:
            headers.update(self._auth_headers())
        try:
            response = self.client.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise ProviderError(
                f"timed out on {method} {_path_only(path)}",
                self.provider,
                code="TIMEOUT",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{type(exc).__name__} on {method} {_path_only(path)}",
                self.provider,
                code="PROVIDER_UNAVAILABLE",
                retryable=True,
            ) from None
        if response.status_code == 429:
            pause = parse_retry_after(response.headers.get("Retry-After"), ctx.clock.time())
            pause = self._default_pause if pause is None else pause
            if limiters:
                # A hostile or broken header (Retry-After: 999999996) must not stop
                # the account for good: the buckets cut it, and so does the error.
                pause = min(pause, *(limiter.max_pause for limiter in limiters))
            for limiter in limiters:
                limiter.pause_for(pause)
            response.extensions["debrid_retry_after"] = pause
        return response

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]
