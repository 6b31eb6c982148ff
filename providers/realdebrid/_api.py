"""Talking to the Real-Debrid REST and OAuth APIs: auth, errors, token refresh and paged lists.

Every request goes through ``ProviderHttp`` (a token from the ``default`` bucket
first, 429s pause the bucket). Every answer that is not one the caller expects
becomes a ``ProviderError`` built from ``_tables`` (branching on ``error_code``,
then the ``error`` string, then the HTTP status). A ``bad_token`` answer in OAuth
mode refreshes the access token once and repeats the request; the token is also
refreshed shortly before it expires. The credentials are read from the store
once per call, and a token the service refused is not sent again (``AuthHold``)
until they change or the hold ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import httpx

from providers._auth_hold import AuthHold
from providers._bounded import BoundedDict
from providers._clock import Clock
from providers._errors import ProviderError
from providers._http import ProviderHttp, json_body
from providers._log import get_logger
from providers._protocol import ProviderContext
from providers.realdebrid._auth import DEVICE_GRANT, Credentials, Tokens
from providers.realdebrid._tables import error_rule

__all__ = ["Page", "RealDebridApi"]

log = get_logger("debrid.providers.realdebrid")


#: Pages whose last ETag and content are kept for revalidation.
_ETAGS_KEPT = 256

@attrs.frozen
class Page:
    """One page of a list endpoint: its items and the ``X-Total-Count`` header (None: absent)."""

    items: tuple[Mapping[str, Any], ...]
    total: int | None


class RealDebridApi:
    """The HTTP side of the provider; holds no secret itself (see ``Credentials``)."""

    def __init__(
        self,
        provider: str,
        *,
        base_url: str,
        oauth_base_url: str,
        context: Callable[[], ProviderContext],
        credentials: Credentials,
        timeout: float,
        rate_limit_pause: float,
        refresh_margin: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self._context = context
        self.credentials = credentials
        self.hold = AuthHold(self.context_clock)
        self._refresh_margin = refresh_margin
        self.http = ProviderHttp(
            provider, base_url.rstrip("/"), context=context, auth_headers=self._auth_headers,
            timeout=timeout, default_pause=rate_limit_pause, transport=transport,
        )
        self.oauth = ProviderHttp(
            provider, oauth_base_url.rstrip("/"), context=context, timeout=timeout,
            default_pause=rate_limit_pause, transport=transport,
        )
        # Last body per page, for If-None-Match (the server sends ETags, [DOC]).
        # One entry per page asked for (offset, limit, filters): a few on most
        # accounts, bounded all the same.
        self._etags: BoundedDict[str, tuple[str, Page]] = BoundedDict(_ETAGS_KEPT)

    def keeps_failed_items(self) -> bool:
        """The engine leaves failed jobs' torrents on the account (``ProviderContext``)."""
        return self._context().keep_failed_items

    def context_clock(self) -> Clock:
        """The clock of the context the provider is bound to."""
        return self._context().clock

    def _auth_headers(self) -> Mapping[str, str]:
        token = self.credentials.bearer
        # The header, never the ?auth_token= query form the docs call less secure.
        return {"Authorization": f"Bearer {token}"} if token else {}

    # -- requests --------------------------------------------------------------
    def call(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        """Send an authenticated request; a status outside ``ok`` raises a ``ProviderError``.

        The credentials are read once here (the store is not asked again during the
        call); a refused token is held back (``AuthHold``) until they change.
        """
        self.credentials.sync()
        self.hold.check(self.credentials.generation)
        if self.credentials.bearer is None:
            raise ProviderError(
                "no credentials: configure api_token or run the device login", self.provider,
                code="AUTH_REQUIRED",
            )
        try:
            response = self._send(method, path, ok, kwargs)
        except ProviderError as error:
            if error.code == "BAD_TOKEN":
                # Refused even after a refresh (or the refresh itself was refused).
                self.hold.refused(error, self.credentials.generation)
            raise
        self.hold.clear()
        self.http.settle(kwargs.get("buckets", ("default",)))
        return response

    def _send(
        self, method: str, path: str, ok: tuple[int, ...], kwargs: Mapping[str, Any]
    ) -> httpx.Response:
        self._refresh_if_due()
        response = self.http.request(method, path, **kwargs)
        if response.status_code in ok:
            return response
        error = self.error(response)
        if error.code == "BAD_TOKEN" and self.credentials.can_refresh:
            # An expired access token gets 401 bad_token/8; refresh once ([RDNET] Requests.cs).
            self.refresh()
            response = self.http.request(method, path, **kwargs)
            if response.status_code in ok:
                return response
            error = self.error(response)
        raise error

    def json(self, response: httpx.Response) -> Any:
        """The JSON body; a non-JSON one (maintenance page) is a retryable PROVIDER_UNAVAILABLE."""
        return json_body(response, self.provider)

    def get_object(self, path: str, **kwargs: Any) -> Mapping[str, Any]:
        """GET a JSON object."""
        body = self.json(self.call("GET", path, **kwargs))
        if not isinstance(body, dict):
            raise self.bad_answer(f"GET {path}")
        return body

    def error(self, response: httpx.Response) -> ProviderError:
        """The ``ProviderError`` an error answer stands for."""
        status = response.status_code
        try:
            body = self.json(response)
        except ProviderError:
            if status < 400:
                # A success we did not expect (a 200 page for a 204, a redirect):
                # a proxy's or a fault's answer, retried as it was before.
                raise
            # Status first: a bare 401, an HTML 403 or 404 page, a 429 from a proxy
            # each mean what their status says; a 5xx maintenance page is retryable.
            body = None
        error_code: int | None = None
        text: str | None = None
        details = ""
        if isinstance(body, dict):
            raw_code, raw_text = body.get("error_code"), body.get("error")
            raw_details = body.get("error_details")
            if isinstance(raw_code, int) and not isinstance(raw_code, bool):
                error_code = raw_code
            text = raw_text if isinstance(raw_text, str) else None
            details = raw_details if isinstance(raw_details, str) else ""
        rule = error_rule(status, error_code, text)
        retry_after = None
        if rule.code == "RATE_LIMITED":
            pause = response.extensions.get("debrid_retry_after")
            if not isinstance(pause, int | float):
                # Code 34/5 under another HTTP status: ProviderHttp did not pause.
                pause = self.http.pause(
                    tuple(self._context().limiters), None,
                    f"{text or 'rate limit'} under HTTP {status}",
                )
            retry_after = float(pause)
        what = text or f"HTTP {status}"
        if error_code is not None:
            what += f" (error_code {error_code})"
        if details:
            what += f": {details[:200]}"
        request = response.request
        return ProviderError(
            f"{what} on {request.method} {request.url.path}", self.provider,
            code=rule.code, http_status=status, retryable=rule.retryable, retry_after=retry_after,
        )

    def bad_answer(self, what: str) -> ProviderError:
        """A JSON answer of the wrong shape: retryable, as a proxy or a glitch may cause it."""
        return ProviderError(
            f"unexpected answer to {what}", self.provider, code="BAD_RESPONSE", retryable=True
        )

    @contextlib.contextmanager
    def parsing(self, what: str) -> Iterator[None]:
        """Turn a shape error while reading an answer into a retryable ``ProviderError``."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError):
            raise self.bad_answer(what) from None

    # -- lists -------------------------------------------------------------------
    def page(self, path: str, offset: int, limit: int, **params: str) -> Page:
        """One page of ``/torrents`` or ``/downloads``, revalidated with its last ETag."""
        extra = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        key = f"{path}?offset={offset}&limit={limit}&{extra}"
        cached = self._etags.get(key)
        headers = {"If-None-Match": cached[0]} if cached else {}
        response = self.call(
            "GET", path, params={"offset": offset, "limit": limit, **params}, headers=headers,
            ok=(200, 204, 304),
        )
        if response.status_code == 304:
            if cached is None:  # a 304 we did not ask for
                raise self.bad_answer(f"GET {path}")
            return cached[1]
        total_header = response.headers.get("x-total-count")  # case-insensitive (HTTP/2: lower)
        with self.parsing(f"GET {path}"):
            total = int(total_header) if total_header is not None else None
        if response.status_code == 204:
            # decypharr reads 204 as an empty page (facts section 2).
            return Page((), total)
        body = self.json(response)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise self.bad_answer(f"GET {path}")
        result = Page(tuple(body), total)
        etag = response.headers.get("etag")
        if etag:
            self._etags[key] = (etag, result)
        else:
            self._etags.pop(key, None)
        return result

    # -- OAuth -------------------------------------------------------------------
    def _refresh_if_due(self) -> None:
        expires_at = self.credentials.expires_at
        if expires_at is None or not self.credentials.can_refresh:
            return
        if self._context().clock.time() >= expires_at - self._refresh_margin:
            self.refresh()

    def refresh(self) -> None:
        """Trade the refresh token for a new access token (``code=<refresh_token>``, [DOC])."""
        self.credentials.sync()
        client, refresh = self.credentials.client, self.credentials.refresh_token
        if client is None or refresh is None:
            raise ProviderError("no refresh token to renew the access token", self.provider,
                                code="BAD_TOKEN")
        self.credentials.set_tokens(self.exchange(client, refresh))
        log.info("oauth_token_refreshed", provider=self.provider)

    def exchange(self, client: tuple[str, str], code: str) -> Tokens:
        """``POST /token`` with the device grant: the tokens it gives (the caller keeps them)."""
        response = self.oauth.request(
            "POST", "/token", authenticated=False,
            data={"client_id": client[0], "client_secret": client[1], "code": code,
                  "grant_type": DEVICE_GRANT},
        )
        if response.status_code != 200:
            error = self.error(response)
            if error.retryable:
                raise error
            raise ProviderError(
                f"Real-Debrid refused the OAuth token request (HTTP {response.status_code})",
                self.provider, code="BAD_TOKEN", http_status=response.status_code,
            )
        body = self.json(response)
        with self.parsing("POST /token"):
            access = str(body["access_token"])
            refresh = body.get("refresh_token")
            expires_in = float(body["expires_in"])
        return Tokens(
            access, str(refresh) if refresh else None, self._context().clock.time() + expires_in
        )

    def close(self) -> None:
        """Close both connection pools."""
        self.http.close()
        self.oauth.close()
