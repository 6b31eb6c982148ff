"""Who may talk to the daemon: Host check, bearer token, session cookie, CSRF, limits.

Three pure ASGI middlewares, outermost first:

- ``HostCheck``: the Host header must name this daemon (loopback names, the
  bound host, ``allowed_hosts``), which defeats DNS rebinding: 403 ``forbidden_host``.
- ``BodyLimit``: a body above ``max_body_bytes`` is 413 ``too_large``, from its
  Content-Length before anything is read, or as soon as the streamed bytes pass it.
- ``Authenticate``: every route but ``GET /login`` needs the bearer token or the
  session cookie; a cookie request that changes state needs the session's CSRF
  token in ``X-CSRF-Token``. Failed logins (a wrong token or login code) are
  counted per client address: after 10 in a minute that address gets 429 for
  any further attempt, right or wrong, until the minute has passed.

``Sessions`` holds the one-time login codes (10 minutes) and the sessions they
open, in memory: a restarted daemon forgets them, and a new login link is printed.
"""

from __future__ import annotations

import collections
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import attrs
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.server._errors import BodyTooLarge, error_response

__all__ = [
    "CSRF_HEADER",
    "LOGIN_CODE_SECONDS",
    "SESSION_COOKIE",
    "Authenticate",
    "BodyLimit",
    "FailedLogins",
    "HostCheck",
    "Session",
    "Sessions",
    "cookie_value",
    "session_cookie_header",
]

SESSION_COOKIE = "debrid_session"
CSRF_HEADER = "x-csrf-token"
LOGIN_CODE_SECONDS = 600.0
#: Sessions kept at once; the oldest goes first (each login link makes one).
MAX_SESSIONS = 256
#: Codes not yet used kept at once.
MAX_CODES = 256
FAILED_LOGIN_LIMIT = 10
FAILED_LOGIN_WINDOW = 60.0
#: Client addresses whose failures are tracked at once.
MAX_ADDRESSES = 10_000
#: Methods that change state: with the cookie they need the CSRF token.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: Paths served without credentials.
PUBLIC_PATHS = frozenset({"/login", "/api/proof"})



@attrs.frozen
class Session:
    """A browser's login: the cookie value and the CSRF token that goes with it."""

    id: str
    csrf_token: str


class Sessions:
    """One-time login codes and the sessions they open (thread-safe).

    ``now`` is the time source of code expiry (the engine's clock, so a test can
    move it); sessions last as long as the daemon.
    """

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._codes: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._sessions: collections.OrderedDict[str, Session] = collections.OrderedDict()

    def new_login_code(self) -> str:
        """A code for ``/login?code=...``, good once within 10 minutes."""
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = self._now() + LOGIN_CODE_SECONDS
            while len(self._codes) > MAX_CODES:
                self._codes.popitem(last=False)
        return code

    def redeem(self, code: str) -> Session | None:
        """Use ``code`` up and open a session; None for a wrong, used or expired code."""
        with self._lock:
            expires = None
            for known in list(self._codes):
                if hmac.compare_digest(known.encode(), code.encode()):
                    expires = self._codes.pop(known)
            if expires is None or self._now() > expires:
                return None
            session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
            return session

    def get(self, session_id: str) -> Session | None:
        """The session with that cookie value, if it is open."""
        with self._lock:
            return self._sessions.get(session_id)


