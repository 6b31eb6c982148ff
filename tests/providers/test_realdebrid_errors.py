"""Every way Real-Debrid says no, and the ProviderError (code, retryable) each one becomes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from engine.testing.realdebrid import ERRORS, FakeRealDebrid, Scenario
from providers import (
    FakeClock,
    JobStatus,
    ProviderError,
    StartJobPayload,
    parse_start_job_payload,
)
from providers._errors import ErrorRule
from providers.realdebrid import ERROR_CODES, RealDebridProvider
from providers.realdebrid._tables import HTTP_FALLBACK, error_rule
from providers.torbox import ERRORS as TORBOX_ERRORS

HASH = "f" * 40
TOKEN = "fake-rd-token"

#: What each RD error must become: (our code, retryable). Retry 5xx-like, 21, 23,
#: 34, 36; never 35, 16, 9; 8 fails as an auth error (facts section 4.1).
EXPECTED: dict[str, tuple[str, bool]] = {
    "internal_error": ("INTERNAL_ERROR", True),
    "parameter_missing": ("BAD_REQUEST", False),
    "wrong_parameter": ("BAD_REQUEST", False),
    "unknown_method": ("BAD_REQUEST", False),
    "method_not_allowed": ("BAD_REQUEST", False),
    "slow_down": ("RATE_LIMITED", True),
    "ressource_unreachable": ("PROVIDER_UNAVAILABLE", True),
    "unknown_ressource": ("NOT_FOUND", False),
    "bad_token": ("BAD_TOKEN", False),
    "permission_denied": ("PERMISSION_DENIED", False),
    "two_factor_auth_needed": ("TWO_FACTOR_REQUIRED", False),
    "account_locked": ("ACCOUNT_LOCKED", False),
    "account_not_activated": ("ACCOUNT_NOT_ACTIVATED", False),
    "hoster_unsupported": ("HOSTER_UNSUPPORTED", False),
    "hoster_in_maintenance": ("HOSTER_MAINTENANCE", True),
    "hoster_limit_reached": ("HOSTER_LIMIT", True),
    "hoster_unavailable": ("HOSTER_UNAVAILABLE", False),
    "hoster_not_free": ("PREMIUM_REQUIRED", False),
    "too_many_active_downloads": ("ACTIVE_LIMIT", True),
    "ip_not_allowed": ("IP_NOT_ALLOWED", False),
    "traffic_exhausted": ("TRAFFIC_EXHAUSTED", True),
    "file_unavailable": ("FILE_UNAVAILABLE", False),
    "service_unavailable": ("PROVIDER_UNAVAILABLE", True),
    "upload_too_big": ("UPLOAD_TOO_BIG", False),
    "upload_error": ("UPLOAD_ERROR", True),
    "file_not_allowed": ("FILE_NOT_ALLOWED", False),
    "torrent_too_big": ("TORRENT_TOO_BIG", False),
    "torrent_file_invalid": ("INVALID_TORRENT", False),
    "action_already_done": ("ALREADY_DONE", False),
    "image_resolution_error": ("BAD_REQUEST", False),
    "torrent_already_active": ("ALREADY_ACTIVE", False),
    "too_many_requests": ("RATE_LIMITED", True),
    "infringing_file": ("INFRINGING_FILE", False),
    "fair_usage_limit": ("FAIR_USAGE_LIMIT", True),
    "disabled_endpoint": ("DISABLED_ENDPOINT", False),
}


def payload(**fields: Any) -> StartJobPayload:
    fields.setdefault("magnet", f"magnet:?xt=urn:btih:{HASH}&dn=Show")
    return parse_start_job_payload(fields)


@pytest.fixture
def fake(serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock) -> FakeRealDebrid:
    return serve(FakeRealDebrid(clock=clock))


def refused(provider: RealDebridProvider, job: StartJobPayload | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.start_job(job or payload())
    return caught.value


def test_every_documented_error_code_is_in_the_table() -> None:
    assert set(EXPECTED) == set(ERRORS)
    assert set(ERROR_CODES) == {-1, *range(1, 38)}


@pytest.mark.parametrize("error", sorted(set(EXPECTED) - {"too_many_active_downloads"}))
def test_each_error_code_maps_to_its_code_and_retryable_flag(
    provider: RealDebridProvider, fake: FakeRealDebrid, error: str
) -> None:
    provider.start_job(payload(magnet=f"magnet:?xt=urn:btih:{'1' * 40}"))  # reads activeCount
    status = 400 if error == "action_already_done" else None  # its usual 202 is a success
    fake.fail_next("torrents_add_magnet", error, status=status)
    caught = refused(provider)
    assert (caught.code, caught.retryable) == EXPECTED[error]
    assert caught.provider == "realdebrid" and error in caught.message


def test_too_many_active_downloads_is_active_limit_and_updates_max_active(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    fake.active_limit = 1
    provider.start_job(payload(magnet=f"magnet:?xt=urn:btih:{'1' * 40}"))
    assert provider.max_active == 1
    fake.active_limit = 2
    fake.fail_next("torrents_add_magnet", "too_many_active_downloads")
    caught = refused(provider)
    assert (caught.code, caught.retryable, caught.http_status) == ("ACTIVE_LIMIT", True, 509)
    assert provider.max_active == 2  # re-read from activeCount on the refusal
    assert fake.counts["torrents_active_count"] == 2


def test_the_fake_slot_limit_refuses_the_next_torrent(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    fake.active_limit = 1
    provider.start_job(payload(magnet=f"magnet:?xt=urn:btih:{'1' * 40}"))
    assert refused(provider).code == "ACTIVE_LIMIT"
    assert len(fake.torrents()) == 1


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (403, {"error": "infringing_file"}, "INFRINGING_FILE", False),  # string only
        (503, {"error": "too_many_active_downloads"}, "ACTIVE_LIMIT", True),
        (509, {"error": "something_new"}, "ACTIVE_LIMIT", True),  # status only
        (451, {"error": "something_new"}, "INFRINGING_FILE", False),
        (502, {"error": "bad gateway"}, "PROVIDER_UNAVAILABLE", True),
        (418, {"error": "teapot"}, "PROVIDER_ERROR", False),
        (400, {"error": "x", "error_code": 999}, "BAD_REQUEST", False),
        (401, {}, "BAD_TOKEN", False),
        (404, [], "NOT_FOUND", False),
    ],
)
def test_errors_without_a_known_code_fall_back_to_string_then_status(
    provider: RealDebridProvider,
    fake: FakeRealDebrid,
    status: int,
    body: Any,
    code: str,
    retryable: bool,
) -> None:
    fake.fail_next("torrents_add_magnet", "x", status=status, body=json.dumps(body).encode())
    caught = refused(provider)
    assert (caught.code, caught.retryable, caught.http_status) == (code, retryable, status)


@pytest.mark.parametrize("status", [451, 403, 503])
def test_infringing_file_is_never_retried_whatever_the_http_status(
    provider: RealDebridProvider, fake: FakeRealDebrid, status: int
) -> None:
    fake.set_scenario(HASH, Scenario(infringing=True))
    fake.infringing_status = status
    caught = refused(provider)
    assert (caught.code, caught.retryable) == ("INFRINGING_FILE", False)


def test_a_maintenance_page_is_a_retryable_provider_unavailable(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    fake.maintenance = True
    caught = refused(provider)
    assert (caught.code, caught.retryable, caught.http_status) == (
        "PROVIDER_UNAVAILABLE",
        True,
        503,
    )
    with pytest.raises(ProviderError) as listed:
        provider.list_statuses(["torrent:ABCDEFGHIJKLM"])
    assert listed.value.retryable


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("error_5xx", "PROVIDER_UNAVAILABLE"),
        ("reset", "PROVIDER_UNAVAILABLE"),
        ("malformed_json", "BAD_RESPONSE"),  # a 200 whose body does not parse
        ("html", "PROVIDER_UNAVAILABLE"),  # a 503 maintenance page
    ],
)
def test_transport_and_body_faults_are_retryable(
    provider: RealDebridProvider, fake: FakeRealDebrid, kind: Any, code: str
) -> None:
    provider.start_job(payload(magnet=f"magnet:?xt=urn:btih:{'1' * 40}"))
    fake.inject(kind, route="torrents_add_magnet")
    caught = refused(provider)
    assert caught.retryable and caught.code == code
    assert "?" not in caught.message


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (401, "BAD_TOKEN", False),  # a private token cannot be refreshed: fails at once
        (403, "PERMISSION_DENIED", False),  # the HTML 403 RD sends some clients
        (404, "NOT_FOUND", False),
        (429, "RATE_LIMITED", True),
        (451, "INFRINGING_FILE", False),
        (502, "PROVIDER_UNAVAILABLE", True),
        (503, "PROVIDER_UNAVAILABLE", True),
    ],
)
@pytest.mark.parametrize("body", [b"", b"<html><body>nope</body></html>"], ids=["bare", "html"])
def test_an_error_status_without_json_means_what_its_status_says(
    provider: RealDebridProvider,
    fake: FakeRealDebrid,
    status: int,
    code: str,
    retryable: bool,
    body: bytes,
) -> None:
    """Status first, then body: before, any non-JSON error was a retryable
    PROVIDER_UNAVAILABLE, so a 403 page was retried for ever."""
    fake.fail_next(
        "torrents_add_magnet", "x", status=status, body=body, headers={"Content-Type": "text/html"}
    )
    caught = refused(provider)
    assert (caught.code, caught.retryable, caught.http_status) == (code, retryable, status)


def test_a_429_page_keeps_its_retry_hint(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    fake.fail_next(
        "torrents_add_magnet",
        "x",
        status=429,
        body=b"<html>slow down</html>",
        headers={"Content-Type": "text/html", "Retry-After": "7"},
    )
    caught = refused(provider)
    assert (caught.code, caught.retry_after) == ("RATE_LIMITED", 7.0)


def test_a_404_page_on_delete_is_already_gone(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    started = provider.start_job(payload())
    fake.fail_next(
        None, "x", status=404, body=b"<html>Not Found</html>", headers={"Content-Type": "text/html"}
    )
    result = provider.cancel(started.remote_id)
    assert result.cancelled and result.already_gone


def test_a_duplicate_refused_with_code_33_adopts_the_torrent_already_there(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    fake.reject_duplicates = True
    first = provider.start_job(payload())
    second = provider.start_job(payload())
    assert second.remote_id == first.remote_id
    assert fake.torrents_by_hash()[HASH] == 1


def test_select_files_refused_for_slots_keeps_the_job_resolving_until_a_slot_frees(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    started = provider.start_job(payload())
    other = provider.start_job(payload(magnet=f"magnet:?xt=urn:btih:{'2' * 40}"))
    clock.advance(1)
    fake.active_limit = 1
    status = provider.list_statuses([started.remote_id])[started.remote_id]
    assert status.status is JobStatus.RESOLVING
    assert provider.max_active == 1
    assert fake.status_counts[509] == 1
    provider.cancel(other.remote_id)
    provider.list_statuses([started.remote_id])
    assert fake.torrents()[0]["status"] == "queued"


def test_action_already_done_on_select_counts_as_success(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    started = provider.start_job(payload())
    clock.advance(1)
    fake.fail_next("torrents_select_files", "action_already_done", status=400)
    status = provider.list_statuses([started.remote_id])[started.remote_id]
    assert status.status is JobStatus.RESOLVING  # no error surfaced


def test_retryable_trouble_while_selecting_is_left_for_the_next_poll(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    started = provider.start_job(payload())
    clock.advance(1)
    fake.inject("reset", route="torrents_select_files")
    status = provider.list_statuses([started.remote_id])[started.remote_id]
    assert status.status is JobStatus.RESOLVING
    provider.list_statuses([started.remote_id])
    assert fake.torrents()[0]["status"] == "queued"


def done_torrent(provider: RealDebridProvider, clock: FakeClock, job: StartJobPayload) -> str:
    started = provider.start_job(job)
    for _ in range(10):
        if provider.list_statuses([started.remote_id])[started.remote_id].status.terminal:
            return started.remote_id
        clock.advance(1)
    raise AssertionError("not done")


@pytest.mark.parametrize("error", ["hoster_unavailable", "file_unavailable"])
def test_dead_torrent_links_fail_as_link_dead_not_retryable(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock, error: str
) -> None:
    job = payload()
    remote_id = done_torrent(provider, clock, job)
    fake.break_links(remote_id.split(":")[1], error)
    with pytest.raises(ProviderError) as caught:
        provider.get_file_links(remote_id, job)
    assert (caught.value.code, caught.value.retryable) == ("LINK_DEAD", False)
    assert "added again" in caught.value.message


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        # 19 on a hoster link: that hoster is down for now, so try again later (it
        # was never retried); on a torrent link it is a dead copy (LINK_DEAD above).
        ("hoster_unavailable", "HOSTER_UNAVAILABLE", True),
        ("file_unavailable", "FILE_UNAVAILABLE", False),
        ("hoster_unsupported", "HOSTER_UNSUPPORTED", False),
        ("traffic_exhausted", "TRAFFIC_EXHAUSTED", True),
        ("fair_usage_limit", "FAIR_USAGE_LIMIT", True),
    ],
)
def test_hoster_link_failures(
    provider: RealDebridProvider, fake: FakeRealDebrid, error: str, code: str, retryable: bool
) -> None:
    fake.fail_link("bad.example", error)
    caught = refused(provider, parse_start_job_payload({"url": "https://bad.example/f.zip"}))
    assert (caught.code, caught.retryable) == (code, retryable)


def test_errors_carry_no_token_and_no_query_string(fake: FakeRealDebrid, clock: FakeClock) -> None:
    provider = fake.make_provider(clock=clock, limited=False, api_token="sekrit-token-value")
    try:
        with pytest.raises(ProviderError) as caught:
            provider.list_statuses(["torrent:ABCDEFGHIJKLM"])
        assert caught.value.code == "BAD_TOKEN" and not caught.value.retryable
        text = str(caught.value) + repr(caught.value) + repr(provider)
        assert "sekrit" not in text and "offset=" not in text
        assert fake.counts["oauth_token"] == 0  # a private token is never refreshed
    finally:
        provider.close()


def test_answers_of_the_wrong_shape_are_retryable_bad_responses() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/torrents"):
            return httpx.Response(200, json={"not": "a list"})
        if request.url.path.endswith("/activeCount"):
            return httpx.Response(200, json={"nb": 0, "limit": "ten"})
        if request.url.path.endswith("/addMagnet"):
            return httpx.Response(201, json=["no id"])
        if "/torrents/info/" in request.url.path:
            return httpx.Response(
                200, json={"id": "A", "status": "downloaded", "files": [{"id": "one", "path": 3}]}
            )
        return httpx.Response(200, content=b"{}")

    provider = RealDebridProvider(
        api_token="t", base_url="http://rd.invalid/rest/1.0", transport=httpx.MockTransport(handler)
    )
    try:
        for call in (
            lambda: provider.list_statuses(["torrent:ABCDEFGHIJKLM"]),
            lambda: provider.start_job(payload()),
            lambda: provider.get_file_links("torrent:ABCDEFGHIJKLM", payload()),
        ):
            with pytest.raises(ProviderError) as caught:
                call()
            assert (caught.value.code, caught.value.retryable) == ("BAD_RESPONSE", True)
        assert provider.max_active is None  # a limit that is not a number is ignored
    finally:
        provider.close()


def test_a_refused_selection_fails_that_job_only(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    first = provider.start_job(payload())
    second = provider.start_job(payload(magnet=f"magnet:?xt=urn:btih:{'2' * 40}"))
    clock.advance(1)
    fake.fail_next("torrents_select_files", "wrong_parameter", status=404)
    statuses = provider.list_statuses([first.remote_id, second.remote_id])
    failed = [s for s in statuses.values() if s.status is JobStatus.FAILED]
    assert len(failed) == 1 and failed[0].error_code == "BAD_REQUEST"
    assert len([s for s in statuses.values() if s.status is JobStatus.RESOLVING]) == 1


def test_an_account_wide_refusal_while_selecting_propagates(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    started = provider.start_job(payload())
    clock.advance(1)
    fake.fail_next("torrents_select_files", "account_locked")
    with pytest.raises(ProviderError) as caught:
        provider.list_statuses([started.remote_id])
    assert caught.value.code == "ACCOUNT_LOCKED"


def test_both_providers_error_tables_hold_one_rule_shape() -> None:
    rules = [*ERROR_CODES.values(), *HTTP_FALLBACK.values(), *TORBOX_ERRORS.values()]
    rules.append(error_rule(503, None, None))
    assert {type(rule) for rule in rules} == {ErrorRule}
    # Real-Debrid's rules name no wait of their own: the answer's Retry-After decides.
    assert {rule.retry_after for rule in ERROR_CODES.values()} == {None}
