"""ProviderHttp: tokens before requests (waiting or not, as the context says), capped 429 pauses."""

from __future__ import annotations

import httpx
import pytest

from providers import FakeClock, ProviderContext, ProviderError, RateLimiter
from providers._http import ProviderHttp


def client(ctx: ProviderContext, response: httpx.Response) -> ProviderHttp:
    return ProviderHttp(
        "test",
        "http://service.invalid",
        context=lambda: ctx,
        transport=httpx.MockTransport(lambda request: response),
    )


def test_without_blocking_a_request_takes_its_token_at_once_into_debt() -> None:
    clock = FakeClock()
    bucket = RateLimiter(1.0, 1, clock)
    bucket.take()  # spent
    ctx = ProviderContext(clock=clock, limiters={"default": bucket}, blocking=False)
    http = client(ctx, httpx.Response(200, json={}))
    assert http.request("GET", "/x").status_code == 200  # no wait on a FakeClock nobody moves
    assert bucket.granted == 2
    assert bucket.delay() == pytest.approx(2.0)  # one token of debt, then one to grant
    http.close()


@pytest.mark.parametrize("header", ["999999996", "1e400", "inf"])
def test_a_429_pause_is_cut_to_the_buckets_max_pause(header: str) -> None:
    clock = FakeClock()
    bucket = RateLimiter(1.0, 1, clock, max_pause=120.0)
    ctx = ProviderContext(clock=clock, limiters={"default": bucket}, blocking=False)
    http = client(ctx, httpx.Response(429, headers={"Retry-After": header}))
    response = http.request("GET", "/x")
    assert response.extensions["debrid_retry_after"] == 120.0
    assert bucket.paused_until == pytest.approx(120.0)
    http.close()


def refused_twice_bucketed(
    other: str,
) -> tuple[FakeClock, RateLimiter, RateLimiter, ProviderHttp]:
    """A general bucket and ``other``, behind a service that answers 429, 30 s."""
    clock = FakeClock()
    general = RateLimiter(5.0, 5, clock, max_pause=600.0)
    second = RateLimiter(1.0, 1, clock, max_pause=600.0)
    ctx = ProviderContext(clock=clock, limiters={"default": general, other: second}, blocking=False)
    http = client(ctx, httpx.Response(429, headers={"Retry-After": "30"}))
    return clock, general, second, http


def test_a_429_pauses_the_buckets_the_limit_stands_for() -> None:
    """A 429 on TorBox's createtorrent (general + creation buckets, the limit being
    the creation one) held back every poll and link too; now only creations wait."""
    clock, general, create, http = refused_twice_bucketed("create")
    http.request("POST", "/create", buckets=("default", "create"), refused_by=("create",))
    assert create.paused_until == pytest.approx(30.0)
    assert general.paused_until is None or general.paused_until <= clock.monotonic()
    http.request("GET", "/list")  # the general bucket alone: that one is paused
    assert general.paused_until == pytest.approx(30.0)
    http.close()


def test_a_429_pauses_every_bucket_of_the_request_by_default() -> None:
    """Real-Debrid has one limit for the account: its unrestrict bucket is our own
    pacing, so a 429 there holds back the general bucket as well."""
    _, general, unrestrict, http = refused_twice_bucketed("unrestrict")
    http.request("POST", "/unrestrict/link", buckets=("unrestrict", "default"))
    assert general.paused_until == pytest.approx(30.0)
    assert unrestrict.paused_until == pytest.approx(30.0)
    http.close()


def general_and_create() -> tuple[FakeClock, dict[str, RateLimiter], ProviderContext]:
    """A clock, TorBox's two buckets (roomy) and a non-blocking context over them."""
    clock = FakeClock()
    limiters = {
        "default": RateLimiter(100, 100, clock, name="default"),
        "create": RateLimiter(100, 100, clock, name="create"),
    }
    return clock, limiters, ProviderContext(clock=clock, limiters=limiters, blocking=False)


def test_hintless_429s_on_one_bucket_grow_though_other_buckets_succeed() -> None:
    """Review of issue 10: one count for the whole client, reset by any success, so a
    creation limit that lasted waited 2 s each time while polls went through."""
    clock, limiters, ctx = general_and_create()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429 if request.url.path == "/create" else 200, json={})

    http = ProviderHttp("p", "http://service.invalid", context=lambda: ctx,
                        transport=httpx.MockTransport(answer))
    pauses = []
    for _ in range(3):
        http.request("POST", "/create", buckets=("default", "create"), refused_by=("create",))
        until = limiters["create"].paused_until
        assert until is not None
        pauses.append(until - clock.monotonic())
        clock.advance(pauses[-1] + 0.01)
        http.request("GET", "/list", buckets=("default",))  # a poll between: it works
    assert pauses == [pytest.approx(2.0), pytest.approx(4.0), pytest.approx(8.0)]
    http.close()


def test_a_hint_in_a_200_answers_rate_limit_grows_its_wait() -> None:
    """Review of issue 10: a TorBox answer saying RATE_LIMIT_EXCEEDED under a 200 was
    counted a success by its status first, so its wait never grew past 2 s."""
    from providers.torbox._api import TorBoxApi  # noqa: PLC0415

    clock, limiters, ctx = general_and_create()

    def answer(request: httpx.Request) -> httpx.Response:
        body = {"success": False, "error": "RATE_LIMIT_EXCEEDED", "detail": "", "data": None}
        return httpx.Response(200, json=body)

    api = TorBoxApi("torbox", "http://service.invalid", api_key=lambda: "k",
                    context=lambda: ctx, transport=httpx.MockTransport(answer))
    pauses = []
    for _ in range(3):
        with pytest.raises(ProviderError):
            api.create_webdl("https://h.example/x", {})
        until = limiters["create"].paused_until
        assert until is not None
        pauses.append(round(until - clock.monotonic(), 3))
        clock.advance(pauses[-1] + 0.01)
    assert pauses == [2.0, 4.0, 8.0]
    api.close()
