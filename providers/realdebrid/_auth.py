"""Credentials: a private API token, or OAuth device-flow tokens, kept only in the secret store.

Keys (``<name>`` is the provider's name, ``realdebrid`` by default): either
``<name>.api_token`` (a private token from real-debrid.com/apitoken) or the
OAuth set ``<name>.access_token``, ``<name>.refresh_token``, ``<name>.client_id``,
``<name>.client_secret`` and ``<name>.expires_at`` (epoch seconds), never both:
the newest login replaces the other kind in one write (a completed device flow
deletes the private token; a private token deletes the OAuth set). So which one
is in use is plain from the store. A store holding both (written by an older
version) sends the private token, as that version did, until the next login.
``<name>.api_token_option`` is the SHA-256 of the last ``api_token`` option
applied: the same option at the next start is not a new login and leaves a
newer device login in place; a changed option replaces it.

Values are read once per operation (``sync``) and kept in memory in between.
Nothing here logs a value or puts one in an exception message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from providers._secrets import SecretStore, SecretView, digest, write

__all__ = [
    "DEVICE_GRANT", "OPEN_SOURCE_CLIENT_ID", "Credentials", "DeviceAuthorization", "Tokens"
]

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


_TOKEN = "api_token"  # noqa: S105 - the name of a key, not a value
_OPTION = "api_token_option"
_OAUTH = ("access_token", "refresh_token", "client_id", "client_secret", "expires_at")


class Credentials:
    """A typed view of the provider's secrets, read from the store once per ``sync``."""

    def __init__(self, secrets: Callable[[], SecretStore], prefix: str) -> None:
        self._secrets = secrets
        self._prefix = prefix
        self._view = SecretView(secrets, [self._key(n) for n in (_TOKEN, _OPTION, *_OAUTH)])

    def _key(self, name: str) -> str:
        return f"{self._prefix}.{name}"

    def _get(self, name: str) -> str | None:
        return self._view.get(self._key(name))

    def _update(self, changes: Mapping[str, str | None]) -> None:
        self._view.update({self._key(name): value for name, value in changes.items()})

    def sync(self) -> None:
        """Read the store again (one ``stat`` for the engine's file store while unchanged)."""
        self._view.sync()

    @property
    def generation(self) -> int:
        """Grows whenever the credentials change (a login here, or the store rewritten)."""
        return self._view.generation

    @property
    def api_token(self) -> str | None:
        """The private API token, when one is in use."""
        return self._get(_TOKEN)

    def set_api_token(self, token: str | None) -> None:
        """Use a private API token from now on, deleting the OAuth set (None: forget it)."""
        if token:
            self._update({_TOKEN: token, **dict.fromkeys(_OAUTH)})
        else:
            self._update({_TOKEN: None})

    @property
    def bearer(self) -> str | None:
        """The token to send: the private one if in use, else the OAuth access token."""
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

    @property
    def expires_at(self) -> float | None:
        """When the OAuth access token expires (epoch seconds), if known."""
        raw = self._get("expires_at")
        try:
            return float(raw) if raw else None
        except ValueError:
            return None

    def set_tokens(self, tokens: Tokens) -> None:
        """Keep a refreshed OAuth access token (and refresh token, when one came with it)."""
        changes: dict[str, str | None] = {
            "access_token": tokens.access, "expires_at": repr(tokens.expires_at)
        }
        if tokens.refresh:
            changes["refresh_token"] = tokens.refresh
        self._update(changes)

    def set_login(self, client: tuple[str, str], tokens: Tokens) -> None:
        """A completed device login, in one write: the client pair and the tokens
        replace whatever was in use, the private token included."""
        self._update({
            _TOKEN: None, "client_id": client[0], "client_secret": client[1],
            "access_token": tokens.access, "refresh_token": tokens.refresh,
            "expires_at": repr(tokens.expires_at),
        })

    @property
    def can_refresh(self) -> bool:
        """OAuth mode with everything a refresh needs (a private token never refreshes)."""
        return self.api_token is None and self.refresh_token is not None and self.client is not None

    def move_to(self, target: SecretStore) -> None:
        """Take what the default store held into ``target`` and erase it there (on ``bind``).

        Before ``bind`` the default store holds only what the constructor's
        ``api_token`` option put there. It is a login like any other, replacing
        what ``target`` holds, except when ``target`` took the same option at an
        earlier start: then whatever login came after it stands.
        """
        source = self._secrets()
        if source is target:
            return
        self._view.forget()  # read from ``target`` from now on
        held = self._view.read(source)
        if not held:
            return
        write(source, dict.fromkeys(held))
        token, option = held.get(self._key(_TOKEN)), self._key(_OPTION)
        if token:
            held.setdefault(option, digest(token))
            if held[option] == digest(token) == self._view.read(target).get(option):
                return
        keys = [self._key(n) for n in (_TOKEN, *_OAUTH)] + [option] * (option in held)
        write(target, {key: held.get(key) for key in keys})


@attrs.frozen
class Tokens:
    """What ``POST /token`` answered: the access token, its refresh token, its end (epoch s)."""

    access: str = attrs.field(repr=False)
    refresh: str | None = attrs.field(repr=False)
    expires_at: float
