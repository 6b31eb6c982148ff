"""Credentials: private token, the OAuth device flow, refreshes, and secrets that never leak."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from realdebrid_helpers import StepClock, login, secrets_of

from engine.testing.realdebrid import FakeRealDebrid
from providers import (
    FakeClock,
    MemorySecretStore,
    ProviderContext,
    ProviderError,
    parse_start_job_payload,
)
from providers.realdebrid import RealDebridProvider


def refused(call: Callable[[], object]) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def fake(serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock) -> FakeRealDebrid:
    return serve(FakeRealDebrid(clock=clock))


@pytest.fixture
def provider(make: Callable[..., RealDebridProvider], clock: FakeClock) -> RealDebridProvider:
    return make(clock=clock, limited=False, api_token=None)


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


def test_a_refused_refresh_fails_as_bad_token_and_is_held_until_the_store_changes(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock
) -> None:
    login(provider, fake, clock)
    fake.oauth.revoke(secrets_of(provider)["refresh_token"])
    fake.expire_access_tokens()
    sent = fake.counts["total"]
    with pytest.raises(ProviderError) as caught:
        provider.start_job(parse_start_job_payload({"url": "https://h.example/f"}))
    assert (caught.value.code, caught.value.retryable) == ("BAD_TOKEN", False)
    assert fake.counts["total"] - sent == 2  # the request, the refused refresh
    result = provider.test_connection()
    assert not result.ok and "bad_token" in result.message
    for _ in range(3):
        assert refused(lambda: provider.get_status("torrent:ABC")).code == "BAD_TOKEN"
    assert fake.counts["total"] - sent == 2  # held: nothing more sent
    # Another process logs in with a private token: the store changes under us.
    fake.tokens.add("tok-private-2")
    provider.context.secrets.set("realdebrid.api_token", "tok-private-2")
    assert provider.test_connection().ok
    assert fake.counts["total"] - sent == 3


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


OAUTH_SET = {"access_token", "refresh_token", "client_id", "client_secret"}


def test_a_device_login_replaces_a_private_token_and_a_private_token_replaces_it(
    make: Callable[..., RealDebridProvider], fake: FakeRealDebrid, clock: StepClock
) -> None:
    """The newest login wins: the old private token used to win over every later login."""
    provider = make(clock=clock, limited=False)  # with the fake's private token
    assert secrets_of(provider) == {"api_token": "fake-rd-token"}
    login(provider, fake, clock)
    assert set(secrets_of(provider)) == OAUTH_SET
    assert provider.api.credentials.can_refresh
    fake.tokens.clear()  # only the OAuth access token gets through now
    assert provider.test_connection().ok
    fake.expire_access_tokens()
    assert provider.test_connection().ok
    assert fake.counts["oauth_token"] == 2  # the exchange, then a refresh on the 401
    fake.tokens.add("tok-private-2")
    provider.api.credentials.set_api_token("tok-private-2")
    assert secrets_of(provider) == {"api_token": "tok-private-2"}
    assert not provider.api.credentials.can_refresh
    fake.oauth.access_tokens.clear()  # only the new private token gets through now
    assert provider.test_connection().ok


def test_the_api_token_option_is_a_login_only_when_it_changes(
    fake: FakeRealDebrid, clock: StepClock
) -> None:
    """Given at every start, the option must not undo a device login made since."""
    store = MemorySecretStore()
    started: list[RealDebridProvider] = []

    def start(token: str) -> RealDebridProvider:
        provider = RealDebridProvider(
            api_token=token, base_url=fake.rest_url, oauth_base_url=fake.oauth_url
        )
        provider.bind(ProviderContext(clock=clock, secrets=store))
        started.append(provider)
        return provider

    try:
        login(start("fake-rd-token"), fake, clock)
        restarted = start("fake-rd-token")  # the same config, after a restart
        assert set(secrets_of(restarted)) == OAUTH_SET
        assert restarted.api.credentials.can_refresh
        changed = start("tok-private-2")  # the config names another token: a new login
        assert secrets_of(changed) == {"api_token": "tok-private-2"}
    finally:
        for provider in started:
            provider.close()


def test_a_refused_token_exchange_leaves_the_previous_login_intact(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock
) -> None:
    """The new client pair used to be stored before the exchange, which then failed."""
    login(provider, fake, clock)
    before = secrets_of(provider)
    device = provider.start_device_auth()
    fake.approve_device(device.user_code)
    fake.fail_next("oauth_token", "invalid_grant", status=400)
    assert refused(lambda: provider.poll_device_auth_once(device)).code == "BAD_TOKEN"
    assert secrets_of(provider) == before
    assert provider.test_connection().ok


def test_a_refused_private_token_is_held_back_growing_to_a_minute(
    make: Callable[..., RealDebridProvider], fake: FakeRealDebrid, clock: StepClock
) -> None:
    provider = make(clock=clock, limited=False)
    fake.tokens.clear()  # the private token was revoked
    sent = fake.counts["total"]

    def requests() -> int:
        return fake.counts["total"] - sent

    assert refused(lambda: provider.get_status("torrent:ABC")).code == "BAD_TOKEN"
    assert requests() == 1
    for _ in range(5):  # the same code at once, nothing sent
        assert refused(lambda: provider.get_status("torrent:ABC")).code == "BAD_TOKEN"
    answer = provider.test_connection()
    assert not answer.ok and answer.details["code"] == "BAD_TOKEN"
    assert requests() == 1
    for hold, expected in ((15.0, 2), (30.0, 3), (60.0, 4), (60.0, 5)):
        clock.advance(hold - 0.5)
        assert refused(lambda: provider.get_status("torrent:ABC")).code == "BAD_TOKEN"
        assert requests() == expected - 1
        clock.advance(0.5)  # the hold is over: one request tries again, and is refused
        assert refused(lambda: provider.get_status("torrent:ABC")).code == "BAD_TOKEN"
        assert requests() == expected
    fake.tokens.add("tok-private-2")
    provider.api.credentials.set_api_token("tok-private-2")  # a new key ends the hold at once
    assert provider.test_connection().ok
