"""The OAuth2 device flow for open-source apps ([DOC] "Opensource Apps", facts section 1.2).

``start`` asks for a device code; the user types the user code at the
verification URL; ``poll_once`` asks for the user-bound client pair and, once it
comes, trades the device code for tokens. Until the user approves, RD answers
with "an error message" whose status and text the docs do not give (some clients
saw a bare 403), so anything but a client pair counts as "not yet".
"""

from __future__ import annotations

from providers._errors import ProviderError
from providers._log import get_logger
from providers.realdebrid._api import RealDebridApi
from providers.realdebrid._auth import OPEN_SOURCE_CLIENT_ID, DeviceAuthorization

__all__ = ["poll_once", "poll_until_done", "start"]

log = get_logger("debrid.providers.realdebrid")


def start(api: RealDebridApi) -> DeviceAuthorization:
    """Step 1: ``GET /device/code?client_id=X245A4XAIBGVM&new_credentials=yes``."""
    response = api.oauth.request(
        "GET", "/device/code", authenticated=False,
        params={"client_id": OPEN_SOURCE_CLIENT_ID, "new_credentials": "yes"},
    )
    if response.status_code != 200:
        raise api.error(response)
    body = api.json(response)
    now = api.context_clock().monotonic()
    with api.parsing("GET /device/code"):
        expires_in = float(body["expires_in"])
        return DeviceAuthorization(
            user_code=str(body["user_code"]),
            verification_url=str(body["verification_url"]),
            interval=max(1.0, float(body.get("interval") or 5)),
            expires_in=expires_in,
            expires_at=now + expires_in,
            direct_verification_url=body.get("direct_verification_url"),
            device_code=str(body["device_code"]),
        )


def poll_once(api: RealDebridApi, device: DeviceAuthorization) -> bool:
    """Steps 3 and 4 once: True when the tokens are stored, False while still pending.

    Transient failures (5xx, resets, 429, maintenance pages) also answer False:
    the caller polls again after ``device.interval``.
    """
    try:
        # Asked every time (not taken from the store): a pair left from an earlier
        # login is bound to another device code.
        response = api.oauth.request(
            "GET", "/device/credentials", authenticated=False,
            params={"client_id": OPEN_SOURCE_CLIENT_ID, "code": device.device_code},
        )
        if response.status_code != 200:
            return False
        body = api.json(response)
        if not isinstance(body, dict) or not body.get("client_secret"):
            return False  # clients test for a missing client_secret (Umbrella auth_loop)
        with api.parsing("GET /device/credentials"):
            client = (str(body["client_id"]), str(body["client_secret"]))
        # Kept only once the exchange worked: a refused one leaves the old login intact.
        api.credentials.set_login(client, api.exchange(client, device.device_code))
    except ProviderError as error:
        if not error.retryable:
            raise
        log.info("device_auth_retry", provider=api.provider, code=error.code)
        return False
    log.info("device_auth_complete", provider=api.provider)
    return True


def poll_until_done(api: RealDebridApi, device: DeviceAuthorization) -> None:
    """Poll every ``device.interval`` seconds (on the provider's clock) until done or expired."""
    clock = api.context_clock()
    while True:
        if poll_once(api, device):
            return
        if clock.monotonic() + device.interval >= device.expires_at:
            raise ProviderError(
                "the device code expired before the user approved it", api.provider,
                code="AUTH_EXPIRED",
            )
        clock.sleep(device.interval)
