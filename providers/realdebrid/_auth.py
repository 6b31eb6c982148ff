"""Credentials: a private API token, or OAuth device-flow tokens, kept only in the secret store.

Keys (``<name>`` is the provider's name, ``realdebrid`` by default):
``<name>.api_token`` (a private token from real-debrid.com/apitoken), or the OAuth
set ``<name>.access_token``, ``<name>.refresh_token``, ``<name>.client_id``,
``<name>.client_secret`` and ``<name>.expires_at`` (epoch seconds). Nothing here
logs a value or puts one in an exception message.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from providers._secrets import SecretStore

__all__ = ["DEVICE_GRANT", "OPEN_SOURCE_CLIENT_ID", "Credentials", "DeviceAuthorization"]

#: The public client id for open-source apps; scopes unrestrict, torrents,
#: downloads, user ([DOC] "Opensource Apps"). May get stricter limits than others.
OPEN_SOURCE_CLIENT_ID = "X245A4XAIBGVM"
#: Used for the device exchange and, with the refresh token as ``code``, for refresh ([DOC]).
DEVICE_GRANT = "http://oauth.net/grant_type/device/1.0"


@attrs.frozen
class DeviceAuthorization:
    """A started device flow: show ``user_code`` and ``verification_url`` to the user.

    ``device_code`` identifies the request to Real-Debrid; it is left out of the
    repr so that printing this object in a CLI shows nothing worth stealing.
    ``expires_at`` is on the provider clock's ``monotonic`` scale.
    """

    user_code: str
    verification_url: str
    interval: float
    expires_in: float
    expires_at: float
    direct_verification_url: str | None = None
    device_code: str = attrs.field(default="", repr=False)


class Credentials:
    """A typed view of the provider's secrets (read through on every use, never cached)."""

    def __init__(self, secrets: Callable[[], SecretStore], prefix: str) -> None:
        self._secrets = secrets
        self._prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self._prefix}.{name}"

    def _get(self, name: str) -> str | None:
        return self._secrets().get(self._key(name)) or None

    def _set(self, name: str, value: str | None) -> None:
        if value:
            self._secrets().set(self._key(name), value)
        else:
            self._secrets().delete(self._key(name))

    @property
    def api_token(self) -> str | None:
        """The private API token, when one was configured."""
        return self._get("api_token")

    def set_api_token(self, token: str | None) -> None:
        """Keep (or forget, with None) a private API token."""
        self._set("api_token", token)

    @property
    def bearer(self) -> str | None:
        """The token to send: the private one if configured, else the OAuth access token."""
        return self.api_token or self._get("access_token")

    @property
    def refresh_token(self) -> str | None:
        """The OAuth refresh token (only the user's revocation expires it, [DOC])."""
        return self._get("refresh_token")

    @property
    def client(self) -> tuple[str, str] | None:
        """The user-bound client id and secret from the device flow."""
        client_id, secret = self._get("client_id"), self._get("client_secret")
        return (client_id, secret) if client_id and secret else None

    def set_client(self, client_id: str, client_secret: str) -> None:
        """Keep the user-bound client pair (device flow step 3)."""
        self._set("client_id", client_id)
        self._set("client_secret", client_secret)

    @property
    def expires_at(self) -> float | None:
        """When the OAuth access token expires (epoch seconds), if known."""
        raw = self._get("expires_at")
        try:
            return float(raw) if raw else None
        except ValueError:
            return None

    def set_tokens(self, access: str, refresh: str | None, expires_at: float) -> None:
        """Keep a new OAuth access token (and refresh token, when one came with it)."""
        self._set("access_token", access)
        if refresh:
            self._set("refresh_token", refresh)
        self._set("expires_at", repr(expires_at))

    @property
    def can_refresh(self) -> bool:
        """OAuth mode with everything a refresh needs (a private token never refreshes)."""
        return self.api_token is None and self.refresh_token is not None and self.client is not None

    def move_to(self, target: SecretStore) -> None:
        """Copy every credential into ``target`` and erase it here (on ``bind``)."""
        source = self._secrets()
        if source is target:
            return
        for name in ("api_token", "access_token", "refresh_token", "client_id", "client_secret",
                     "expires_at"):
            value = source.get(self._key(name))
            if value:
                target.set(self._key(name), value)
                source.delete(self._key(name))
