"""Credentials: private token, the OAuth device flow, refreshes, and secrets that never leak."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.testing.realdebrid import FakeRealDebrid
from providers import (
    FakeClock,
    MemorySecretStore,
    ProviderContext,
    ProviderError,
    parse_start_job_payload,
)
from providers.realdebrid import RealDebridProvider


class StepClock(FakeClock):
    """A FakeClock that signals when a thread starts sleeping on it, and until when."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = threading.Event()
        self.until = 0.0

    def sleep(self, seconds: float) -> None:
        self.until = self.monotonic() + seconds
        self.sleeping.set()
        super().sleep(seconds)


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def fake(serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock) -> FakeRealDebrid:
    return serve(FakeRealDebrid(clock=clock))


@pytest.fixture
def provider(make: Callable[..., RealDebridProvider], clock: FakeClock) -> RealDebridProvider:
    return make(clock=clock, limited=False, api_token=None)


def secrets_of(provider: RealDebridProvider) -> dict[str, str]:
    store = provider.context.secrets
    names = ("api_token", "access_token", "refresh_token", "client_id", "client_secret")
    values = {name: store.get(f"realdebrid.{name}") for name in names}
    return {k: v for k, v in values.items() if v}


def login(provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock) -> str:
    """Run the device flow, approving after two pending polls; returns the device code."""
    device = provider.start_device_auth()
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def poll() -> None:
        try:
            provider.poll_device_auth(device)
            outcome["done"] = True
        except Exception as error:
            outcome["error"] = error
        finished.set()

    worker = threading.Thread(target=poll)
    worker.start()
    try:
        for _ in range(200):  # bounded: 10 s of real time at most
            if finished.is_set():
                break
            if not clock.sleeping.wait(timeout=0.05):
                continue
            clock.sleeping.clear()
            if fake.counts["oauth_device_credentials"] >= 2:
                fake.approve_device(device.user_code)
            clock.set(clock.until)
    finally:
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome == {"done": True}
    return device.device_code


def test_device_flow_stores_tokens_in_the_secret_store_only(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock
) -> None:
    device = provider.start_device_auth()
    assert device.verification_url == "https://real-debrid.com/device"
    assert device.interval == 5 and device.expires_in == 1800
    assert device.device_code not in repr(device) and device.user_code in repr(device)
    login(provider, fake, clock)
    assert fake.counts["oauth_device_credentials"] == 3  # two pending, then the pair
    assert set(secrets_of(provider)) == {
        "access_token",
        "refresh_token",
        "client_id",
        "client_secret",
    }
    assert provider.test_connection().ok


def test_device_flow_gives_up_when_the_code_expires(fake: FakeRealDebrid) -> None:
    clock = FakeClock(autojump=True)
    provider = fake.make_provider(clock=clock, limited=False, api_token=None)
    try:
        device = provider.start_device_auth()
        with pytest.raises(ProviderError) as caught:
            provider.poll_device_auth(device)
        assert (caught.value.code, caught.value.retryable) == ("AUTH_EXPIRED", False)
        assert clock.monotonic() <= device.expires_at
        assert fake.counts["oauth_device_credentials"] == 1800 // 5
    finally:
        provider.close()


