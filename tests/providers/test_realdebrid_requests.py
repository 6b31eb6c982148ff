"""What a Real-Debrid job costs in requests, and that a pack never holds the caller.

Against the fake over real sockets, with the provider bound as the engine binds
it (``blocking=False``: one request per ``get_file_links`` call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from engine.testing.realdebrid import FakeRealDebrid, Scenario
from providers import (
    FakeClock,
    FileLinksResponse,
    JobStatus,
    JobStatusResponse,
    StartJobPayload,
    parse_start_job_payload,
)
from providers.realdebrid import RealDebridProvider

HASH = "d" * 40
PACKS = {
    1: (("Film/Film.mkv", 700_000_000),),
    4: (
        ("Show/Show.S01E01.mkv", 700_000_000),
        ("Show/Show.S01E02.mkv", 690_000_000),
        ("Show/Sample/sample.mkv", 30_000_000),
        ("Show/Show.nfo", 4_000),
    ),
}
PACK_40 = tuple((f"Pack/Episode.{i:02d}.mkv", 1_000_000 + i) for i in range(40))


@pytest.fixture
def fake(serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock) -> FakeRealDebrid:
    return serve(FakeRealDebrid(clock=clock, step_seconds=1.0, download_steps=4))


@pytest.fixture
def engine_like(make: Callable[..., RealDebridProvider]) -> RealDebridProvider:
    """A provider bound as inside the engine: requests never wait, one per links call."""
    return make(limited=False, blocking=False)


def payload(**fields: Any) -> StartJobPayload:
    fields.setdefault("magnet", f"magnet:?xt=urn:btih:{HASH}&dn=Pack")
    return parse_start_job_payload(fields)


def sent(fake: FakeRealDebrid) -> Counter[str]:
    return Counter(fake.stats()["counts"])


def finish(provider: RealDebridProvider, clock: FakeClock, remote_id: str) -> JobStatusResponse:
    for _ in range(60):
        status = provider.list_statuses([remote_id])[remote_id]
        if status.status.terminal:
            return status
        clock.advance(1)
    raise AssertionError(f"not terminal after 60 polls: {status}")


def all_links(
    provider: RealDebridProvider, fake: FakeRealDebrid, remote_id: str, job: StartJobPayload
) -> tuple[FileLinksResponse, list[int]]:
    """Ask as the job actor does (again at once while ``more``): the last answer, and
    the requests each call sent."""
    per_call = []
    for _ in range(100):
        before = sent(fake)["total"]
        answer = provider.get_file_links(remote_id, job)
        per_call.append(sent(fake)["total"] - before)
        if not answer.more:
            return answer, per_call
    raise AssertionError("get_file_links kept answering more")


@pytest.mark.parametrize("size", [1, 4])
@pytest.mark.parametrize("select", [{}, {"largest_only": True}], ids=["all", "largest"])
def test_a_magnet_job_costs_three_requests_plus_one_per_selected_file_plus_polls(
    engine_like: RealDebridProvider,
    fake: FakeRealDebrid,
    clock: FakeClock,
    size: int,
    select: dict[str, Any],
) -> None:
    fake.set_default_scenario(Scenario(files=PACKS[size]))
    job = payload(select=select)
    started = engine_like.start_job(job)
    before_polls = sent(fake)
    assert before_polls["torrents_active_count"] == 1  # once per provider, not per job
    polls = 0
    status = started
    while not status.status.terminal:
        polls += 1
        status = engine_like.list_statuses([started.remote_id])[started.remote_id]
        clock.advance(1)
    answer, per_call = all_links(engine_like, fake, started.remote_id, job)
    k = size if not select else 1
    assert answer.ready and len(answer.files) == k
    assert all(f.link and f.link.startswith(fake.url) for f in answer.files)
    counts = sent(fake) - before_polls
    # addMagnet, then at selection one info and one selectFiles, then one unrestrict
    # per selected file: no second /torrents/info, no unrestrict of unwanted files.
    assert counts == Counter(
        total=polls + 2 + k,
        torrents=polls,
        torrents_info=1,
        torrents_select_files=1,
        unrestrict_link=k,
    )
    assert sent(fake)["torrents_add_magnet"] == 1
    assert per_call == [1] * k  # one unrestrict a call, the last one ready
    record = fake.torrent_record(started.remote_id.partition(":")[2])
    # Every file wanted (the whole pack, or the one file there is): `all`.
    assert record.select_spec == ("all" if not select or size == 1 else "1")


def test_a_forty_file_pack_is_unrestricted_one_file_a_call(
    engine_like: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_default_scenario(Scenario(files=PACK_40))
    job = payload()
    started = engine_like.start_job(job)
    assert finish(engine_like, clock, started.remote_id).status is JobStatus.COMPLETED
    answers = []
    for _ in range(40):
        before = sent(fake)
        answers.append(engine_like.get_file_links(started.remote_id, job))
        assert sent(fake) - before == Counter(total=1, unrestrict_link=1)
    assert [a.more for a in answers] == [True] * 39 + [False]
    assert not any(a.ready for a in answers[:-1])
    final = answers[-1]
    assert final.ready and len({f.link for f in final.files}) == 40
    # Asked again, everything is cached: no request at all.
    before = sent(fake)["total"]
    assert engine_like.get_file_links(started.remote_id, job) == final
    assert sent(fake)["total"] == before


def test_a_provider_used_on_its_own_answers_a_pack_whole(
    make: Callable[..., RealDebridProvider], fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_default_scenario(Scenario(files=PACKS[4]))
    provider = make(limited=False)  # blocking: nothing to interleave with
    job = payload()
    started = provider.start_job(job)
    finish(provider, clock, started.remote_id)
    answer = provider.get_file_links(started.remote_id, job)
    assert answer.ready and not answer.more and len(answer.files) == 4


def test_after_a_restart_the_links_fall_back_to_one_info_read(
    make: Callable[..., RealDebridProvider], fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_default_scenario(Scenario(files=PACKS[4]))
    job = payload(select={"globs": ["*.mkv"]})
    first = make(limited=False, blocking=False)
    started = first.start_job(job)
    finish(first, clock, started.remote_id)
    again = make(limited=False, blocking=False)  # no memory of the selection
    again.attach(started.remote_id, job)
    before = sent(fake)
    answer, per_call = all_links(again, fake, started.remote_id, job)
    assert per_call == [1, 1, 1, 1]  # the info read, then one unrestrict a call
    assert sent(fake) - before == Counter(total=4, torrents_info=1, unrestrict_link=3)
    assert answer.ready
    assert [f.name for f in answer.files] == [
        "Show.S01E01.mkv", "Show.S01E02.mkv", "Sample/sample.mkv"
    ]


def test_a_download_dir_job_gets_rd_links_and_unrestricts_each_file_as_it_starts(
    engine_like: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_default_scenario(Scenario(files=PACKS[4]))
    job = payload(download_dir="/downloads/show")
    started = engine_like.start_job(job)
    finish(engine_like, clock, started.remote_id)
    before = sent(fake)
    answer = engine_like.get_file_links(started.remote_id, job)
    assert sent(fake) == before  # nothing sent: the poll's links are the answer
    assert answer.ready and len(answer.files) == 4
    assert all(f.link and f.link.startswith("https://real-debrid.com/d/") for f in answer.files)
    url = engine_like.resolve_download_url(started.remote_id, answer.files[1])
    assert url.startswith(f"{fake.url}/d/") and fake.downloads()[0].download == url
    assert sent(fake) - before == Counter(total=1, unrestrict_link=1)
    assert engine_like.resolve_download_url(started.remote_id, answer.files[1]) == url
    assert sent(fake)["unrestrict_link"] == 1  # fresh: reused


def test_an_archive_is_still_one_file_from_one_unrestrict(
    engine_like: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_default_scenario(Scenario(files=PACKS[4], rar=True))
    job = payload()
    started = engine_like.start_job(job)
    finish(engine_like, clock, started.remote_id)
    answer, per_call = all_links(engine_like, fake, started.remote_id, job)
    assert answer.ready and per_call == [1]
    assert [(f.id, f.name.endswith(".rar")) for f in answer.files] == [(0, True)]


def test_late_links_are_read_afresh_until_they_are_all_there(
    engine_like: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_default_scenario(Scenario(files=PACKS[4], late_links=30))
    job = payload()
    started = engine_like.start_job(job)
    finish(engine_like, clock, started.remote_id)
    first, _ = all_links(engine_like, fake, started.remote_id, job)
    assert not first.ready and not first.more  # one link of four, not an archive
    clock.advance(30)
    before = sent(fake)
    answer, per_call = all_links(engine_like, fake, started.remote_id, job)
    assert answer.ready and len(answer.files) == 4
    # The links the poll saw were stale: one info read, then the three new files.
    assert per_call == [1, 1, 1, 1]
    assert (sent(fake) - before)["torrents_info"] == 1


def test_the_link_memories_are_bounded(
    engine_like: RealDebridProvider, fake: FakeRealDebrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    for memory in (engine_like._link_files, engine_like.links._by_source,
                   engine_like.links._by_download):
        memory.limit = 3
    for i in range(6):
        engine_like.start_job(parse_start_job_payload({"url": f"https://h.example/{i}.bin"}))
    assert len(engine_like._link_files) == 3
    assert len(engine_like.links._by_source) == len(engine_like.links._by_download) == 3


def test_a_pack_answered_in_parts_ends_though_its_links_age_faster_than_it_goes(
    make: Callable[..., RealDebridProvider], fake: FakeRealDebrid, clock: FakeClock
) -> None:
    """Review of issue 10: the URLs gathered so far lived only in the link cache, so
    with a link_ttl shorter than the pack's pace every call unrestricted the first
    file again and answered "more" for ever."""
    provider = make(limited=False, blocking=False, link_ttl=0.5)
    fake.set_default_scenario(Scenario(files=PACKS[4]))
    job = payload()
    started = provider.start_job(job)
    status = started
    while not status.status.terminal:
        status = provider.list_statuses([started.remote_id])[started.remote_id]
        clock.advance(1)
    before = sent(fake)["unrestrict_link"]
    for _ in range(10):
        answer = provider.get_file_links(started.remote_id, job)
        clock.advance(1)  # each direct URL is older than link_ttl by the next call
        if not answer.more:
            break
    assert answer.ready and not answer.more
    assert sent(fake)["unrestrict_link"] - before == 4


@pytest.mark.parametrize("ttl", [0, -1.0, float("inf"), float("nan")])
def test_a_link_ttl_that_is_not_a_positive_time_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match=r"providers\.realdebrid\.link_ttl: invalid option"):
        RealDebridProvider("token", link_ttl=ttl)
