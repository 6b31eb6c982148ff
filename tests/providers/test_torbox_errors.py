"""Every class of TorBox failure becomes one ProviderError with its code and retryable flag."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from torbox_helpers import magnet, payload

import providers._http
from engine.testing.torbox import FakeTorBox
from providers import (
    FakeClock,
    JobStatus,
    MemorySecretStore,
    ProviderContext,
    ProviderError,
    ValidationError,
)
from providers.torbox import ERRORS, TorBoxProvider


@pytest.fixture
def fake(serve: Callable[[FakeTorBox], FakeTorBox], clock: FakeClock) -> FakeTorBox:
    return serve(FakeTorBox(clock=clock))


def raised(call: Callable[[], object]) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_error_code_maps_to_its_code_and_retryable_flag(
    provider: TorBoxProvider, fake: FakeTorBox, code: str
) -> None:
    fake.refuse(f"{1:040x}", code, detail=f"TorBox says {code}")
    error = raised(lambda: provider.start_job(payload(magnet=magnet(1))))
    rule = ERRORS[code]
    assert (error.code, error.retryable) == (rule.code, rule.retryable)
    assert error.http_status == (500 if code.endswith("ERROR") else 400)
    assert error.message == f"TorBox says {code}"  # detail is safe to show (GOSDK)
    if rule.retry_after is not None:
        assert error.retry_after == rule.retry_after


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        ("DATABASE_ERROR", True),
        ("DOWNLOAD_SERVER_ERROR", True),
        ("NO_SERVERS_AVAILABLE_ERROR", True),
        ("BAD_TOKEN", False),
        ("NO_AUTH", False),
        ("DOWNLOAD_TOO_LARGE", False),
        ("BOZO_TORRENT", False),
        ("PLAN_RESTRICTED_FEATURE", False),
        ("ACTIVE_LIMIT", True),
    ],
)
def test_the_briefed_codes_have_the_briefed_retryable_flag(code: str, retryable: bool) -> None:
    assert ERRORS[code].retryable is retryable


@pytest.mark.parametrize(("code", "retryable"), [("BRAND_NEW_ERROR", True), ("BRAND_NEW", False)])
def test_unknown_codes_follow_the_error_suffix_rule(
    provider: TorBoxProvider, fake: FakeTorBox, code: str, retryable: bool
) -> None:
    fake.refuse(f"{2:040x}", code)
    error = raised(lambda: provider.start_job(payload(magnet=magnet(2))))
    assert (error.code, error.retryable) == (code, retryable)


def test_active_limit_is_retryable_and_sets_max_active_from_the_answer(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.active_limit = 2
    provider = make()
    assert provider.max_active is None
    for n in range(2):
        provider.start_job(payload(magnet=magnet(n)))
    error = raised(lambda: provider.start_job(payload(magnet=magnet(5))))
    assert (error.code, error.retryable, error.http_status) == ("ACTIVE_LIMIT", True, 400)
    assert error.retry_after == 120.0  # rdt-client retries after 2 minutes
    assert provider.max_active == 2
    assert fake.queued() == [] and len(fake.items()) == 2
    clock.advance(60.0)  # both finished: their slots are free
    assert provider.start_job(payload(magnet=magnet(5))).status is JobStatus.RESOLVING


def test_active_limit_in_the_official_shape_with_error_null_is_recognised(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.active_limit = 1
    fake.settings.active_limit_style = "null_error"  # POSTMAN example
    fake.settings.active_limit_status = 200
    provider = make()
    provider.start_job(payload(magnet=magnet(1)))
    error = raised(lambda: provider.start_job(payload(magnet=magnet(2))))
    assert (error.code, error.retryable) == ("ACTIVE_LIMIT", True)
    assert provider.max_active == 1


def test_each_error_answer_is_parsed_once(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []

    class CountingJson:
        """The json module as ``providers._http`` sees it, counting each body it parses."""

        @staticmethod
        def loads(data: bytes) -> Any:
            parsed.append(bytes(data))
            return json.loads(data)

    fake.settings.active_limit = 1
    provider = make()
    provider.start_job(payload(magnet=magnet(1)))
    monkeypatch.setattr(providers._http, "json", CountingJson)
    refused = raised(lambda: provider.start_job(payload(magnet=magnet(2))))
    assert refused.code == "ACTIVE_LIMIT" and provider.max_active == 1  # counts still read
    assert [b for b in parsed if b"active" in b.lower()] == parsed and len(parsed) == 1
    gone = raised(lambda: provider.api.control("torrent", 999_999, "delete"))
    assert gone.code == "NOT_FOUND" and len(parsed) == 2


def test_active_limit_without_counts_learns_slots_from_the_plan(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.plan = 1  # Essential: 3 slots as clients assume (DECY; rdt-client#987)
    fake.refuse(f"{3:040x}", "ACTIVE_LIMIT")
    provider = make()
    assert raised(lambda: provider.start_job(payload(magnet=magnet(3)))).code == "ACTIVE_LIMIT"
    assert provider.max_active == 3 and fake.counts["user_me"] == 1


def test_test_connection_reports_plan_expiry_and_slots(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.plan = 3
    fake.settings.additional_slots = 2
    provider = make()
    answer = provider.test_connection()
    assert answer.ok and answer.message.startswith("TorBox Standard plan, premium until 20")
    assert answer.details["premium_expires_at"] and answer.details["max_active"] == 7
    assert provider.max_active == 7


@pytest.mark.parametrize("status", [403, 401])
def test_bad_key_is_bad_token_not_retryable_and_test_connection_says_so(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider], status: int
) -> None:
    fake.settings.auth_status = status
    provider = make(api_key="not-the-key")
    error = raised(lambda: provider.get_status("torrent:1"))
    assert (error.code, error.retryable, error.http_status) == ("BAD_TOKEN", False, status)
    answer = provider.test_connection()
    assert not answer.ok and answer.message == "TorBox rejected the API key (BAD_TOKEN)"


def test_no_credentials_is_no_auth(provider: TorBoxProvider) -> None:
    error = raised(lambda: provider.api.call("GET", "/v1/api/user/me", authenticated=False))
    assert (error.code, error.retryable) == ("NO_AUTH", False)


def test_a_missing_key_fails_locally_without_a_request(fake: FakeTorBox) -> None:
    provider = TorBoxProvider(base_url=fake.url)
    error = raised(lambda: provider.get_status("torrent:1"))
    assert (error.code, error.retryable) == ("NO_AUTH", False)
    assert fake.counts["total"] == 0
    assert not provider.test_connection().ok
    provider.close()


def test_validation_422_is_not_retryable_and_names_the_field(provider: TorBoxProvider) -> None:
    error = raised(
        lambda: provider.api.call("GET", "/v1/api/torrents/mylist", params={"id": "abc"})
    )
    assert (error.code, error.retryable, error.http_status) == ("VALIDATION_ERROR", False, 422)
    assert "query.id" in error.message and "valid integer" in error.message


def test_webdl_requestdl_with_the_control_field_name_is_a_422_naming_web_id(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    fake.add_item("webdl", "https://files.example/a.bin")
    params = {"token": fake.api_key, "webdl_id": 1}  # webdl_id is controlwebdownload's name
    error = raised(lambda: provider.api.call("GET", "/v1/api/webdl/requestdl", params=params))
    assert error.code == "VALIDATION_ERROR" and "query.web_id" in error.message


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("error_5xx", "PROVIDER_UNAVAILABLE"),
        ("html", "PROVIDER_UNAVAILABLE"),  # a 503 maintenance page
        ("malformed_json", "BAD_RESPONSE"),  # a 200 whose body does not parse
        ("reset", "PROVIDER_UNAVAILABLE"),
    ],
)
def test_server_faults_are_retryable(
    provider: TorBoxProvider, fake: FakeTorBox, fault: Any, code: str
) -> None:
    fake.inject(fault)
    error = raised(lambda: provider.get_status("torrent:1"))
    assert (error.code, error.retryable) == (code, True)


@pytest.mark.parametrize("status", [401, 403, 404, 418, 502])
def test_an_error_page_without_the_envelope_is_retried_whatever_its_status(
    provider: TorBoxProvider, fake: FakeTorBox, status: int
) -> None:
    """TorBox's own refusals, auth failures included, come in its JSON envelope; a
    page without it is something in front of TorBox (an edge's challenge page, a
    proxy) and may pass. Found in review: mapping such a 403 to BAD_TOKEN failed
    jobs for good on a transient page."""
    fake.inject("html", status=status)
    error = raised(lambda: provider.get_status("torrent:1"))
    assert (error.code, error.retryable, error.http_status) == (
        "PROVIDER_UNAVAILABLE",
        True,
        status,
    )


def test_a_hanging_server_is_a_retryable_timeout(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider]
) -> None:
    fake.inject("hang", seconds=2.0)
    provider = make(timeout=0.2)
    error = raised(lambda: provider.get_status("torrent:1"))
    assert (error.code, error.retryable) == ("TIMEOUT", True)


def test_requestdl_database_error_is_retryable_and_the_next_try_works(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    fake.add_cached(f"{4:040x}")
    job = payload(magnet=magnet(4))
    started = provider.start_job(job)
    file = provider.get_file_links(started.remote_id, job).files[0]
    fake.fail_requestdl(1)  # common under load (rdt-client#1025)
    error = raised(lambda: provider.resolve_download_url(started.remote_id, file))
    assert (error.code, error.retryable, error.http_status) == ("DATABASE_ERROR", True, 500)
    assert provider.resolve_download_url(started.remote_id, file).startswith(fake.url)


def test_requestdl_forbidden_while_the_rest_works_is_retryable(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    fake.add_cached(f"{5:040x}")
    job = payload(magnet=magnet(5))
    started = provider.start_job(job)
    file = provider.get_file_links(started.remote_id, job).files[0]
    fake.fail_requestdl(2, "AUTH_ERROR", status=403)  # decypharr#401
    error = raised(lambda: provider.resolve_download_url(started.remote_id, file))
    assert (error.code, error.retryable, error.http_status) == ("AUTH_ERROR", True, 403)


def test_unknown_item_is_not_found_and_not_retryable(provider: TorBoxProvider) -> None:
    error = raised(lambda: provider.get_status("torrent:424242"))
    assert (error.code, error.retryable, error.http_status) == ("NOT_FOUND", False, 404)
    assert raised(lambda: provider.get_status("rubbish")).code == "NOT_FOUND"


def test_wrong_route_and_legacy_route_are_not_retryable(provider: TorBoxProvider) -> None:
    missing = raised(lambda: provider.api.call("GET", "/v1/api/torrents/nothing"))
    assert (missing.code, missing.retryable, missing.http_status) == (
        "ENDPOINT_NOT_FOUND",
        False,
        404,
    )
    legacy = raised(lambda: provider.api.call("GET", "/v1/api/torrents/getqueued"))
    assert (legacy.code, legacy.retryable, legacy.http_status) == ("DEPRECATED", False, 410)


def test_invalid_options_are_validation_errors_naming_the_option() -> None:
    with pytest.raises(ValidationError) as caught:
        TorBoxProvider("key", seed=7)
    assert caught.value.field == "providers.torbox.seed"
    for page_size in (0, 1001, 10**9, True, 2.0):
        with pytest.raises(ValueError) as refused:
            TorBoxProvider("key", page_size=page_size)  # type: ignore[arg-type]
        assert str(refused.value) == (
            f"providers.torbox.page_size: invalid option {page_size!r} "
            "(expected an int from 1 to 1000)"
        )
    assert TorBoxProvider("key", page_size=1000).options.page_size == 1000


def test_a_refused_key_is_held_back_until_a_new_key_is_stored(
    fake: FakeTorBox, clock: FakeClock
) -> None:
    """A refused key cost a request on every call, as fast as the engine made them."""
    secrets = MemorySecretStore()
    secrets.set("torbox.api_key", "not-the-key")
    provider = TorBoxProvider(base_url=fake.url)
    provider.bind(ProviderContext(clock=clock, secrets=secrets))
    try:
        assert raised(lambda: provider.get_status("torrent:1")).code == "BAD_TOKEN"
        sent = fake.counts["total"]
        for call in (lambda: provider.get_status("torrent:1"), lambda: provider.list_statuses(
            ["torrent:1"]
        ), lambda: provider.start_job(payload(magnet=magnet(1)))):
            assert raised(call).code == "BAD_TOKEN"
        assert fake.counts["total"] == sent  # nothing sent while the refusal holds
        clock.advance(15.0)
        assert raised(lambda: provider.get_status("torrent:1")).code == "BAD_TOKEN"
        assert fake.counts["total"] == sent + 1  # tried once more, refused: 30 s now
        clock.advance(29.0)
        assert raised(lambda: provider.get_status("torrent:1")).code == "BAD_TOKEN"
        assert fake.counts["total"] == sent + 1
        secrets.set("torbox.api_key", fake.api_key)  # `debrid auth` stored a new key
        assert provider.test_connection().ok
    finally:
        provider.close()
