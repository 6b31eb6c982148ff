"""Regression tests from the review of issue 10's first pieces (each failed before its fix).

Narrow answer-mapping tests: ``httpx.MockTransport`` stands in for the service.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from providers import FakeClock, ProviderContext, ProviderError, RateLimiter
from providers.realdebrid import RealDebridProvider
from providers.torbox import TorBoxProvider

HASH = "ab" * 20
Handler = Callable[[httpx.Request], httpx.Response]


def bound(
    provider: RealDebridProvider | TorBoxProvider, clock: FakeClock
) -> dict[str, RateLimiter]:
    limiters = {
        name: RateLimiter(limit.rate, limit.burst, clock, name=name)
        for name, limit in provider.rate_limits().items()
    }
    provider.bind(ProviderContext(clock=clock, limiters=limiters, blocking=False))
    return limiters


def torbox(handler: Handler) -> tuple[TorBoxProvider, dict[str, RateLimiter]]:
    provider = TorBoxProvider("key", transport=httpx.MockTransport(handler))
    return provider, bound(provider, FakeClock())


def realdebrid(handler: Handler) -> tuple[RealDebridProvider, dict[str, RateLimiter]]:
    provider = RealDebridProvider("tok", transport=httpx.MockTransport(handler))
    return provider, bound(provider, FakeClock())


def season_pack(item_id: int, files: int) -> dict[str, object]:
    """One mylist item as a large account has them: a season pack, every field filled."""
    entries = []
    for n in range(files):
        name = f"Some.Show.S01.1080p.WEB-DL.DDP5.1.H.264-GRP/Some.Show.S01E{n:02d}.1080p.mkv"
        entries.append({
            "id": n, "md5": None, "hash": HASH, "name": name, "size": 10**9, "zipped": False,
            "s3_path": f"/{HASH}/{name}", "infected": False, "mimetype": "video/x-matroska",
            "short_name": name.rsplit("/", 1)[-1], "absolute_path": f"/downloads/{HASH}/{name}",
            "opensubtitles_hash": None,
        })
    return {
        "id": item_id, "hash": f"{item_id:040x}", "name": "Some.Show.S01", "size": 10**10,
        "download_state": "completed", "progress": 1, "download_present": True,
        "download_finished": True, "files": entries, "magnet": f"magnet:?xt=urn:btih:{HASH}",
    }


def test_a_full_page_of_a_large_torbox_account_is_under_the_cap() -> None:
    """1,000 season packs of 16 files, about 9.6 MB: over the first 8 MiB cap, so
    every poll of such an account failed for ever."""
    page = [season_pack(i, 16) for i in range(1000)]
    body = json.dumps({"success": True, "error": None, "detail": "", "data": page}).encode()
    assert len(body) > 8 * 1024 * 1024
    provider, _ = torbox(lambda request: httpx.Response(200, content=body))
    statuses = provider.list_statuses(["torrent:5"])
    assert statuses["torrent:5"].status.value == "completed"


def test_a_torbox_rate_limit_in_the_body_under_another_status_pauses_the_bucket() -> None:
    refusal = {"success": False, "error": "TOO_MANY_REQUESTS", "detail": "slow", "data": None}
    provider, limiters = torbox(lambda request: httpx.Response(403, json=refusal))
    with pytest.raises(ProviderError) as caught:
        provider.get_status("torrent:5")
    assert caught.value.code == "RATE_LIMITED"
    # ProviderHttp pauses only on a 429: the provider itself pauses what it used.
    assert limiters["default"].delay() > 0


@pytest.mark.parametrize("status", [403, 404])
def test_a_torbox_page_without_json_under_403_or_404_is_retried(status: int) -> None:
    """TorBox's own refusals come in its JSON envelope; an HTML 403 or 404 is
    something in front of it (an edge challenge page) and may pass."""
    provider, _ = torbox(
        lambda request: httpx.Response(
            status, text="<html>Just a moment...</html>", headers={"content-type": "text/html"}
        )
    )
    with pytest.raises(ProviderError) as caught:
        provider.get_status("torrent:5")
    assert caught.value.retryable
    assert caught.value.code == "PROVIDER_UNAVAILABLE"


@pytest.mark.parametrize(
    ("status", "body"), [(200, b""), (302, b""), (200, b"<html>maintenance</html>")]
)
def test_a_real_debrid_success_it_did_not_expect_is_retried(status: int, body: bytes) -> None:
    """selectFiles answers 204: a 200 page or a redirect is a proxy's or a fault's
    answer, retried, never a final PROVIDER_ERROR that fails the job."""
    provider, _ = realdebrid(
        lambda request: httpx.Response(status, content=body, headers={"location": "https://x/"})
    )
    with pytest.raises(ProviderError) as caught:
        provider.api.call("POST", "/torrents/selectFiles/ABC", data={"files": "all"}, ok=(204, 202))
    assert caught.value.retryable


def test_a_real_debrid_429_on_unrestrict_holds_back_every_request() -> None:
    """Real-Debrid has one limit for the account (250 a minute); the unrestrict
    bucket is only our own pacing, so a 429 there pauses the general bucket too."""
    provider, limiters = realdebrid(
        lambda request: httpx.Response(429, json={"error": "too_many_requests", "error_code": 34})
    )
    with pytest.raises(ProviderError) as caught:
        provider.links.unrestrict("https://example.com/file", torrent_link=False)
    assert caught.value.code == "RATE_LIMITED"
    assert limiters["default"].delay() > 0
    assert limiters["unrestrict"].delay() > 0
