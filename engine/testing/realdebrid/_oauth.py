"""The OAuth2 device flow of the fake Real-Debrid (``/oauth/v2``), facts sheet section 1.2.

1. ``GET device/code?client_id=X245A4XAIBGVM&new_credentials=yes`` gives a
   device code, a user code, ``interval`` and ``expires_in``.
2. The user approves the user code (``FakeRealDebrid.approve_device``).
3. ``GET device/credentials?client_id=...&code=<device_code>`` answers an error
   until then, and a user-bound ``{client_id, client_secret}`` after.
4. ``POST token`` with that pair, ``code=<device_code>`` and the device grant type
   gives ``{access_token, expires_in, token_type, refresh_token}``; the same call
   with ``code=<refresh_token>`` refreshes (the grant type stays the device one).

Access tokens expire on the fake's clock; refresh tokens only when revoked.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import attrs

from providers import Clock

__all__ = ["DEVICE_GRANT", "OPEN_SOURCE_CLIENT_ID", "OAuthState"]

#: The public client id for open-source apps ([DOC] "Opensource Apps").
OPEN_SOURCE_CLIENT_ID = "X245A4XAIBGVM"
#: The grant type of both the device exchange and the refresh ([DOC]).
DEVICE_GRANT = "http://oauth.net/grant_type/device/1.0"


@attrs.define
class _Device:
    device_code: str
    user_code: str
    expires_at: float
    approved: bool = False
    client_id: str | None = None
    client_secret: str | None = None
    exchanged: bool = False


class OAuthState:
    """Devices waiting for approval, issued client pairs, access and refresh tokens."""

    def __init__(
        self, clock: Clock, *, interval: int = 5, expires_in: int = 1800, token_ttl: int = 3600
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.expires_in = expires_in
        self.token_ttl = token_ttl
        self.devices: dict[str, _Device] = {}
        self.clients: dict[str, str] = {}  # user-bound client_id -> client_secret
        self.access_tokens: dict[str, float] = {}  # token -> expiry (clock monotonic)
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> client_id
        self._serial = itertools.count(1)

    def start(self, client_id: str | None, new_credentials: bool) -> tuple[int, dict[str, Any]]:
        """``device/code``: a new device code for the open-source client id."""
        if client_id != OPEN_SOURCE_CLIENT_ID or not new_credentials:
            # Apps with their own id need their own secret, which the fake does not model.
            return 400, {"error": "wrong_parameter", "error_code": 2}
        serial = next(self._serial)
        user_code = f"{serial:04d}{secrets.token_hex(2).upper()}"[-8:]
        device = _Device(
            device_code=secrets.token_hex(20).upper(),
            user_code=user_code,
            expires_at=self.clock.monotonic() + self.expires_in,
        )
        self.devices[device.device_code] = device
        return 200, {
            "device_code": device.device_code,
            "user_code": user_code,
            "interval": self.interval,
            "expires_in": self.expires_in,
            "verification_url": "https://real-debrid.com/device",
            # Undocumented but present in real replies (facts section 1.2).
            "direct_verification_url": f"https://real-debrid.com/authorize?user_code={user_code}",
        }

    def approve(self, user_code: str) -> bool:
        """The user typed ``user_code`` on the website; False if no live device has it."""
        now = self.clock.monotonic()
        for device in self.devices.values():
            if device.user_code == user_code and now < device.expires_at:
                device.approved = True
                return True
        return False

    def credentials(self, client_id: str | None, code: str | None) -> tuple[int, dict[str, Any]]:
        """``device/credentials``: an error while pending, the user-bound pair once approved."""
        device = self.devices.get(code or "")
        if client_id != OPEN_SOURCE_CLIENT_ID or device is None:
            return 400, {"error": "wrong_parameter", "error_code": 2}
        if self.clock.monotonic() >= device.expires_at:
            return 403, {"error": "expired_device_code"}
        if not device.approved:
            # The docs give only "an error message" here, no code (facts section 1.2).
            return 403, {"error": "authorization_pending"}
        if device.client_id is None:
            device.client_id = f"U{secrets.token_hex(6).upper()}"
            device.client_secret = secrets.token_hex(20)
            self.clients[device.client_id] = device.client_secret
        return 200, {"client_id": device.client_id, "client_secret": device.client_secret}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """``POST token``: exchange an approved device code, or a refresh token, for tokens."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        code, grant = form.get("code", ""), form.get("grant_type", "")
        if grant != DEVICE_GRANT or not client_id or self.clients.get(client_id) != secret:
            return 400, {"error": "invalid_client"}
        device = self.devices.get(code)
        if device is not None and device.client_id == client_id and not device.exchanged:
            device.exchanged = True
            refresh = secrets.token_hex(20)
            self.refresh_tokens[refresh] = client_id
            return 200, self._issue(refresh)
        if self.refresh_tokens.get(code) == client_id:
            # A refresh answers the same shape, refresh_token included (facts section 1.2).
            return 200, self._issue(code)
        return 400, {"error": "invalid_grant"}

    def _issue(self, refresh: str) -> dict[str, Any]:
        access = secrets.token_hex(24)
        self.access_tokens[access] = self.clock.monotonic() + self.token_ttl
        return {
            "access_token": access,
            "expires_in": self.token_ttl,
            "token_type": "Bearer",
            "refresh_token": refresh,
        }

    def valid(self, token: str) -> bool:
        """True for an issued access token that has not expired."""
        expiry = self.access_tokens.get(token)
        return expiry is not None and self.clock.monotonic() < expiry

    def expire_access_tokens(self) -> None:
        """Make every issued access token expired (refresh tokens keep working)."""
        now = self.clock.monotonic()
        for token in self.access_tokens:
            self.access_tokens[token] = now

    def revoke(self, token: str) -> bool:
        """Forget an access or refresh token; False if unknown."""
        return (self.access_tokens.pop(token, None) is not None) | (
            self.refresh_tokens.pop(token, None) is not None
        )
