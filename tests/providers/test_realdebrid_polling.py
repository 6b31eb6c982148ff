"""How RealDebridProvider polls: one paged /torrents pass per call, ETags, big accounts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.testing.realdebrid import FakeRealDebrid
from providers import (
    FakeClock,
    JobStatus,
    ProviderError,
    StartJobPayload,
    parse_start_job_payload,
)
from providers.realdebrid import RealDebridProvider


def hex_hash(n: int) -> str:
    return f"{n:040x}"


def magnet(n: int) -> StartJobPayload:
    return parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{hex_hash(n)}"})


@pytest.fixture
def fake(serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock) -> FakeRealDebrid:
    return serve(FakeRealDebrid(clock=clock, active_limit=100))


def test_many_jobs_are_refreshed_with_a_single_request(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    ids = [provider.start_job(magnet(n)).remote_id for n in range(20)]
    before = fake.counts["total"]
    statuses = provider.list_statuses(ids)
    assert set(statuses) == set(ids)
    assert all(s.native_status == "magnet_conversion" for s in statuses.values())
    assert fake.counts["total"] - before == 1


def test_an_unchanged_list_is_revalidated_with_a_304(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    ids = [f"torrent:{fake.add_torrent(hex_hash(n))}" for n in range(3)]
    first = provider.list_statuses(ids)
    second = provider.list_statuses(ids)
    assert fake.status_counts[304] == 1
    assert second == first
    assert all(s.status is JobStatus.COMPLETED for s in second.values())


def test_pagination_past_1000_torrents_costs_one_request_per_page(
    fake: FakeRealDebrid, clock: FakeClock
) -> None:
    ids = [fake.add_torrent(hex_hash(n)) for n in range(1200)]
    provider = fake.make_provider(clock=clock, limited=False, page_size=500)
    try:
        oldest = f"torrent:{ids[0]}"
        result = provider.list_statuses([oldest])
        assert result[oldest].status is JobStatus.COMPLETED
        assert fake.counts["torrents"] == 3  # 500 + 500 + 200, by X-Total-Count
        newest = f"torrent:{ids[-1]}"
        provider.list_statuses([newest])
        assert fake.counts["torrents"] == 4  # found on page one: no more pages
    finally:
        provider.close()


def test_default_page_size_is_the_documented_maximum_of_5000(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    ids = [fake.add_torrent(hex_hash(n)) for n in range(5001)]
    wanted = [f"torrent:{ids[0]}", f"torrent:{ids[2500]}", f"torrent:{ids[-1]}"]
    assert set(provider.list_statuses(wanted)) == set(wanted)
    assert fake.counts["torrents"] == 2


def test_an_empty_page_before_the_total_falls_back_to_torrent_info(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    ids = [fake.add_torrent(hex_hash(n)) for n in range(3)]
    wanted = [f"torrent:{i}" for i in ids]
    # RD once answered a big account with an empty page (unchained-android#329).
    fake.fail_next("torrents", "x", status=200, body=b"[]", headers={"X-Total-Count": "3"})
    result = provider.list_statuses(wanted)
    assert set(result) == set(wanted)
    assert fake.counts["torrents_info"] == 3


def test_too_many_missing_after_an_empty_page_is_retryable(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    ids = [fake.add_torrent(hex_hash(n)) for n in range(30)]
    fake.fail_next("torrents", "x", status=200, body=b"[]", headers={"X-Total-Count": "30"})
    with pytest.raises(ProviderError) as caught:
        provider.list_statuses([f"torrent:{i}" for i in ids])
    assert (caught.value.code, caught.value.retryable) == ("LIST_INCOMPLETE", True)


def test_204_empty_pages_and_lower_case_total_are_understood(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    fake.empty_page_status = 204
    fake.lowercase_total_header = True
    assert provider.list_statuses(["torrent:ABCDEFGHIJKLM"]) == {}
    torrent_id = fake.add_torrent(hex_hash(1))
    assert f"torrent:{torrent_id}" in provider.list_statuses([f"torrent:{torrent_id}"])


def test_deleted_torrents_are_left_out(provider: RealDebridProvider, fake: FakeRealDebrid) -> None:
    kept = fake.add_torrent(hex_hash(1))
    result = provider.list_statuses([f"torrent:{kept}", "torrent:GONEGONEGONE2"])
    assert list(result) == [f"torrent:{kept}"]
    assert fake.counts["torrents_info"] == 0  # one page: a snapshot, nothing to double-check


def test_link_jobs_need_no_request_to_poll(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    started = provider.start_job(parse_start_job_payload({"url": "https://h.example/a.zip"}))
    before = fake.counts["total"]
    polled = provider.list_statuses([started.remote_id])[started.remote_id]
    assert polled.status is JobStatus.COMPLETED
    assert fake.counts["total"] == before


def test_waiting_files_selection_needs_info_only_once(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    started = provider.start_job(magnet(7))
    clock.advance(1)
    provider.list_statuses([started.remote_id])
    provider.list_statuses([started.remote_id])
    assert fake.counts["torrents_info"] == 1
    assert fake.counts["torrents_select_files"] == 1
