"""HTTP plumbing shared by the real providers: tokens before requests, safe errors.

Every request first takes a token from each rate-limit bucket that guards it, so
the account's budget is shared by every job: waiting for it when the context is
``blocking`` (a provider used on its own), at once otherwise (the engine's
provider actor has checked the buckets before the call, and never sleeps). A 429
pauses those buckets for the Retry-After time (or ``default_pause``), at most the
buckets' ``max_pause``. Transport failures become retryable
``ProviderError``s whose messages name the method and path but never the query
string or headers, where credentials travel; and since httpx logs every URL,
building a client puts the one log filter that masks credentials in query
strings on httpx's and httpcore's loggers (``redact_http_logs``), before any
request can be logged.

Every request is bounded: ``timeout`` is the whole exchange (connect, send,
every read of the headers and the body), not each read, so a server that
trickles a byte a second cannot hold the provider's thread; and an answer is
read up to ``max_body`` bytes (decoded), so a huge or endless one costs no more
memory than that. Both end in retryable ``ProviderError``s (``TIMEOUT``,
``BAD_RESPONSE``), as does a body that does not parse as JSON in any way
(bad syntax, nesting past the interpreter's depth, a number of thousands of
digits, a bad encoding).
"""

from __future__ import annotations

import email.utils
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpcore
import httpx

from providers._errors import ProviderError
from providers._log import redact_http_logs
from providers._protocol import ProviderContext
from providers._ratelimit import GrowingWait

__all__ = ["LONGEST_HINT", "MAX_BODY", "ProviderHttp", "json_body", "parse_retry_after"]

#: The largest API answer read, decoded. A full page of a large account fits: TorBox's
#: 1,000 season packs of 13 files with every field is about 9 MB, Real-Debrid's 5,000
#: torrents of 35 links about 10 MB.
MAX_BODY = 32 * 1024 * 1024
#: The longest wait a Retry-After is taken to ask for; callers cut it further
#: (a bucket's ``max_pause``, the retry policy's maximum).
LONGEST_HINT = 7 * 24 * 3600.0


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent
    or junk. Always finite and within ``[0, LONGEST_HINT]``: a date in the past is 0,
    ``1e400`` or ``inf`` (or a date in year 9999) is ``LONGEST_HINT``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - now_epoch
        except (TypeError, ValueError, OverflowError, OSError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), LONGEST_HINT)


def json_body(response: httpx.Response, provider: str) -> Any:
    """The decoded JSON body, or a retryable ``ProviderError`` for anything else.

    Maintenance pages, proxies and load balancers answer with HTML or nothing:
    for an error status that is ``PROVIDER_UNAVAILABLE``. A success status with a
    body that does not parse is ``BAD_RESPONSE``, whatever broke the parse (bad
    syntax, ``[`` nested a hundred thousand deep, a number of thousands of
    digits, bytes that are not UTF-8): never an exception of another kind.
    """
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError too
        status = response.status_code
        what = "unreadable JSON" if 200 <= status < 300 else "non-JSON answer"
        raise ProviderError(
            f"{what} (HTTP {status}, {type(error).__name__}) to {response.request.method} "
            f"{response.request.url.path}",
            provider,
            code="BAD_RESPONSE" if 200 <= status < 300 else "PROVIDER_UNAVAILABLE",
            http_status=status,
            retryable=True,
        ) from None


# -- the whole exchange under one deadline ------------------------------------------
#: The first hold-back after a rate limit without Retry-After (``hintless_pause``).
_FIRST_HINTLESS_PAUSE = 2.0


class _Deadline(threading.local):
    """When (``time.monotonic``) the request running on this thread must be over."""

    at: float | None = None


_DEADLINE = _Deadline()


