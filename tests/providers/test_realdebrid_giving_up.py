"""Torrents the Real-Debrid provider gives up on: stuck ones, and uncached ones asked cached.

Against the fake over real sockets, on a FakeClock; giving up deletes the torrent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.testing.realdebrid import FakeRealDebrid, Scenario
from providers import FakeClock, JobStatus, JobStatusResponse, parse_start_job_payload
from providers.realdebrid import RealDebridProvider
from providers.realdebrid._tracker import DEFAULT_STALL_TIMEOUTS

HASH = "e" * 40
MAGNET = f"magnet:?xt=urn:btih:{HASH}&dn=Stuck"


@pytest.fixture
def fake(serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock) -> FakeRealDebrid:
    return serve(FakeRealDebrid(clock=clock, step_seconds=1.0, download_steps=4))


def poll_until_terminal(
    provider: RealDebridProvider, clock: FakeClock, remote_id: str, *, every: float, limit: float
) -> tuple[JobStatusResponse, float]:
    """Poll every ``every`` fake seconds; the terminal status and when it came."""
    start = clock.monotonic()
    while clock.monotonic() - start <= limit:
        status = provider.list_statuses([remote_id])[remote_id]
        if status.status.terminal:
            return status, clock.monotonic() - start
        clock.advance(every)
    raise AssertionError(f"still {status.native_status} after {limit} s")


@pytest.mark.parametrize(
    ("outcome", "state"),
    [("stuck_conversion", "magnet_conversion"), ("stuck_queued", "queued"),
     ("stalled", "downloading")],
)
def test_a_stuck_torrent_is_deleted_after_its_states_default_timeout(
    make: Callable[..., RealDebridProvider],
    fake: FakeRealDebrid,
    clock: FakeClock,
    outcome: Any,
    state: str,
) -> None:
    fake.set_scenario(HASH, Scenario(outcome=outcome))
    provider = make(limited=False)  # the defaults: no stall option given
    started = provider.start_job(parse_start_job_payload({"magnet": MAGNET}))
    final, after = poll_until_terminal(provider, clock, started.remote_id, every=30, limit=7200)
    assert (final.status, final.error_code) == (JobStatus.FAILED, "STALLED")
    assert final.native_status == state and state in (final.error_message or "")
    limit = DEFAULT_STALL_TIMEOUTS[state]
    assert limit <= after <= limit + 90  # first seen stuck within a few polls of the start
    assert fake.torrents() == []  # deleted: the slot is free
    before = fake.counts["total"]
    assert provider.cancel(started.remote_id).already_gone  # the job's cleanup
    assert fake.counts["total"] == before  # knows it is gone: no second DELETE


def test_stall_timeouts_are_configurable_per_state_and_none_never_gives_up(
    make: Callable[..., RealDebridProvider], fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(outcome="stuck_conversion"))
    provider = make(limited=False, stall_timeouts={"magnet_conversion": None})
    started = provider.start_job(parse_start_job_payload({"magnet": MAGNET}))
    for _ in range(10):
        status = provider.list_statuses([started.remote_id])[started.remote_id]
        assert status.status is JobStatus.RESOLVING
        clock.advance(3600)
    quick = make(limited=False, stall_timeouts={"magnet_conversion": 60})
    quick.attach(started.remote_id, parse_start_job_payload({"magnet": MAGNET}))
    final, after = poll_until_terminal(quick, clock, started.remote_id, every=10, limit=120)
    assert final.error_code == "STALLED" and 60 <= after <= 70


def test_a_torrent_that_moves_is_not_stuck(clock: FakeClock) -> None:
    # Ten fake minutes per step: downloading lasts 40 minutes, at speed, with progress.
    slow = FakeRealDebrid(clock=clock, step_seconds=600.0, download_steps=4)
    with slow:
        provider = slow.make_provider(limited=False, stall_timeouts={"downloading": 300})
        try:
            started = provider.start_job(parse_start_job_payload({"magnet": MAGNET}))
            final, _ = poll_until_terminal(provider, clock, started.remote_id, every=60,
                                           limit=4 * 3600)
            assert final.status is JobStatus.COMPLETED
        finally:
            provider.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stall_timeouts": {"seeding": 60}}, "'seeding' is not a state"),
        ({"stall_timeouts": {"queued": 0}}, "'queued' must be seconds > 0"),
        ({"stall_timeouts": {"queued": "soon"}}, "'queued' must be seconds > 0"),
        ({"stall_timeouts": {"downloading": True}}, "'downloading' must be seconds > 0"),
    ],
)
def test_bad_stall_timeouts_are_refused_by_name(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RealDebridProvider("token", **options)


def test_only_if_cached_is_decided_right_after_selection_not_at_a_later_poll(
    serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock
) -> None:
    # Downloaded a tenth of a second after selectFiles: between two polls.
    fast = serve(FakeRealDebrid(clock=clock, step_seconds=0.05, download_steps=1))
    provider = fast.make_provider(limited=False)
    try:
        started = provider.start_job(
            parse_start_job_payload({"magnet": MAGNET, "only_if_cached": True})
        )
        final, _ = poll_until_terminal(provider, clock, started.remote_id, every=1, limit=10)
        assert (final.status, final.error_code) == (JobStatus.FAILED, "NOT_CACHED")
        assert fast.torrents() == [] and fast.counts["torrents_delete"] == 1
        # The one read after selectFiles told (plus the one for the files).
        assert fast.counts["torrents_info"] == 2
    finally:
        provider.close()


def test_only_if_cached_completes_a_cached_torrent_in_the_poll_that_selects_it(
    make: Callable[..., RealDebridProvider], fake: FakeRealDebrid, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(cached=True))
    provider = make(limited=False, blocking=False)
    job = parse_start_job_payload({"magnet": MAGNET, "only_if_cached": True})
    started = provider.start_job(job)
    status = provider.list_statuses([started.remote_id])[started.remote_id]
    assert status.status is JobStatus.COMPLETED
    before = fake.counts["total"]
    links = provider.get_file_links(started.remote_id, job)
    # The links of the read after selection are known: only unrestricts follow.
    assert fake.counts["total"] - before == fake.counts["unrestrict_link"] == 1
    assert links.more or links.ready
    assert len(fake.torrents()) == 1