def test_device_flow_keeps_polling_through_transient_failures(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    device = provider.start_device_auth()
    fake.approve_device(device.user_code)
    fake.inject("reset", route="oauth_device_credentials")
    assert not provider.poll_device_auth_once(device)
    fake.inject("error_5xx", route="oauth_token")
    assert not provider.poll_device_auth_once(device)
    assert provider.poll_device_auth_once(device)


def test_access_token_is_refreshed_shortly_before_it_expires(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock
) -> None:
    login(provider, fake, clock)
    old = secrets_of(provider)["access_token"]
    clock.advance(3600 - 30)  # within the 60 s margin
    assert provider.test_connection().ok
    assert fake.counts["oauth_token"] == 2  # the exchange, then one refresh
    assert fake.status_counts[401] == 0  # refreshed before RD could refuse it
    assert secrets_of(provider)["access_token"] != old


def test_a_401_bad_token_refreshes_once_and_repeats_the_request(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock
) -> None:
    login(provider, fake, clock)
    fake.expire_access_tokens()
    assert provider.test_connection().ok
    assert fake.status_counts[401] == 1 and fake.counts["oauth_token"] == 2
    assert fake.counts["user"] == 2


@pytest.mark.parametrize("body", [b"", b"<html><body>Unauthorized</body></html>"])
def test_a_bare_401_refreshes_too(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock, body: bytes
) -> None:
    """Status first: a 401 without RD's JSON (a proxy's page, no body) is still an
    expired token (it was a retryable PROVIDER_UNAVAILABLE, and never refreshed)."""
    login(provider, fake, clock)
    html = {"Content-Type": "text/html"}
    fake.fail_next("user", "bad_token", status=401, body=body, headers=html)
    assert provider.test_connection().ok
    assert fake.counts["oauth_token"] == 2  # the exchange, then the refresh the 401 asked for
    assert fake.counts["user"] == 2


def test_a_refused_refresh_fails_as_bad_token(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock
) -> None:
    login(provider, fake, clock)
    fake.oauth.revoke(secrets_of(provider)["refresh_token"])
    fake.expire_access_tokens()
    with pytest.raises(ProviderError) as caught:
        provider.start_job(parse_start_job_payload({"url": "https://h.example/f"}))
    assert (caught.value.code, caught.value.retryable) == ("BAD_TOKEN", False)
    result = provider.test_connection()
    assert not result.ok and "bad_token" in result.message


def test_no_credentials_at_all_is_auth_required(provider: RealDebridProvider) -> None:
    with pytest.raises(ProviderError) as caught:
        provider.start_job(parse_start_job_payload({"url": "https://h.example/f"}))
    assert caught.value.code == "AUTH_REQUIRED" and not caught.value.retryable
    assert not provider.test_connection().ok


def test_bind_moves_the_api_token_into_the_engines_secret_store(fake: FakeRealDebrid) -> None:
    provider = RealDebridProvider(api_token="tok-123456", base_url=fake.rest_url)
    try:
        before = provider.context.secrets
        store = MemorySecretStore()
        provider.bind(ProviderContext(secrets=store))
        assert store.get("realdebrid.api_token") == "tok-123456"
        assert before.get("realdebrid.api_token") is None
        assert not any("tok-123456" in s for s in strings_in(provider))
    finally:
        provider.close()


def strings_in(root: object, depth: int = 5) -> Iterator[str]:
    """Every str reachable from ``root``'s attributes (not through the secret store)."""
    seen: set[int] = set()

    def walk(obj: object, level: int) -> Iterator[str]:
        if id(obj) in seen or level < 0 or isinstance(obj, MemorySecretStore):
            return
        seen.add(id(obj))
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            for key, value in obj.items():
                yield from walk(key, level - 1)
                yield from walk(value, level - 1)
        elif isinstance(obj, list | tuple | set | frozenset):
            for item in obj:
                yield from walk(item, level - 1)
        elif hasattr(obj, "__dict__") and obj.__class__.__module__.startswith("providers"):
            yield from walk(vars(obj), level - 1)

    yield from walk(root, depth)


def test_secrets_never_reach_logs_errors_reprs_or_job_data(
    provider: RealDebridProvider,
    fake: FakeRealDebrid,
    clock: StepClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        device_code = login(provider, fake, clock)
        secrets = [*secrets_of(provider).values(), device_code]
        job = parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{'9' * 40}"})
        started = provider.start_job(job)
        clock.advance(1)
        status = provider.list_statuses([started.remote_id])[started.remote_id]
        fake.expire_access_tokens()
        provider.test_connection()  # refresh on 401
        fake.oauth.revoke(secrets_of(provider)["refresh_token"])
        fake.expire_access_tokens()
        with pytest.raises(ProviderError) as caught:
            provider.get_status(started.remote_id)
    assert caplog.records, "expected some log output to check"
    secrets += list(secrets_of(provider).values())
    exposed = "\n".join(
        [
            caplog.text,
            *(str(r.__dict__) for r in caplog.records),
            str(caught.value),
            repr(caught.value),
            repr(provider),
            repr(started),
            repr(status),
            str(status.metadata),
        ]
    )
    for secret in secrets:
        assert secret not in exposed
    assert not any(secret in s for s in strings_in(provider) for secret in secrets)