def _bounded(timeout: float | None, late: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` for one network operation, cut to what is left of the deadline."""
    at = _DEADLINE.at
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise late("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sync backend, its connections under the request's deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, bounded, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _BoundedTransport(httpx.HTTPTransport):
    """httpx's transport, its connection pool on the deadline backend.

    httpx builds its pool without a way to name the network backend, so the pool
    is built again here with the same settings (httpx's defaults) and that
    backend. ``tests/providers/test_provider_http.py`` drives a trickling server
    over a real socket: if an httpx upgrade stops this from taking effect, it fails.
    """

    def __init__(self) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )


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
        max_body: int = MAX_BODY,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout: must be a positive number of seconds (got {timeout!r})")
        if max_body <= 0:
            raise ValueError(f"max_body: must be a positive number of bytes (got {max_body!r})")
        redact_http_logs()
        self.provider = provider
        self._context = context
        self._auth_headers = auth_headers
        self._default_pause = default_pause
        #: Rate limits in a row that said nothing of when to come back (see
        #: ``hintless_pause``), per set of buckets; ``settle`` restarts them.
        self._hintless = GrowingWait(_FIRST_HINTLESS_PAUSE, default_pause)
        self._timeout = timeout
        self._max_body = max_body
        self.client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport if transport is not None else _BoundedTransport(),
            follow_redirects=False,
            headers={"User-Agent": "debrid-engine/0.1"},
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        buckets: Sequence[str] = ("default",),
        refused_by: Sequence[str] | None = None,
        authenticated: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request after taking a token from each of ``buckets`` that exists.

        Returns the response whatever its status (the provider maps error bodies),
        its body read (at most ``max_body`` bytes); raises a retryable
        ``ProviderError`` for timeouts (the whole exchange past ``timeout``),
        transport failures and oversized answers.
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
        outer, _DEADLINE.at = _DEADLINE.at, time.monotonic() + self._timeout
        try:
            response = self._exchange(method, path, headers, kwargs)
        except httpx.TimeoutException:
            ctx.telemetry.request(self.provider, "TIMEOUT")
            raise ProviderError(
                f"timed out on {method} {_path_only(path)}",
                self.provider,
                code="TIMEOUT",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            ctx.telemetry.request(self.provider, "PROVIDER_UNAVAILABLE")
            raise ProviderError(
                f"{type(exc).__name__} on {method} {_path_only(path)}",
                self.provider,
                code="PROVIDER_UNAVAILABLE",
                retryable=True,
            ) from None
        finally:
            _DEADLINE.at = outer
        ctx.telemetry.request(self.provider, str(response.status_code))
        if response.status_code == 429:
            # ``refused_by`` names the buckets the service's limit stands for when it
            # is not all of them: a 429 on TorBox's createtorrent holds back creations,
            # not every poll and link as well. By default every bucket of the request.
            names = [name for name in buckets if name in ctx.limiters]
            if refused_by is not None:
                names = [name for name in refused_by if name in ctx.limiters] or names
            refused = [ctx.limiters[name] for name in names]
            pause = parse_retry_after(response.headers.get("Retry-After"), ctx.clock.time())
            said = "Retry-After" if pause is not None else "no Retry-After"
            pause = self.hintless_pause(names) if pause is None else pause
            if refused:
                # A hostile or broken header (Retry-After: 999999996) must not stop
                # the account for good: the buckets cut it, and so does the error.
                pause = min(pause, *(limiter.max_pause for limiter in refused))
            reason = f"429 on {method} {_path_only(path)} ({said}: {pause:g} s)"
            for limiter in refused:
                limiter.pause_for(pause, reason)
            response.extensions["debrid_retry_after"] = pause
        return response

    def hintless_pause(self, buckets: Sequence[str]) -> float:
        """How long to hold back ``buckets`` after a rate limit that says nothing of
        when to come back: 2 s, doubling with each such answer in a row, at most
        ``default_pause``, counted for those buckets alone, until a request that
        needed them all is answered. A flat minute for a limit that lifts in seconds
        (another client of the account spent the window) stalls every job for
        nothing; a short wait that grows stops hammering one that does not ([DMM]
        backs off 2, 4, 8 ... 30 s). Polls that go through do not end the count of a
        creation limit they do not touch."""
        return self._hintless.next(buckets)

    def settle(self, buckets: Sequence[str]) -> None:
        """A request that needed ``buckets`` was answered, and its answer read as a
        success by the provider (not only by its status: TorBox may say "rate
        limited" under a 200): the counts of hint-less rate limits on them restart."""
        self._hintless.settle(buckets)

    def pause(
        self, buckets: Sequence[str], seconds: float | None, reason: str = "a rate limit"
    ) -> float:
        """Pause ``buckets`` (those that exist) for ``seconds`` (``hintless_pause`` when
        None), cut to each bucket's ``max_pause``: for a rate limit a provider reads
        in a body, which the 429 handling of ``request`` never sees. Returns the
        seconds asked for."""
        pause = self.hintless_pause(buckets) if seconds is None else seconds
        limiters = self._context().limiters
        for name in buckets:
            limiter = limiters.get(name)
            if limiter is not None:
                limiter.pause_for(pause, f"{reason} ({pause:g} s)")
        return pause

    def _exchange(
        self, method: str, path: str, headers: Mapping[str, str], kwargs: Mapping[str, Any]
    ) -> httpx.Response:
        """Send, and read the body up to ``max_body`` bytes, decoded: a compressed
        bomb is cut at the first decoded chunk past the cap (one read of 64 KiB can
        decode to tens of MB), not where it ends."""
        request = self.client.build_request(method, path, headers=headers, **kwargs)
        response = self.client.send(request, stream=True)
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._max_body:
                    raise ProviderError(
                        f"answer to {method} {_path_only(path)} over {self._max_body} bytes",
                        self.provider,
                        code="BAD_RESPONSE",
                        http_status=response.status_code,
                        retryable=True,
                    )
        finally:
            response.close()
        # The body as read: what was compressed is not any more.
        kept = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in _BODY_HEADERS
        ]
        return httpx.Response(
            response.status_code,
            headers=kept,
            content=bytes(body),
            request=request,
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]