class FailedLogins:
    """Failed logins per client address over the last minute (thread-safe)."""

    def __init__(
        self,
        limit: int = FAILED_LOGIN_LIMIT,
        window: float = FAILED_LOGIN_WINDOW,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._now = now
        self._lock = threading.Lock()
        #: Least recently failed first: past ``MAX_ADDRESSES`` the oldest is forgotten
        #: (O(1)), so many source addresses cost bounded memory and no scans.
        self._failures: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def _recent(self, address: str, now: float) -> collections.deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            failures = self._failures[address] = collections.deque(maxlen=self.limit)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(address)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        with self._lock:
            now = self._now()
            failures = self._recent(address, now)
            if len(failures) < self.limit:
                if not failures:
                    self._failures.pop(address, None)
                return 0.0
            return max(0.0, failures[-self.limit] + self.window - now)

    def failed(self, address: str) -> None:
        """Count one failed login from ``address``."""
        with self._lock:
            self._recent(address, self._now()).append(self._now())


def session_cookie_header(session: Session) -> str:
    """The Set-Cookie value of a new session (HttpOnly, SameSite=Strict, Path=/)."""
    return f"{SESSION_COOKIE}={session.id}; HttpOnly; SameSite=Strict; Path=/"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class HostCheck:
    """Answer 403 ``forbidden_host`` unless the Host header names this daemon."""

    def __init__(self, app: ASGIApp, *, bound_host: str, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        names: set[str] = {name.lower() for name in LOOPBACK_NAMES}
        full: set[str] = set()
        for raw in (_bracket(bound_host), *allowed_hosts):
            entry = raw.strip().lower()
            if not entry:
                continue
            host, port = _split_host(entry)
            (full if port else names).add(entry if port else host)
        self._names = frozenset(names)
        self._full = frozenset(full)

    def allowed(self, value: str | None) -> bool:
        """True when ``value`` (a Host header) names this daemon, with or without a port."""
        if not value:
            return False
        value = value.strip().lower()
        host, port = _split_host(value)
        if port is not None and not port.isdigit():
            return False
        return host in self._names or value in self._full

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.allowed(
            _header(scope, b"host")
        ):
            response = error_response(403, "forbidden_host", "this Host is not served here")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _split_host(value: str) -> tuple[str, str | None]:
    """``("name", "port")`` of a Host value; IPv6 literals keep their brackets."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        rest = value[end + 1 :]
        return value[: end + 1], rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, None


class BodyLimit:
    """413 ``too_large`` for a body above ``limit`` bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await error_response(
                    422, "validation", "bad Content-Length", "Content-Length"
                )(scope, receive, send)
                return
            if int(declared) > self.limit:
                await error_response(413, "too_large", f"request body above {self.limit} bytes")(
                    scope, receive, send
                )
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


class Authenticate:
    """Bearer token or session cookie on every route but ``/login`` (see the module docstring).

    ``token`` None turns authentication off (loopback only, by the settings'
    rule); state-changing requests from a browser on another origin are still
    refused then (403 ``csrf``), since a page anywhere may post to 127.0.0.1.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        sessions: Sessions,
        failures: FailedLogins,
        cors_origins: Iterable[str] = (),
        own_auth: Iterable[str] = (),
    ) -> None:
        self.app = app
        #: Path prefixes whose routes check credentials themselves (the qBittorrent face).
        self.own_auth = tuple(own_auth)
        self.token = token
        self.sessions = sessions
        self.failures = failures
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in PUBLIC_PATHS
            or (self.own_auth and scope["path"].startswith(self.own_auth))
        ):
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> Any:
        """None when the request may go on, else the error response to send."""
        method = scope["method"]
        authorization = _header(scope, b"authorization")
        if self.token is None:
            scope.setdefault("state", {})["auth"] = "none"
            if method in UNSAFE_METHODS and authorization is None and self._cross_site(scope):
                return error_response(403, "csrf", "a cross-site request may not change state")
            return None
        address = _client(scope)
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                value.strip().encode(), self.token.encode()
            ):
                # The right token is never held back: failed logins someone else
                # provoked from this address (a web page's <img src=/login?code=x>)
                # must not lock the command line out. The token is 256 random bits.
                scope.setdefault("state", {})["auth"] = "bearer"
                return None
            wait = self.failures.blocked_for(address)
            if wait > 0:
                return too_many_attempts(wait)
            self.failures.failed(address)
            return error_response(
                401, "unauthorized", "wrong token", headers={"WWW-Authenticate": "Bearer"}
            )
        session = self.session_of(scope)
        if session is None:
            return error_response(
                401, "unauthorized", "a bearer token or a session cookie is needed",
                headers={"WWW-Authenticate": "Bearer"},
            )
        state = scope.setdefault("state", {})
        state["auth"], state["session"] = "cookie", session
        if method in UNSAFE_METHODS:
            given = _header(scope, CSRF_HEADER.encode()) or ""
            if not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
                return error_response(
                    403, "csrf", "a cookie request that changes state needs X-CSRF-Token"
                )
        return None

    def session_of(self, scope: Scope) -> Session | None:
        """The open session named by the request's cookie, if any."""
        value = cookie_value(_header(scope, b"cookie"), SESSION_COOKIE)
        return self.sessions.get(value) if value is not None else None

    def _cross_site(self, scope: Scope) -> bool:
        """True for a browser request from a page of another origin."""
        fetch_site = (_header(scope, b"sec-fetch-site") or "").lower()
        if fetch_site in ("cross-site", "same-site"):
            return True
        origin = _header(scope, b"origin")
        if origin is None:
            return False
        origin = origin.rstrip("/").lower()
        if origin in self.cors_origins:
            return False
        host = (_header(scope, b"host") or "").lower()
        return urlsplit(origin).netloc != host


def cookie_value(raw: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a Cookie header (None: absent or malformed)."""
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:  # noqa: BLE001 - a malformed cookie is no cookie
        return None
    morsel = cookie.get(name)
    return morsel.value if morsel is not None else None


def too_many_attempts(wait: float) -> Any:
    """429 ``too_many_attempts`` with a Retry-After of ``wait`` seconds (rounded up)."""
    seconds = max(1, int(wait + 0.999))
    return error_response(
        429, "too_many_attempts", "too many failed logins from this address; wait",
        headers={"Retry-After": str(seconds)},
    )
