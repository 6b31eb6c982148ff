"""How TorBoxProvider reads TorBox's lists: requests per poll, stale lists, the queue, recovery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import httpx
import pytest
from torbox_helpers import magnet, payload

from engine.testing.torbox import FakeTorBox
from providers import FakeClock, JobStatus
from providers.torbox import TorBoxProvider


@pytest.fixture
def fake(serve: Callable[[FakeTorBox], FakeTorBox], clock: FakeClock) -> FakeTorBox:
    return serve(FakeTorBox(clock=clock))


def requests_to(fake: FakeTorBox, route: str) -> int:
    return fake.counts[route]


@pytest.mark.parametrize("count", [10, 100, 1000])
def test_one_poll_is_one_mylist_request_whatever_the_number_of_jobs(
    fake: FakeTorBox, provider: TorBoxProvider, count: int
) -> None:
    for n in range(50):  # the user's own, older items share the list
        fake.add_item("torrent", f"{100_000 + n:040x}", files=[("g.bin", 10)])
    ids = [
        f"torrent:{fake.add_item('torrent', f'{n:040x}', files=[('f.bin', 10)]).id}"
        for n in range(count)
    ]
    statuses = provider.list_statuses(ids)
    assert set(statuses) == set(ids)
    assert requests_to(fake, "mylist") == 1
    assert requests_to(fake, "total") == 1


@pytest.mark.parametrize(("count", "pages"), [(10, 1), (100, 1), (1000, 10)])
def test_poll_reads_one_page_per_page_size_of_jobs(
    fake: FakeTorBox, count: int, pages: int, make: Callable[..., TorBoxProvider]
) -> None:
    provider = make(page_size=100)
    ids = [
        f"torrent:{fake.add_item('torrent', f'{n:040x}', files=[('f.bin', 10)]).id}"
        for n in range(count)
    ]
    assert len(provider.list_statuses(ids)) == count
    assert requests_to(fake, "mylist") == pages


def test_torrents_and_web_downloads_cost_one_request_each(
    fake: FakeTorBox, provider: TorBoxProvider
) -> None:
    torrents = [f"torrent:{fake.add_item('torrent', f'{n:040x}').id}" for n in range(5)]
    webdls = [f"webdl:{fake.add_item('webdl', f'https://h.example/{n}').id}" for n in range(5)]
    assert len(provider.list_statuses(torrents + webdls)) == 10
    assert (requests_to(fake, "mylist"), requests_to(fake, "webdl_mylist")) == (1, 1)


def test_unknown_ids_are_left_out_after_one_fresh_look(
    fake: FakeTorBox, provider: TorBoxProvider
) -> None:
    known = fake.add_item("torrent", f"{1:040x}")
    answer = provider.list_statuses([f"torrent:{known.id}", "torrent:999", "nonsense"])
    assert list(answer) == [f"torrent:{known.id}"]
    # The cached list lacked 999; one bypassing pass confirmed it is gone.
    assert requests_to(fake, "mylist") == 2 and requests_to(fake, "mylist:bypass") == 1


def test_bypass_cache_only_while_a_submission_is_younger_than_the_stale_window(
    fake: FakeTorBox, provider: TorBoxProvider, clock: FakeClock
) -> None:
    started = provider.start_job(payload(magnet=magnet(1)))
    for _ in range(3):
        provider.list_statuses([started.remote_id])
        clock.advance(100.0)
    assert requests_to(fake, "mylist:bypass") == 3  # young: every poll bypasses
    clock.advance(400.0)  # 700 s after the submission: past the 600 s window
    provider.list_statuses([started.remote_id])
    provider.list_statuses([started.remote_id])
    assert requests_to(fake, "mylist") == 5 and requests_to(fake, "mylist:bypass") == 3


def test_stale_list_hides_a_new_item_that_bypass_cache_shows(
    fake: FakeTorBox, clock: FakeClock
) -> None:
    # What the provider guards against, seen on the wire (rdt-client#971).
    client = httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {fake.api_key}"})
    client.get("/v1/api/torrents/mylist")  # builds the server-side cache
    fake.add_item("torrent", f"{5:040x}")
    clock.advance(300.0)
    assert client.get("/v1/api/torrents/mylist").json()["data"] == []
    fresh = client.get("/v1/api/torrents/mylist", params={"bypass_cache": "true"}).json()["data"]
    assert [item["id"] for item in fresh] == [1]
    client.close()


def test_an_old_job_missing_from_a_stale_list_is_found_with_one_fresh_pass(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    # A provider restarted after the crash does not know the job is young.
    provider = make()
    provider.list_statuses(["torrent:1"])  # cache built while the account was empty
    item = fake.add_item("torrent", f"{6:040x}")
    clock.advance(1.0)
    answer = provider.list_statuses([f"torrent:{item.id}"])
    assert answer[f"torrent:{item.id}"].status is JobStatus.RESOLVING


def test_states_from_a_stale_list_catch_up_after_the_window(
    fake: FakeTorBox, provider: TorBoxProvider, clock: FakeClock
) -> None:
    item = fake.add_item("torrent", f"{7:040x}")
    first = provider.list_statuses([f"torrent:{item.id}"])[f"torrent:{item.id}"]
    clock.advance(30.0)  # done by now, but the cached list still says metaDL
    stale = provider.list_statuses([f"torrent:{item.id}"])[f"torrent:{item.id}"]
    assert first.native_status == stale.native_status == "metaDL"
    clock.advance(600.0)
    fresh = provider.list_statuses([f"torrent:{item.id}"])[f"torrent:{item.id}"]
    assert fresh.status is JobStatus.COMPLETED


def test_an_item_due_to_finish_is_read_fresh_so_its_completion_is_seen_at_once(
    fake: FakeTorBox, provider: TorBoxProvider, clock: FakeClock
) -> None:
    """An old job (not young any more) downloading with a short ETA: the cached list
    it is read from may be ten minutes old, so polls read fresh until it is done.
    Before, the completion showed only when the cache was rebuilt (600 s)."""
    item = fake.add_item("torrent", f"{8:040x}")
    clock.advance(3.0)  # past metaDL: downloading, a few seconds left
    rid = f"torrent:{item.id}"
    first = provider.list_statuses([rid])[rid]
    assert first.native_status == "downloading"
    clock.advance(30.0)  # done by now; the cached list still says downloading
    assert provider.list_statuses([rid])[rid].status is JobStatus.COMPLETED
    assert requests_to(fake, "mylist:bypass") >= 1


def test_an_item_with_no_eta_does_not_make_polls_read_fresh(
    fake: FakeTorBox, provider: TorBoxProvider, clock: FakeClock
) -> None:
    item = fake.add_item("torrent", f"{9:040x}")  # metaDL: no speed, the infinite ETA
    rid = f"torrent:{item.id}"
    for _ in range(3):
        provider.list_statuses([rid])
        clock.advance(1.0)
    assert requests_to(fake, "mylist:bypass") == 0


def test_queued_item_becomes_a_torrent_with_a_new_id_and_continuous_status(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.active_limit = 1
    provider = make(as_queued=True)
    running = provider.start_job(payload(magnet=magnet(1)))
    assert running.remote_id.startswith("queued:torrent:")  # as_queued: always the queue
    running_id = provider.list_statuses([running.remote_id])[running.remote_id].remote_id
    waiting = provider.start_job(payload(magnet=magnet(2)))
    assert waiting.status is JobStatus.QUEUED
    assert waiting.remote_id == f"queued:torrent:2:{2:040x}"
    assert fake.items("torrent")[0].hash == f"{1:040x}"  # the first one took the slot

    history = [provider.list_statuses([waiting.remote_id])[waiting.remote_id]]
    assert history[0].status is JobStatus.QUEUED and history[0].remote_id == waiting.remote_id
    assert "queued" not in [i.hash for i in fake.items()]
    while history[-1].status is not JobStatus.COMPLETED and len(history) < 30:
        clock.advance(1.0)
        history.append(provider.list_statuses([waiting.remote_id])[waiting.remote_id])
    moved = [h for h in history if h.remote_id != waiting.remote_id]
    assert moved and all(h.remote_id == "torrent:2" for h in moved)
    assert moved[0].status in (JobStatus.RESOLVING, JobStatus.DOWNLOADING)
    assert history[-1].status is JobStatus.COMPLETED
    assert provider.list_statuses([running_id])[running_id].status is JobStatus.COMPLETED
    # Once moved, the engine polls the new id.
    assert provider.list_statuses(["torrent:2"])["torrent:2"].status is JobStatus.COMPLETED


def test_file_links_of_a_queued_id_follow_the_started_item(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    provider = make(as_queued=True)
    job = payload(magnet=magnet(3))
    queued = provider.start_job(job)
    clock.advance(30.0)
    links = provider.get_file_links(queued.remote_id, job)
    assert links.ready and links.remote_id.startswith("torrent:")


def test_cancel_of_a_queued_item_uses_controlqueued(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.active_limit = 0
    provider = make(as_queued=True)
    queued = provider.start_job(payload(magnet=magnet(4)))
    assert provider.cancel(queued.remote_id).already_gone is False
    assert fake.queued() == [] and fake.counts["controlqueued"] == 1
    assert provider.cancel(queued.remote_id).already_gone is True


def test_cancel_of_a_queued_item_that_started_deletes_the_torrent(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    provider = make(as_queued=True)
    queued = provider.start_job(payload(magnet=magnet(5)))
    provider.list_statuses([queued.remote_id])  # TorBox starts it on the next request
    assert fake.queued() == [] and len(fake.items()) == 1
    answer = provider.cancel(queued.remote_id)
    assert answer.cancelled and not answer.already_gone
    assert fake.items() == [] and fake.counts["controltorrent"] == 1


def test_find_existing_after_a_crash_finds_the_torrent_by_hash(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider]
) -> None:
    job = payload(magnet=magnet(8))
    before = make()
    submitted = before.start_job(job)  # "crash": the engine never stored the answer
    after = make()
    found = after.find_existing(job)
    assert found is not None and found.remote_id == submitted.remote_id
    assert after.find_existing(payload(magnet=magnet(9))) is None
    assert fake.hash_counts() == {f"{8:040x}": 1}


def test_find_existing_after_a_crash_finds_the_web_download_by_link(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider]
) -> None:
    job = payload(url="https://files.example/big.iso")
    before, after = make(), make()
    submitted = before.start_job(job)
    found = after.find_existing(job)
    assert found is not None and found.remote_id == submitted.remote_id
    assert found.source == "https://files.example/big.iso"
    assert after.find_existing(payload(url="https://files.example/other")) is None


@pytest.mark.parametrize("source", ["magnet", "url"])
def test_find_existing_after_a_crash_finds_the_item_in_the_queue(
    fake: FakeTorBox, source: str, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.active_limit = 0
    job = payload(magnet=magnet(10)) if source == "magnet" else payload(url="https://h.example/q")
    before, after = make(as_queued=True), make()
    submitted = before.start_job(job)
    found = after.find_existing(job)
    assert found is not None and found.status is JobStatus.QUEUED
    assert found.remote_id == submitted.remote_id
    assert len(fake.queued()) == 1


def test_find_existing_passes_over_a_failed_item(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    fake.set_scenario(f"{11:040x}", "error")
    job = payload(magnet=magnet(11))
    before, after = make(), make()
    before.start_job(job)
    clock.advance(60.0)
    assert after.find_existing(job) is None


@pytest.mark.parametrize("kind", ["torrent", "webdl"])
def test_find_existing_skips_items_other_jobs_own_and_keeps_looking(
    fake: FakeTorBox, provider: TorBoxProvider, kind: Literal["torrent", "webdl"]
) -> None:
    key = f"{13:040x}" if kind == "torrent" else "https://h.example/same"
    job = payload(magnet=magnet(13)) if kind == "torrent" else payload(url=key)
    # The same hash twice: an item the user added by hand next to the engine's.
    first, second = (f"{kind}:{fake.add_item(kind, key).id}" for _ in range(2))
    for owned, other in ((first, second), (second, first)):
        found = provider.find_existing(job, exclude={owned})
        assert found is not None and found.remote_id == other
    assert provider.find_existing(job, exclude=[first, second]) is None


def test_find_existing_skips_queued_entries_other_jobs_own(
    fake: FakeTorBox, provider: TorBoxProvider
) -> None:
    fake.settings.active_limit = 0  # no slot: the entries stay in the queue
    item_hash = f"{14:040x}"
    with fake.account.lock:
        entries = [fake.account.enqueue("torrent", item_hash, item_hash, "Q") for _ in range(2)]
    first, second = (f"queued:torrent:{e.id}:{item_hash}" for e in entries)
    found = provider.find_existing(payload(magnet=magnet(14)), exclude={first})
    assert found is not None and found.remote_id == second
    assert provider.find_existing(payload(magnet=magnet(14)), exclude={first, second}) is None


def test_find_existing_skips_the_item_an_excluded_queued_entry_became(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.active_limit = 0
    provider = make(as_queued=True)
    job = payload(magnet=magnet(15))
    queued = provider.start_job(job)
    assert queued.remote_id.startswith("queued:torrent:")
    other = fake.add_item("torrent", f"{15:040x}")  # older than the one the entry becomes
    fake.settings.active_limit = 5
    started = provider.list_statuses([queued.remote_id])[queued.remote_id]  # TorBox starts it
    assert started.remote_id not in (queued.remote_id, f"torrent:{other.id}")
    unexcluded = provider.find_existing(job)
    assert unexcluded is not None and unexcluded.remote_id == started.remote_id
    found = provider.find_existing(job, exclude={queued.remote_id})
    assert found is not None and found.remote_id == f"torrent:{other.id}"
    assert provider.find_existing(job, exclude={queued.remote_id, found.remote_id}) is None


def test_duplicate_add_of_a_hash_returns_the_existing_item(
    fake: FakeTorBox, provider: TorBoxProvider
) -> None:
    first = provider.start_job(payload(magnet=magnet(12)))
    second = provider.start_job(payload(magnet=magnet(12)))
    assert first.remote_id == second.remote_id and fake.hash_counts() == {f"{12:040x}": 1}


def test_requests_per_completed_job(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    """Ten magnets, polled every 2 s until done, links fetched, one file resolved each."""
    provider = make()
    jobs = [payload(magnet=magnet(20 + n), select={"largest_only": True}) for n in range(10)]
    ids = [provider.start_job(job).remote_id for job in jobs]
    done: dict[str, JobStatus] = {}
    while len(done) < len(ids):
        clock.advance(2.0)
        for rid, status in provider.list_statuses(ids).items():
            if status.status.terminal:
                done[rid] = status.status
    for rid, job in zip(ids, jobs, strict=True):
        links = provider.get_file_links(rid, job)
        for file in (f for f in links.files if f.selected):
            provider.resolve_download_url(rid, file)
    per_job = (fake.counts["total"] - fake.counts["user_me"]) / len(ids)
    assert set(done.values()) == {JobStatus.COMPLETED}
    assert fake.counts["user_me"] == 1  # the plan, read once before the first submission
    assert fake.counts["mylist"] == 3  # three polls for all ten jobs
    assert fake.counts["requestdl"] == 10
    # create + 3 shared polls + links from the poll (no extra read) + one requestdl
    assert per_job == pytest.approx(2.3)
