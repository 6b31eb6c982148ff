"""TorBoxProvider against FakeTorBox over real sockets: every path of a job's life."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import httpx
import pytest
from torbox_helpers import payload

from engine.testing.torbox import FakeTorBox
from providers import (
    FakeClock,
    JobStatus,
    JobStatusResponse,
    ProviderError,
    forward_path,
)
from providers._torrent import bencode
from providers.torbox import TorBoxProvider


def magnet(n: int, name: str = "Show") -> str:
    return f"magnet:?xt=urn:btih:{n:040x}&dn={name}.{n}"


def torrent_file(name: str = "Movie") -> bytes:
    info = {b"name": name.encode(), b"piece length": 16384, b"pieces": b"\0" * 20, b"length": 99}
    return bencode({b"announce": b"http://tracker.invalid/a", b"info": info})


@pytest.fixture
def fake(serve: Callable[[FakeTorBox], FakeTorBox], clock: FakeClock) -> FakeTorBox:
    return serve(FakeTorBox(clock=clock))


def poll(provider: TorBoxProvider, remote_id: str) -> JobStatusResponse:
    return provider.list_statuses([remote_id])[remote_id]


def follow(
    provider: TorBoxProvider,
    clock: FakeClock,
    remote_id: str,
    *,
    step: float = 1.0,
    polls: int = 20,
) -> list[JobStatusResponse]:
    """Poll once per ``step`` until a terminal status (or ``polls`` polls)."""
    seen = [poll(provider, remote_id)]
    while not seen[-1].status.terminal and len(seen) < polls:
        clock.advance(step)
        seen.append(poll(provider, remote_id))
    return seen


def assert_legal_history(statuses: list[JobStatus]) -> None:
    current = JobStatus.QUEUED
    for status in statuses:
        forward_path(current, status)  # raises on a backwards or illegal move
        current = status


def test_magnet_goes_resolving_downloading_completed_with_progress(
    provider: TorBoxProvider, clock: FakeClock
) -> None:
    started = provider.start_job(payload(magnet=magnet(1)))
    assert started.remote_id == "torrent:1"
    assert started.status is JobStatus.RESOLVING
    assert started.info_hash == f"{1:040x}"

    seen = follow(provider, clock, started.remote_id)
    statuses = [s.status for s in seen]
    assert statuses[0] is JobStatus.RESOLVING and seen[0].native_status == "metaDL"
    assert JobStatus.DOWNLOADING in statuses
    assert statuses[-1] is JobStatus.COMPLETED
    assert_legal_history(statuses)
    progress = [s.progress for s in seen if s.status is JobStatus.DOWNLOADING]
    assert progress == sorted(progress) and 0 < max(progress) < 100  # 0..1 shown as percent
    assert seen[-1].progress == 100.0
    assert [f.name for f in seen[-1].files] == [
        "Show.1/Show.1.mkv",
        "Show.1/sample.mkv",
        "Show.1/info.nfo",
    ]


def test_torrent_file_is_uploaded_and_completes(
    provider: TorBoxProvider, fake: FakeTorBox, clock: FakeClock
) -> None:
    data = torrent_file("Movie")
    started = provider.start_job(payload(torrent=data))
    item = fake.items("torrent")[0]
    assert item.torrent_file is True and item.name == "Movie"
    assert started.info_hash == item.hash
    assert follow(provider, clock, started.remote_id)[-1].status is JobStatus.COMPLETED


def test_web_download_completes_and_links_use_web_id(
    provider: TorBoxProvider, clock: FakeClock
) -> None:
    job = payload(url="https://files.example/dl/archive.zip")
    started = provider.start_job(job)
    assert started.remote_id == "webdl:1"  # webdownload_id came as the string "1"
    assert started.source == "https://files.example/dl/archive.zip"
    seen = follow(provider, clock, started.remote_id)
    assert [s.status for s in seen][-1] is JobStatus.COMPLETED
    assert_legal_history([s.status for s in seen])
    links = provider.get_file_links(started.remote_id, job)
    assert links.ready and links.files[0].name == "archive.zip"
    assert "/v1/api/webdl/requestdl?web_id=1&file_id=0" in (links.files[0].link or "")
    url = provider.resolve_download_url(started.remote_id, links.files[0])
    assert httpx.get(url).status_code == 200


def test_cached_magnet_is_completed_on_the_first_poll(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    fake.add_cached(f"{7:040x}", name="Cached.Thing")
    started = provider.start_job(payload(magnet=magnet(7)))
    assert started.metadata["cached"] is True  # "Found Cached Torrent" (facts §3.1)
    first = poll(provider, started.remote_id)  # no clock advance at all
    assert first.status is JobStatus.COMPLETED
    assert first.native_status == "cached" and first.progress == 100.0


def test_a_cached_item_present_at_progress_1_without_download_finished_is_ready(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    """decypharr's stuck-at-100%: ``cached``, present, progress 1, and no
    ``download_finished``; ready only required the flag, so it never completed."""
    fake.settings.cached_unfinished = True
    fake.add_cached(f"{21:040x}", name="Cached.Unflagged")
    job = payload(magnet=magnet(21))
    started = provider.start_job(job)
    first = poll(provider, started.remote_id)
    assert (first.native_status, first.status) == ("cached", JobStatus.COMPLETED)
    links = provider.get_file_links(started.remote_id, job)
    assert links.ready and links.files


def test_a_duplicate_refused_with_duplicate_item_adopts_the_item_already_there(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    fake.settings.refuse_duplicates = True
    first = provider.start_job(payload(magnet=magnet(22)))
    second = provider.start_job(payload(magnet=magnet(22)))  # it failed the job before
    assert second.remote_id == first.remote_id
    assert fake.counts["createtorrent"] == 2
    assert len(fake.items()) == 1


def test_cache_hit_whose_files_are_not_present_yet_is_not_completed(
    provider: TorBoxProvider, fake: FakeTorBox, clock: FakeClock
) -> None:
    fake.add_cached(f"{8:040x}", slow=True)
    started = provider.start_job(payload(magnet=magnet(8)))
    first = poll(provider, started.remote_id)
    assert first.native_status == "cached"
    assert first.status is JobStatus.DOWNLOADING  # "cached" but not present: not ready
    assert not provider.get_file_links(started.remote_id, payload(magnet=magnet(8))).ready
    assert follow(provider, clock, started.remote_id)[-1].status is JobStatus.COMPLETED


def test_completed_state_with_evicted_files_never_counts_as_ready(
    provider: TorBoxProvider, fake: FakeTorBox, clock: FakeClock
) -> None:
    fake.set_scenario(f"{9:040x}", "evicted")
    started = provider.start_job(payload(magnet=magnet(9)))
    seen = follow(provider, clock, started.remote_id, polls=5)
    assert all(s.native_status == "completed" for s in seen)
    assert all(s.status is JobStatus.DOWNLOADING for s in seen)


def test_seeding_item_uploading_is_completed_by_its_flags(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    provider = make(seed=2)
    started = provider.start_job(payload(magnet=magnet(10)))
    last = follow(provider, clock, started.remote_id)[-1]
    assert (last.status, last.native_status) == (JobStatus.COMPLETED, "uploading")


@pytest.mark.parametrize(
    ("scenario", "native", "code"),
    [("error", "error", "DOWNLOAD_ERROR"), ("missing_files", "missingFiles", "MISSING_FILES")],
)
def test_remote_failure_states_become_failed_with_a_code(
    provider: TorBoxProvider,
    fake: FakeTorBox,
    clock: FakeClock,
    scenario: str,
    native: str,
    code: str,
) -> None:
    fake.set_scenario(f"{11:040x}", scenario)
    started = provider.start_job(payload(magnet=magnet(11)))
    last = follow(provider, clock, started.remote_id)[-1]
    assert (last.status, last.native_status, last.error_code) == (JobStatus.FAILED, native, code)
    assert native in (last.error_message or "")


def test_dead_web_link_fails_with_the_error_text(
    provider: TorBoxProvider, fake: FakeTorBox, clock: FakeClock
) -> None:
    url = "https://files.example/dead.bin"
    fake.set_scenario(url, "web_error")
    started = provider.start_job(payload(url=url))
    last = follow(provider, clock, started.remote_id)[-1]
    assert last.status is JobStatus.FAILED and last.error_code == "DOWNLOAD_ERROR"
    assert last.error_message == "Link is dead or offline"


@pytest.mark.parametrize(
    ("scenario", "native"),
    [("stalled", "stalled (no seeds)"), ("incomplete", "incomplete")],
)
def test_stalled_and_incomplete_stay_in_progress(
    provider: TorBoxProvider, fake: FakeTorBox, clock: FakeClock, scenario: str, native: str
) -> None:
    fake.set_scenario(f"{12:040x}", scenario)
    started = provider.start_job(payload(magnet=magnet(12)))
    seen = follow(provider, clock, started.remote_id, step=5.0, polls=8)
    assert seen[-1].native_status == native
    assert seen[-1].status is JobStatus.DOWNLOADING  # still working, never FAILED


def test_checking_resume_data_is_resolving_then_completes(
    provider: TorBoxProvider, fake: FakeTorBox, clock: FakeClock
) -> None:
    fake.set_scenario(f"{13:040x}", "resume_check")
    started = provider.start_job(payload(magnet=magnet(13)))
    seen = follow(provider, clock, started.remote_id)
    assert (seen[0].native_status, seen[0].status) == ("checkingResumeData", JobStatus.RESOLVING)
    assert seen[-1].status is JobStatus.COMPLETED


def test_paused_item_keeps_its_progress_and_resumes(
    provider: TorBoxProvider, fake: FakeTorBox, clock: FakeClock
) -> None:
    started = provider.start_job(payload(magnet=magnet(14)))
    clock.advance(3.0)
    provider.api.control("torrent", 1, "pause")
    paused = poll(provider, started.remote_id)
    clock.advance(60.0)
    still = poll(provider, started.remote_id)
    assert (paused.native_status, still.native_status) == ("paused", "paused")
    assert still.status is JobStatus.DOWNLOADING and still.progress == paused.progress
    provider.api.control("torrent", 1, "resume")
    assert follow(provider, clock, started.remote_id)[-1].status is JobStatus.COMPLETED


def test_only_if_cached_refuses_without_spending_a_create(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    with pytest.raises(ProviderError) as caught:
        provider.start_job(payload(magnet=magnet(15), only_if_cached=True))
    assert (caught.value.code, caught.value.retryable) == ("NOT_CACHED", False)
    assert fake.counts["createtorrent"] == 0 and fake.counts["checkcached"] == 1
    assert fake.items() == []


def test_only_if_cached_accepts_a_cached_hash(provider: TorBoxProvider, fake: FakeTorBox) -> None:
    fake.add_cached(f"{16:040x}")
    started = provider.start_job(payload(magnet=magnet(16), only_if_cached=True))
    assert poll(provider, started.remote_id).status is JobStatus.COMPLETED


def test_only_if_cached_refused_by_the_create_itself_is_not_cached(
    provider: TorBoxProvider, fake: FakeTorBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache check said yes, then the item left the cache before the add.
    monkeypatch.setattr(provider.api, "cached_hashes", lambda kind, hashes: set(hashes))
    with pytest.raises(ProviderError) as caught:
        provider.start_job(payload(magnet=magnet(17), only_if_cached=True))
    assert caught.value.code == "NOT_CACHED" and caught.value.http_status == 400
    assert fake.items() == []


def test_unknown_new_state_is_in_progress_and_logged_once(
    provider: TorBoxProvider, fake: FakeTorBox, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.settings.unknown_state = "relocatingBits"
    fake.set_scenario(f"{18:040x}", "unknown_state")
    started = provider.start_job(payload(magnet=magnet(18)))
    clock.advance(2.0)
    with caplog.at_level("WARNING", logger="debrid.providers.torbox"):
        first = poll(provider, started.remote_id)
        second = poll(provider, started.remote_id)
    assert (first.native_status, first.status) == ("relocatingBits", JobStatus.DOWNLOADING)
    assert second.native_status == "relocatingBits"
    warnings = [r for r in caplog.records if "unknown_remote_status" in r.getMessage()]
    assert len(warnings) == 1 and "relocatingBits" in warnings[0].getMessage()
    assert follow(provider, clock, started.remote_id)[-1].status is JobStatus.COMPLETED


def test_file_links_select_files_keep_md5_and_carry_no_token(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    fake.add_cached(f"{19:040x}")
    job = payload(magnet=magnet(19), select={"globs": ["*.mkv"], "min_size": 100_000})
    started = provider.start_job(job)
    links = provider.get_file_links(started.remote_id, job)
    assert links.ready
    chosen = [f for f in links.files if f.selected]
    assert [f.id for f in chosen] == [0] and len(links.files) == 3  # every file, one selected
    assert all(f.link is None for f in links.files if not f.selected)
    assert chosen[0].link is not None and "token" not in chosen[0].link
    assert chosen[0].link.endswith("torrents/requestdl?torrent_id=1&file_id=0&redirect=true")
    assert all(f.md5 and len(f.md5) == 32 for f in links.files)


def test_downloaded_bytes_match_torbox_md5_and_ranges_work(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    fake.add_cached(f"{20:040x}")
    job = payload(magnet=magnet(20))
    started = provider.start_job(job)
    file = provider.get_file_links(started.remote_id, job).files[0]
    url = provider.resolve_download_url(started.remote_id, file)
    body = httpx.get(url).content
    assert len(body) == file.size
    assert hashlib.md5(body).hexdigest() == file.md5
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == body[100:200]


def test_direct_url_is_reused_until_expiry_then_requested_again(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.link_ttl = 600.0
    provider = make(link_ttl=500.0)
    fake.add_cached(f"{21:040x}")
    job = payload(magnet=magnet(21))
    started = provider.start_job(job)
    file = provider.get_file_links(started.remote_id, job).files[0]
    first = provider.resolve_download_url(started.remote_id, file)
    assert provider.resolve_download_url(started.remote_id, file) == first
    assert fake.counts["requestdl"] == 1  # permalinks count toward limits (decypharr#300)
    clock.advance(601.0)
    expired = httpx.get(first)
    assert expired.status_code == 403 and b"Invalid Presigned Token" in expired.content
    second = provider.resolve_download_url(started.remote_id, file)
    assert second != first and fake.counts["requestdl"] == 2
    assert httpx.get(second).status_code == 200


def test_direct_urls_kept_are_bounded_the_oldest_asked_for_again(
    fake: FakeTorBox, make: Callable[..., TorBoxProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("providers.torbox._links.LINKS_KEPT", 2)
    provider = make()
    files = [(f"Pack/e{n}.mkv", 1000 + n) for n in range(3)]
    fake.add_cached(f"{24:040x}", files=files)
    job = payload(magnet=magnet(24))
    started = provider.start_job(job)
    linked = provider.get_file_links(started.remote_id, job).files
    assert len(linked) == 3
    for file in linked:
        provider.resolve_download_url(started.remote_id, file)
    assert fake.counts["requestdl"] == 3 and len(provider.links._kept) == 2
    provider.resolve_download_url(started.remote_id, linked[2])  # kept: no request
    assert fake.counts["requestdl"] == 3
    provider.resolve_download_url(started.remote_id, linked[0])  # dropped: asked again
    assert fake.counts["requestdl"] == 4 and len(provider.links._kept) == 2


def test_file_links_before_ready_are_not_ready(provider: TorBoxProvider) -> None:
    job = payload(magnet=magnet(22))
    started = provider.start_job(job)
    links = provider.get_file_links(started.remote_id, job)
    assert not links.ready and all(f.link is None for f in links.files)


@pytest.mark.parametrize("kind", ["magnet", "url"])
def test_cancel_deletes_the_item_and_a_second_cancel_finds_it_gone(
    provider: TorBoxProvider, fake: FakeTorBox, kind: str
) -> None:
    job = payload(magnet=magnet(23)) if kind == "magnet" else payload(url="https://h.example/x")
    started = provider.start_job(job)
    first = provider.cancel(started.remote_id)
    assert first.cancelled and not first.already_gone
    assert fake.items() == []
    assert provider.cancel(started.remote_id).already_gone
    assert fake.counts["controltorrent" if kind == "magnet" else "controlwebdownload"] == 2


def test_cancel_of_an_id_that_is_not_ours_is_already_gone(provider: TorBoxProvider) -> None:
    assert provider.cancel("something-else").already_gone


def test_cached_web_download_is_completed_on_the_first_poll(
    provider: TorBoxProvider, fake: FakeTorBox
) -> None:
    url = "https://files.example/cached/video.mp4"
    fake.add_cached(url, name="video.mp4")
    started = provider.start_job(payload(url=url))
    assert started.metadata["cached"] is True
    assert poll(provider, started.remote_id).status is JobStatus.COMPLETED
