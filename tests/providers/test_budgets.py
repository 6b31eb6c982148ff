"""``budgets``: what Real-Debrid and TorBox say a call costs is what it takes from the buckets."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from engine.testing.realdebrid import FakeRealDebrid
from engine.testing.torbox import FakeTorBox
from providers import (
    BaseProvider,
    Call,
    FakeClock,
    MockProvider,
    Provider,
    StartJobPayload,
    parse_start_job_payload,
)


def magnet(n: int) -> StartJobPayload:
    return parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{n:040x}&dn=Item.{n}"})


def taken(provider: Provider, fn: Callable[[], Any]) -> dict[str, int]:
    """Tokens ``fn`` took from each of the provider's buckets (full before it starts)."""
    provider.context.clock.advance(60.0)  # type: ignore[attr-defined]
    limiters = provider.context.limiters  # type: ignore[attr-defined]
    before = {name: limiter.granted for name, limiter in limiters.items()}
    fn()
    spent = {name: limiter.granted - before[name] for name, limiter in limiters.items()}
    return {name: count for name, count in spent.items() if count}


def expect(provider: Provider, call: Call, job: StartJobPayload | None) -> dict[str, int]:
    return {name: cost for name, cost in provider.budgets(call, job).items() if cost}


@pytest.fixture
def torbox(serve: Callable[[FakeTorBox], FakeTorBox], clock: FakeClock) -> Iterator[Any]:
    fake = serve(FakeTorBox(clock=clock))
    fake.settings.active_limit = 1000
    provider = fake.make_provider(limiters=True)
    yield provider
    provider.close()


@pytest.fixture
def realdebrid(
    serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock
) -> Iterator[Any]:
    fake = serve(FakeRealDebrid(clock=clock, active_limit=10_000))
    provider = fake.make_provider(clock=clock)
    yield provider
    provider.close()


def test_torbox_budgets_are_the_requests_each_call_sends(torbox: Any) -> None:
    first, second = magnet(1), magnet(2)
    want = expect(torbox, Call.SUBMIT, first)
    assert want == {"create": 1, "default": 2}  # user/me before the first creation
    item = None

    def submit() -> None:
        nonlocal item
        item = torbox.start_job(first)

    assert taken(torbox, submit) == want
    assert item is not None
    want = expect(torbox, Call.SUBMIT, second)
    assert want == {"create": 1, "default": 1}
    made: list[Any] = []
    assert taken(torbox, lambda: made.append(torbox.start_job(second))) == want
    rid, other = item.remote_id, made[0].remote_id
    for call, fn in [
        (Call.LINKS, lambda: torbox.get_file_links(other, second)),  # never seen: read it
        (Call.STATUS, lambda: torbox.get_status(rid)),
        (Call.POLL, lambda: torbox.list_statuses([rid])),
        (Call.TEST, torbox.test_connection),
        (Call.CANCEL, lambda: torbox.cancel(rid)),
    ]:
        assert taken(torbox, fn) == expect(torbox, call, None), call
    # A lookup that finds nothing reads the list, then the queue.
    assert taken(torbox, lambda: torbox.find_existing(magnet(9))) == expect(torbox, Call.FIND, None)


def test_torbox_only_if_cached_costs_a_checkcached_first(torbox: Any) -> None:
    torbox.test_connection()  # the plan is known: no user/me before the submission
    job = parse_start_job_payload(
        {"magnet": f"magnet:?xt=urn:btih:{5:040x}", "only_if_cached": True}
    )
    assert expect(torbox, Call.SUBMIT, job) == {"create": 1, "default": 2}


def test_realdebrid_budgets_are_the_requests_each_call_sends(realdebrid: Any) -> None:
    first = magnet(1)
    want = expect(realdebrid, Call.SUBMIT, first)
    assert want == {"default": 2}  # activeCount before the first submission, then addMagnet
    item = None

    def submit() -> None:
        nonlocal item
        item = realdebrid.start_job(first)

    assert taken(realdebrid, submit) == want
    assert item is not None
    assert expect(realdebrid, Call.SUBMIT, magnet(2)) == {"default": 1}
    rid = item.remote_id
    # The first sighting of a new torrent also reads its info and selects its files: once
    # per torrent, beyond the estimate (the bucket's debt makes the next call wait).
    assert taken(realdebrid, lambda: realdebrid.list_statuses([rid]))["default"] > 1
    for call, fn in [
        (Call.STATUS, lambda: realdebrid.get_status(rid)),
        (Call.POLL, lambda: realdebrid.list_statuses([rid])),
        (Call.FIND, lambda: realdebrid.find_existing(first)),
        (Call.TEST, realdebrid.test_connection),
        (Call.CANCEL, lambda: realdebrid.cancel(rid)),
    ]:
        spent = taken(realdebrid, fn)
        assert spent == expect(realdebrid, call, None), call


def test_a_realdebrid_link_takes_the_unrestrict_budget_too(realdebrid: Any) -> None:
    link = parse_start_job_payload({"url": "https://hoster.example/file.zip"})
    want = expect(realdebrid, Call.SUBMIT, link)
    assert want == {"default": 1, "unrestrict": 1}
    assert taken(realdebrid, lambda: realdebrid.start_job(link)) == want


def test_base_provider_budgets_only_name_buckets_it_has() -> None:
    assert MockProvider().budgets(Call.SUBMIT, magnet(1)) == {}
    limited = MockProvider(requests_per_second=2.0)
    assert all(limited.budgets(call, None) == {"default": 1} for call in Call)
    assert isinstance(BaseProvider().budgets(Call.TEST, None), Mapping)
