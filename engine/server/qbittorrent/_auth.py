"""Who may use the qBittorrent face: the login and its ``SID`` cookie, Basic, Bearer.

As qBittorrent does (and as Sonarr needs, ``../ARR.md``): a request without a
valid session gets **403**, never 401; ``auth/login`` answers ``Ok.`` with a
``SID`` cookie, or ``Fails.`` for wrong credentials. Three ways in:

- the login (``username``/``password`` of the config; with none configured, any
  username and the daemon's API token as password), then the ``SID`` cookie;
- HTTP Basic with the same credentials on every request (Sonarr sends it);
- ``Authorization: Bearer <the daemon's API token>`` (Sonarr's API-key mode).

With no credentials and the daemon's auth off (loopback only), the face is
open. Failed logins count against the daemon's ``FailedLogins`` per address: past
its limit every attempt of that address gets 403 until the window has passed.
A session ends after ``session_timeout`` seconds unused (on the engine's clock)
or at logout. A request that changes state with the cookie (or with no
credentials at all, when open) is refused when a browser says it comes from
another site: a page elsewhere cannot drive the face through the user's browser.
"""

from __future__ import annotations

import base64
import binascii
import collections
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request

from engine.server._security import FailedLogins, cookie_value
from engine.server.qbittorrent._options import QbitOptions

__all__ = ["SID_COOKIE", "QbitAuth"]

SID_COOKIE = "SID"
MAX_SESSIONS = 256
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class QbitAuth:
    """The face's sessions and credential checks (thread-safe)."""

    def __init__(
        self,
        options: QbitOptions,
        token: str | None,
        failures: FailedLogins,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.token = token
        self.failures = failures
        self._now = now
        self._lock = threading.Lock()
        self._sessions: collections.OrderedDict[str, float] = collections.OrderedDict()

    @property
    def open(self) -> bool:
        """True when no credentials are needed (no login configured, daemon auth off)."""
        return self.options.password is None and self.token is None

    def valid(self, username: str, password: str) -> bool:
        """True for the credentials this face accepts."""
        if self.options.password is not None:
            user_ok = self.options.username is None or _same(username, self.options.username)
            return _same(password, self.options.password) and user_ok
        if self.token is not None:
            return _same(password, self.token)
        return True

    def blocked_for(self, address: str) -> float:
        """Seconds until ``address`` may try to log in again."""
        return self.failures.blocked_for(address)

    def login(self, username: str, password: str, address: str) -> str | None:
        """A new session id for good credentials; None (counted) for bad ones."""
        if not self.valid(username, password):
            self.failures.failed(address)
            return None
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[sid] = self._now()
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return sid

    def logout(self, sid: str | None) -> None:
        """End the session ``sid`` (nothing for an unknown one)."""
        if sid:
            with self._lock:
                self._sessions.pop(sid, None)

    def session_of(self, request: Request) -> str | None:
        """The request's live session id (touching it), if any."""
        sid = cookie_value(request.headers.get("cookie"), SID_COOKIE)
        if sid is None:
            return None
        now = self._now()
        with self._lock:
            used = self._sessions.get(sid)
            if used is None:
                return None
            if now - used > self.options.session_timeout:
                del self._sessions[sid]
                return None
            self._sessions[sid] = now
            self._sessions.move_to_end(sid)
        return sid

    def allowed(self, request: Request) -> bool:
        """True when the request may go on (see the module docstring)."""
        address = request.client.host if request.client else "unknown"
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            value = value.strip()
            if scheme.lower() == "bearer" and self.token is not None and _same(value, self.token):
                return True
            # Basic is a password guess: a locked-out address's is not looked at (a
            # session cookie or the Bearer token of the same request still counts).
            if scheme.lower() == "basic" and self.blocked_for(address) <= 0:
                user, password = _basic(value)
                if user is not None and password is not None and self.valid(user, password):
                    return True
                if not self.open:
                    self.failures.failed(address)
        if self.session_of(request) is not None:
            return not self.cross_site(request)
        if self.open:
            return not self.cross_site(request)
        return False

    @staticmethod
    def cross_site(request: Request) -> bool:
        """True for a browser's state-changing request from a page of another origin.

        The *arr apps send neither ``Origin`` nor ``Sec-Fetch-Site``: they pass.
        """
        if request.method not in _UNSAFE:
            return False
        site = request.headers.get("sec-fetch-site", "").lower()
        if site in ("cross-site", "same-site"):
            return True
        origin = request.headers.get("origin")
        if origin is None:
            return False
        return urlsplit(origin.lower()).netloc != request.headers.get("host", "").lower()


def _basic(value: str) -> tuple[str | None, str | None]:
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = text.partition(":")
    return (user, password) if sep else (None, None)
