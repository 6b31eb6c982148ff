"""RealDebridProvider through every job lifecycle, against the fake over real sockets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from engine.testing._fakehttp import FakeRequest, FakeResponse
from engine.testing.realdebrid import FakeRealDebrid, Scenario
from engine.testing.realdebrid._errors import rd_error
from engine.testing.realdebrid._routes import RealDebridRoutes
from providers import (
    FakeClock,
    JobStatus,
    JobStatusResponse,
    Provider,
    ProviderError,
    StartJobPayload,
    default_registry,
    parse_start_job_payload,
)
from providers._torrent import bencode, torrent_info_hash
from providers.realdebrid import STATUS_TABLE, RealDebridProvider

HASH = "c" * 40
FILES = (
    ("Show/Show.S01E01.mkv", 700_000_000),
    ("Show/Show.S01E02.mkv", 690_000_000),
    ("Show/Sample/sample.mkv", 30_000_000),
    ("Show/Show.nfo", 4_000),
)


def payload(**fields: Any) -> StartJobPayload:
    fields.setdefault("magnet", f"magnet:?xt=urn:btih:{HASH}&dn=Show")
    return parse_start_job_payload(fields)


@pytest.fixture
def fake(serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock) -> FakeRealDebrid:
    server = FakeRealDebrid(clock=clock, step_seconds=1.0, download_steps=4)
    server.set_default_scenario(Scenario(files=FILES))
    return serve(server)


def drive(
    provider: RealDebridProvider, clock: FakeClock, remote_id: str, *, steps: int = 30
) -> list[JobStatusResponse]:
    """Poll once per fake second until the job is terminal; every status seen."""
    seen = []
    for _ in range(steps):
        status = provider.list_statuses([remote_id])[remote_id]
        seen.append(status)
        if status.status.terminal:
            return seen
        clock.advance(1)
    raise AssertionError(f"not terminal after {steps} polls: {seen[-1]}")


def test_provider_satisfies_the_protocol_and_is_registered() -> None:
    provider = default_registry().create("realdebrid", {"api_token": "t"})
    assert isinstance(provider, RealDebridProvider)
    assert isinstance(provider, Provider)
    provider.close()


def test_magnet_goes_resolving_downloading_completed_with_one_link_per_file(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    job = payload()
    started = provider.start_job(job)
    assert started.remote_id.startswith("torrent:") and started.status is JobStatus.RESOLVING
    assert started.info_hash == HASH
    seen = drive(provider, clock, started.remote_id)
    natives = [s.native_status for s in seen]
    assert natives[:3] == ["magnet_conversion", "waiting_files_selection", "downloading"]
    assert natives[-1] == "downloaded"
    statuses = [s.status for s in seen]
    assert statuses == sorted(statuses, key=lambda s: s.rank)  # never backwards
    progress = [s.progress for s in seen if s.native_status == "downloading"]
    assert progress == sorted(progress) and 0 < max(progress) < 100
    links = provider.get_file_links(started.remote_id, job)
    assert links.ready
    # RD lists paths from the torrent root (no "Show/"); the names are those paths.
    assert [(f.id, f.name, f.size) for f in links.files] == [
        (i + 1, name.removeprefix("Show/"), size) for i, (name, size) in enumerate(FILES)
    ]
    for file in links.files:
        assert file.link is not None and file.link.startswith(f"{fake.url}/d/")
        head = httpx.get(file.link, headers={"Range": "bytes=0-15"})
        assert head.status_code == 206 and len(head.content) == 16


def test_requests_per_completed_magnet_job(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    job = payload(select={"ids": [1]})
    started = provider.start_job(job)
    polls = len(drive(provider, clock, started.remote_id))
    provider.get_file_links(started.remote_id, job)
    counts = fake.stats()["counts"]
    # activeCount (first start only), addMagnet, one list page per poll, one info +
    # one selectFiles at waiting_files_selection, one unrestrict per file: the links
    # come from the poll that saw the torrent finished, with no second info.
    assert counts["torrents"] == polls == 7
    assert counts["torrents_info"] == 1
    assert counts["total"] == 1 + 1 + polls + 2 + 1 == 12


def test_torrent_file_is_put_as_raw_bytes_and_completes(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    raw = bencode(
        {
            "info": {
                "name": "Pack",
                "piece length": 16384,
                "pieces": b"p" * 20,
                "files": [{"length": 5000, "path": ["a.mkv"]}, {"length": 10, "path": ["b.txt"]}],
            }
        }
    )
    job = parse_start_job_payload({"torrent": raw, "select": {"globs": ["*.mkv"]}})
    fake.set_scenario(torrent_info_hash(raw), Scenario())
    started = provider.start_job(job)
    seen = drive(provider, clock, started.remote_id)
    assert seen[0].native_status == "waiting_files_selection"  # metadata known at once
    links = provider.get_file_links(started.remote_id, job)
    assert [(f.name, f.size) for f in links.files] == [("a.mkv", 5000)]  # RD drops "Pack/"
    assert fake.counts["torrents_add_torrent"] == 1


def test_hoster_link_is_completed_at_once_with_a_direct_link(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    job = parse_start_job_payload({"url": "https://hoster.example/files/Big%20File.zip"})
    started = provider.start_job(job)
    assert started.remote_id.startswith("link:") and started.status is JobStatus.COMPLETED
    assert started.source == job.url
    (file,) = started.files
    assert file.name == "Big File.zip" and file.size > 0
    assert (
        httpx.get(file.link or "").content[:4]
        == httpx.get(file.link or "", headers={"Range": "bytes=0-3"}).content
    )
    before = fake.counts["total"]
    polled = provider.list_statuses([started.remote_id])[started.remote_id]
    assert polled.status is JobStatus.COMPLETED
    assert provider.get_file_links(started.remote_id, job).files == (file,)
    assert fake.counts["total"] == before  # nothing to ask


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ({"ids": [2, 4]}, [2, 4]),
        ({"globs": ["*.mkv"]}, [1, 2, 3]),
        ({"globs": ["Show.*"], "min_size": 1_000_000}, [1, 2]),  # names from the root
        ({"globs": ["*.mkv"], "largest_only": True}, [1]),
        ({"min_size": 100_000_000}, [1, 2]),
    ],
)
def test_files_are_selected_as_the_payload_says(
    provider: RealDebridProvider,
    fake: FakeRealDebrid,
    clock: FakeClock,
    select: dict[str, Any],
    expected: list[int],
) -> None:
    job = payload(select=select)
    started = provider.start_job(job)
    drive(provider, clock, started.remote_id)
    remote = fake.torrents()[0]
    assert [f["id"] for f in remote["files"] if f["selected"]] == expected
    links = provider.get_file_links(started.remote_id, job)
    assert [f.id for f in links.files] == expected
    assert fake.counts["torrents_select_files"] == 1


@pytest.mark.parametrize("status", [202, 400])
def test_select_files_answered_action_already_done_is_success(
    provider: RealDebridProvider,
    fake: FakeRealDebrid,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
) -> None:
    # Another client selects first, so the provider's own call is a repeat: RD's
    # 202 action_already_done/31 body (what the fake sends), or that error under
    # another status (the table's ALREADY_DONE path).
    checks = fake.before
    routes = RealDebridRoutes(fake)

    def selected_first(request: FakeRequest) -> FakeResponse | None:
        early = checks(request)
        if early is None and request.route == "torrents_select_files":
            assert routes.select(request).status == 204
            if status != 202:
                return rd_error(status, "action_already_done", 31)
        return early

    monkeypatch.setattr(fake, "before", selected_first)
    job = payload(select={"ids": [1, 2]})
    started = provider.start_job(job)
    seen = drive(provider, clock, started.remote_id)
    assert seen[-1].status is JobStatus.COMPLETED and seen[-1].error_code is None
    assert fake.counts["torrents_select_files"] == 1  # success: not sent again
    links = provider.get_file_links(started.remote_id, job)
    assert [f.id for f in links.files] == [1, 2]


def test_a_selection_that_matches_nothing_fails_and_deletes_the_torrent(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    started = provider.start_job(payload(select={"globs": ["*.iso"]}))
    final = drive(provider, clock, started.remote_id)[-1]
    assert (final.status, final.error_code) == (JobStatus.FAILED, "NOTHING_SELECTED")
    assert fake.torrents() == []


def test_after_a_restart_without_payload_every_file_is_selected(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    started = provider.start_job(payload(select={"ids": [1]}))
    fresh = fake.make_provider(clock=clock, limited=False)
    try:
        drive(fresh, clock, started.remote_id)
        assert all(f["selected"] for f in fake.torrents()[0]["files"])
    finally:
        fresh.close()


def test_attach_after_a_restart_restores_the_selection(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    job = payload(select={"ids": [3]})
    started = provider.start_job(job)
    fresh = fake.make_provider(clock=clock, limited=False)
    try:
        fresh.attach(started.remote_id, job)
        drive(fresh, clock, started.remote_id)
        assert [f["id"] for f in fake.torrents()[0]["files"] if f["selected"]] == [3]
    finally:
        fresh.close()


def test_rar_archive_single_link_becomes_one_archive_file(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(rar=True, files=FILES))
    job = payload(select={"ids": [1, 2]})
    started = provider.start_job(job)
    natives = [s.native_status for s in drive(provider, clock, started.remote_id)]
    assert "compressing" in natives
    links = provider.get_file_links(started.remote_id, job)
    assert links.ready
    (archive,) = links.files
    assert archive.name == "Show.rar" and archive.size == 700_000_000 + 690_000_000
    assert archive.id == 0 and archive.link is not None


def test_late_links_are_not_ready_until_every_link_is_listed(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(late_links=40, files=FILES))
    job = payload(select={"ids": [1, 2]})
    started = provider.start_job(job)
    drive(provider, clock, started.remote_id)
    early = provider.get_file_links(started.remote_id, job)
    assert not early.ready and [f.id for f in early.files] == [1, 2]
    clock.advance(40)
    late = provider.get_file_links(started.remote_id, job)
    assert late.ready and all(f.link for f in late.files)


def test_links_missing_for_too_long_fail_with_links_missing(
    fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(late_links=10_000, files=FILES))
    provider = fake.make_provider(clock=clock, limited=False, late_links_timeout=120)
    try:
        job = payload(select={"ids": [1, 2]})
        started = provider.start_job(job)
        drive(provider, clock, started.remote_id)
        assert not provider.get_file_links(started.remote_id, job).ready
        clock.advance(120)
        with pytest.raises(ProviderError) as caught:
            provider.get_file_links(started.remote_id, job)
        assert caught.value.code == "LINKS_MISSING" and not caught.value.retryable
    finally:
        provider.close()


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ("magnet_error", "MAGNET_ERROR"),
        ("error", "REMOTE_ERROR"),
        ("virus", "VIRUS"),
        ("dead", "DEAD"),
    ],
)
def test_remote_failures_map_to_failed_with_a_code(
    provider: RealDebridProvider,
    fake: FakeRealDebrid,
    clock: FakeClock,
    outcome: Any,
    code: str,
) -> None:
    fake.set_scenario(HASH, Scenario(outcome=outcome, files=FILES))
    started = provider.start_job(payload())
    final = drive(provider, clock, started.remote_id)[-1]
    assert (final.status, final.native_status) == (JobStatus.FAILED, outcome)
    assert final.error_code == code
    assert final.error_message


def test_the_status_table_covers_all_eleven_documented_statuses() -> None:
    assert set(STATUS_TABLE) == {
        "magnet_error",
        "magnet_conversion",
        "waiting_files_selection",
        "queued",
        "downloading",
        "downloaded",
        "error",
        "virus",
        "compressing",
        "uploading",
        "dead",
    }
    failed = {k for k, v in STATUS_TABLE.items() if v.status is JobStatus.FAILED}
    assert failed == {"magnet_error", "error", "virus", "dead"}
    assert STATUS_TABLE["downloaded"].status is JobStatus.COMPLETED


def test_an_unknown_status_stays_in_progress_and_is_logged_once(
    provider: RealDebridProvider, caplog: pytest.LogCaptureFixture
) -> None:
    item = {"id": "X", "status": "teleporting", "progress": 40, "hash": HASH}
    with caplog.at_level(logging.WARNING, logger="debrid"):
        first = provider.tracker.response("torrent:X", item)
        again = provider.tracker.response("torrent:Y", item)
    assert first.status is JobStatus.DOWNLOADING and again.status is JobStatus.DOWNLOADING
    warnings = [r for r in caplog.records if "unknown_remote_status" in r.getMessage()]
    assert len(warnings) == 1 and "teleporting" in warnings[0].getMessage()


def test_only_if_cached_completes_a_cached_torrent(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(cached=True, files=FILES))
    started = provider.start_job(payload(only_if_cached=True))
    final = drive(provider, clock, started.remote_id)[-1]
    assert final.status is JobStatus.COMPLETED


def test_only_if_cached_gives_up_on_an_uncached_torrent_and_deletes_it(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    started = provider.start_job(payload(only_if_cached=True))
    final = drive(provider, clock, started.remote_id)[-1]
    assert (final.status, final.error_code) == (JobStatus.FAILED, "NOT_CACHED")
    assert fake.torrents() == [] and fake.counts["torrents_delete"] == 1


def test_a_stalled_torrent_fails_after_the_stall_timeout(
    fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(outcome="stalled", files=FILES))
    provider = fake.make_provider(clock=clock, limited=False, stall_timeout=10)
    try:
        started = provider.start_job(payload())
        final = drive(provider, clock, started.remote_id)[-1]
        assert (final.status, final.error_code) == (JobStatus.FAILED, "STALLED")
        assert fake.torrents() == []
    finally:
        provider.close()


def test_cancel_deletes_the_torrent_and_a_second_cancel_finds_it_gone(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    started = provider.start_job(payload())
    first = provider.cancel(started.remote_id)
    assert first.cancelled and not first.already_gone
    assert fake.torrents() == []
    assert provider.cancel(started.remote_id).already_gone
    link = provider.start_job(parse_start_job_payload({"url": "https://h.example/f.bin"}))
    assert not provider.cancel(link.remote_id).already_gone
    assert fake.downloads() == []


def test_get_status_of_a_deleted_torrent_is_not_found(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    started = provider.start_job(payload())
    provider.cancel(started.remote_id)
    with pytest.raises(ProviderError) as caught:
        provider.get_status(started.remote_id)
    assert caught.value.code == "NOT_FOUND" and not caught.value.retryable
    assert provider.list_statuses([started.remote_id, "bogus", "torrent:../x"]) == {}


def test_get_status_reads_the_file_list(provider: RealDebridProvider, clock: FakeClock) -> None:
    started = provider.start_job(payload(select={"ids": [2]}))
    clock.advance(1)
    status = provider.get_status(started.remote_id)
    assert status.native_status == "waiting_files_selection"
    assert [(f.id, f.selected) for f in status.files] == [
        (1, False),
        (2, True),
        (3, False),
        (4, False),
    ]
    assert provider.get_status(started.remote_id).native_status == "queued"


def test_resolve_download_url_reuses_fresh_links_and_renews_old_ones(
    fake: FakeRealDebrid, clock: FakeClock
) -> None:
    provider = fake.make_provider(clock=clock, limited=False, link_ttl=3600)
    try:
        job = payload(select={"ids": [1]})
        started = provider.start_job(job)
        drive(provider, clock, started.remote_id)
        (file,) = provider.get_file_links(started.remote_id, job).files
        assert provider.resolve_download_url(started.remote_id, file) == file.link
        clock.advance(3600)
        renewed = provider.resolve_download_url(started.remote_id, file)
        assert renewed != file.link and httpx.head(renewed).status_code == 200
        restarted = fake.make_provider(clock=clock, limited=False)
        try:  # knows nothing of the link: finds it through /torrents/info
            again = restarted.resolve_download_url(started.remote_id, file)
            assert again not in (file.link, renewed) and httpx.head(again).status_code == 200
        finally:
            restarted.close()
    finally:
        provider.close()


HOSTILE = (
    ("../../etc/passwd", 1000),
    ("Show/evil\x00name.mkv", 2000),
    ("Show/\x1b[31mred\x07.srt", 3000),
    ("Show/" + "x" * 400 + ".mkv", 4000),
    ("/abs/olute|?*:<>.mkv", 5000),
)


def test_hostile_file_names_survive_as_data(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(files=HOSTILE))
    job = payload(magnet=f"magnet:?xt=urn:btih:{HASH}&dn=..%2F..%2Froot")
    started = provider.start_job(job)
    drive(provider, clock, started.remote_id)
    links = provider.get_file_links(started.remote_id, job)
    assert [f.name for f in links.files] == [name.lstrip("/") for name, _ in HOSTILE]
    for file in links.files:
        assert httpx.get(file.link or "", headers={"Range": "bytes=0-0"}).status_code == 206


def test_test_connection_reports_user_and_premium(provider: RealDebridProvider) -> None:
    result = provider.test_connection()
    assert result.ok and result.account == "fakeuser"
    assert result.details["premium_seconds"] == 30 * 86400


def test_test_connection_with_a_bad_token_is_not_ok_and_does_not_raise(
    fake: FakeRealDebrid, clock: FakeClock
) -> None:
    provider = fake.make_provider(clock=clock, limited=False, api_token="wrong")
    try:
        result = provider.test_connection()
        assert not result.ok and "bad_token" in result.message
        assert result.details["code"] == "BAD_TOKEN"
    finally:
        provider.close()


def test_test_connection_of_a_free_account_is_not_ok(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    fake.premium_seconds = 0
    result = provider.test_connection()
    assert not result.ok and "no premium" in result.message and result.account == "fakeuser"


def test_max_active_is_read_from_active_count_on_first_submission(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    fake.active_limit = 7
    before = provider.max_active
    provider.start_job(payload())
    provider.start_job(payload(magnet=f"magnet:?xt=urn:btih:{'d' * 40}"))
    assert (before, provider.max_active) == (None, 7)
    assert fake.counts["torrents_active_count"] == 1


def test_find_existing_finds_the_torrent_after_a_crash(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    job = payload(select={"ids": [2]})
    started = provider.start_job(job)
    provider.close()  # the engine "crashes": the provider object is gone
    fresh = fake.make_provider(clock=clock, limited=False)
    try:
        found = fresh.find_existing(job)
        assert found is not None and found.remote_id == started.remote_id
        drive(fresh, clock, found.remote_id)  # and the payload came with it
        assert [f["id"] for f in fake.torrents()[0]["files"] if f["selected"]] == [2]
        assert fake.torrents_by_hash()[HASH] == 1
        other = payload(magnet=f"magnet:?xt=urn:btih:{'e' * 40}")
        assert fresh.find_existing(other) is None
    finally:
        fresh.close()


def test_find_existing_skips_failed_torrents_and_finds_links(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(outcome="magnet_error"))
    provider.start_job(payload())
    clock.advance(2)
    assert provider.find_existing(payload()) is None
    link = parse_start_job_payload({"url": "https://h.example/movie.mkv"})
    made = provider.start_job(link)
    fresh = fake.make_provider(clock=clock, limited=False)
    try:
        found = fresh.find_existing(link)
        assert found is not None and found.remote_id == made.remote_id
        assert found.files[0].link == made.files[0].link
    finally:
        fresh.close()


def test_find_existing_skips_torrents_other_jobs_own_and_keeps_looking(
    provider: RealDebridProvider, fake: FakeRealDebrid
) -> None:
    older = f"torrent:{fake.add_torrent(HASH)}"
    newer = f"torrent:{fake.add_torrent(HASH)}"  # the same hash twice (zurg-public#92)
    found = provider.find_existing(payload())
    assert found is not None and found.remote_id == newer  # the newest wins
    found = provider.find_existing(payload(), exclude={newer})
    assert found is not None and found.remote_id == older
    found = provider.find_existing(payload(), exclude=[older])  # any collection
    assert found is not None and found.remote_id == newer
    assert provider.find_existing(payload(), exclude={older, newer}) is None


def test_find_existing_skips_downloads_other_jobs_own_and_keeps_looking(
    provider: RealDebridProvider,
    fake: FakeRealDebrid,
    make: Callable[..., RealDebridProvider],
    clock: FakeClock,
) -> None:
    link = parse_start_job_payload({"url": "https://h.example/movie.mkv"})
    # Two providers (a provider reuses its own unrestricted link): two /downloads entries.
    made = {p.start_job(link).remote_id for p in (provider, make(clock=clock, limited=False))}
    assert len(made) == 2 and len(fake.downloads()) == 2
    for owned in made:
        found = provider.find_existing(link, exclude={owned})
        assert found is not None and found.remote_id == (made - {owned}).pop()
    assert provider.find_existing(link, exclude=made) is None
