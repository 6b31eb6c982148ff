"""``debrid auth realdebrid|torbox``: log in, check the key with the service, keep it.

Keys go to the keys file (``secrets.json`` beside the config, 0600) and nowhere
else: never to stdout or stderr, never into an error message. A key the
service refuses is not stored (exit 1).
"""

from __future__ import annotations

import contextlib
import getpass
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from engine.cli._context import Context
from engine.cli._errors import BAD_INPUT, FAILED, OK, CliError
from providers import MemorySecretStore, ProviderContext, ProviderError, RealClock, SecretStore

if TYPE_CHECKING:
    from engine.settings import Settings
    from providers import Provider

__all__ = ["cmd_auth_realdebrid", "cmd_auth_torbox"]

# Options the engine reads itself, not the provider's constructor.
_ENGINE_KEYS = ("enabled", "poll_interval")
# The Real-Debrid OAuth set a private token replaces (providers/realdebrid/_auth.py).
_RD_OAUTH = ("access_token", "refresh_token", "client_id", "client_secret", "expires_at")


def _provider(settings: Settings, name: str, secrets: SecretStore, **options: Any) -> Provider:
    """``name`` built from its config table (its key left out) plus ``options``, on its own."""
    from providers import default_registry  # noqa: PLC0415

    table = dict(settings.providers.get(name, {}))
    for key in (*_ENGINE_KEYS, "api_token", "api_key"):
        table.pop(key, None)
    registry = settings.registry or default_registry()
    try:
        provider = registry.create(name, {**table, **options})
    except (TypeError, ValueError) as error:
        raise CliError(BAD_INPUT, "config", f"providers.{name}: {error}", f"providers.{name}"
                       ) from error
    provider.bind(ProviderContext(clock=RealClock(), secrets=secrets, blocking=True))
    return provider


def _check(provider: Provider) -> dict[str, Any]:
    """``test_connection`` as a dict; a refusal (or an error) is exit 1."""
    try:
        result = provider.test_connection()
    except ProviderError as error:
        raise CliError(FAILED, "refused", f"{provider.name} refused the key: {error.code}: "
                       f"{error.message}; nothing was stored") from error
    if not result.ok:
        raise CliError(FAILED, "refused",
                       f"{provider.name} refused the key: {result.message}; nothing was stored")
    return {"provider": result.provider, "ok": True, "message": result.message,
            "account": result.account}


def _stored(ctx: Context, provider: str, result: dict[str, Any], where: str) -> int:
    if ctx.output.json:
        ctx.output.document({"ok": True, "provider": provider, "stored_in": where,
                             "result": result})
    else:
        account = f" as {escape(str(result['account']))}" if result.get("account") else ""
        ctx.output.text(f"[green]{provider}: logged in{account}[/]; key stored in "
                        f"{escape(where)}")
    return OK


def _read_secret(prompt: str) -> str:
    """From the terminal without echo, or one line of a piped stdin."""
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.strip()


def cmd_auth_torbox(ctx: Context) -> int:
    """``debrid auth torbox [--key K]``: test the key, then store ``torbox.api_key``."""

    settings = ctx.settings()
    key = ctx.args.key if ctx.args.key is not None else _read_secret("TorBox API key: ")
    key = key.strip()
    if not key:
        raise CliError(BAD_INPUT, "validation", "no API key given", "key")
    result = _checked_then_stored(settings, "torbox", "api_key", key)
    return _stored(ctx, "torbox", result, str(settings.secrets_path))


def _checked_then_stored(
    settings: Settings, name: str, option: str, key: str
) -> dict[str, Any]:
    """``test_connection`` with ``key`` (held in memory only), then ``name.option`` in the
    keys file; a refused key raises before anything is stored."""
    from engine.settings import store_key  # noqa: PLC0415

    provider = _provider(settings, name, MemorySecretStore(), **{option: key})
    try:
        result = _check(provider)
    finally:
        provider.close()
    store_key(settings, f"{name}.{option}", key)
    return result


def cmd_auth_realdebrid(ctx: Context) -> int:
    """``debrid auth realdebrid [--token T]``: a private token, or the OAuth device flow."""
    settings = ctx.settings()
    if ctx.args.token is not None:
        return _realdebrid_token(ctx, settings, ctx.args.token.strip())
    from providers.realdebrid import RealDebridProvider  # noqa: PLC0415

    provider = _provider(settings, "realdebrid", settings.secret_store())
    if not isinstance(provider, RealDebridProvider):
        raise CliError(BAD_INPUT, "config", "realdebrid is not the Real-Debrid provider here",
                       "providers.realdebrid")
    try:
        _device_flow(ctx, provider)
        result = _check(provider)
    finally:
        provider.close()
    return _stored(ctx, "realdebrid", result, str(settings.secrets_path))


def _realdebrid_token(ctx: Context, settings: Settings, token: str) -> int:

    if not token:
        raise CliError(BAD_INPUT, "validation", "the token is empty", "token")
    result = _checked_then_stored(settings, "realdebrid", "api_token", token)
    # The newest login replaces the other kind (providers/realdebrid/_auth.py).
    store = settings.secret_store()
    for name in _RD_OAUTH:
        store.delete(f"realdebrid.{name}")
    return _stored(ctx, "realdebrid", result, str(settings.secrets_path))


def _device_flow(ctx: Context, provider: Any) -> None:
    """Show the code, poll at the interval Real-Debrid gives until approved or expired."""
    output = ctx.output
    try:
        device = provider.start_device_auth()
    except ProviderError as error:
        raise CliError(FAILED, "provider_error",
                       f"realdebrid: cannot start the device login: {error.code}: "
                       f"{error.message}") from error
    url = device.direct_verification_url or device.verification_url
    if output.json:
        output.document({"user_code": device.user_code,
                         "verification_url": device.verification_url,
                         "direct_verification_url": device.direct_verification_url,
                         "expires_in": device.expires_in, "interval": device.interval})
    else:
        output.text(f"Open [bold]{escape(device.verification_url)}[/] and enter the code "
                    f"[bold cyan]{escape(device.user_code)}[/]")
        if device.direct_verification_url:
            output.text(f"(or open {escape(device.direct_verification_url)})")
    clock = RealClock()
    started = clock.monotonic()
    # A spinner on a terminal; elsewhere (a pipe, a log) one line per poll.
    spinner = output.err_console.is_terminal and not output.json
    with contextlib.ExitStack() as stack:
        status = stack.enter_context(output.err_console.status("waiting for approval..."))\
            if spinner else None
        while True:
            try:
                if provider.poll_device_auth_once(device):
                    break
            except ProviderError as error:
                raise CliError(FAILED, "refused", f"realdebrid: the device login failed: "
                               f"{error.code}: {error.message}") from error
            left = device.expires_at - clock.monotonic()
            if left <= 0:
                raise CliError(FAILED, "expired",
                               f"realdebrid: the code expired after {device.expires_in:g}s "
                               "without approval; run the command again")
            line = (f"waiting for approval at {escape(url)} "
                    f"({clock.monotonic() - started:.0f}s, {left:.0f}s left)")
            if status is not None:
                status.update(line)
            else:
                output.note(line)
            time.sleep(min(device.interval, max(0.0, left)))
