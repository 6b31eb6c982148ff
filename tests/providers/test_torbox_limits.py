"""Rate limits and faults: the buckets keep TorBox's limits, faults surface as retryable errors."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pacing_helpers import take_if_ready, with_retries
from torbox_helpers import magnet, payload

from engine.testing.torbox import FakeTorBox
from providers import (
    FakeClock,
    JobStatus,
    ProviderError,
    RateLimiter,
    RetryPolicy,
)
from providers.torbox import RATE_LIMITS, TorBoxProvider

T = TypeVar("T")


@pytest.fixture
def fake(serve: Callable[[FakeTorBox], FakeTorBox], clock: FakeClock) -> FakeTorBox:
    return serve(FakeTorBox(clock=clock))


def most_in_window(times: list[float], window: float) -> int:
    """The most grants inside any closed window of ``window`` seconds."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while times[start] < at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_bucket_sizes_stay_under_the_documented_limits_with_a_margin() -> None:
    general, create = RATE_LIMITS["default"], RATE_LIMITS["create"]
    assert general.burst + general.rate * 60 <= 300 - 1
    assert create.burst + create.rate * 3600 <= 60 - 1
    assert create.burst + create.rate * 60 <= 10 - 1


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.floats(min_value=0.0, max_value=90.0), min_size=1, max_size=200))
def test_greedy_use_of_the_buckets_never_exceeds_a_torbox_window(steps: list[float]) -> None:
    """Take every token as soon as it exists, whatever the clock does in between."""
    clock = FakeClock()
    buckets = {n: RateLimiter(r.rate, r.burst, clock, name=n) for n, r in RATE_LIMITS.items()}
    grants: dict[str, list[float]] = {"default": [], "create": []}
    for step in steps:
        for name, bucket in buckets.items():
            while take_if_ready(bucket):
                grants[name].append(clock.monotonic())
        clock.advance(step)
    assert most_in_window(grants["default"], 60.0) <= 300
    assert most_in_window(grants["create"], 60.0) <= 10
    assert most_in_window(grants["create"], 3600.0) <= 60


@pytest.mark.parametrize("name", sorted(RATE_LIMITS))
def test_advancing_the_clock_by_the_announced_delay_always_frees_a_token(name: str) -> None:
    # Float residue once left 0.9999999999999999 tokens and a wait too small to move
    # the clock: an acquire() on a FakeClock then spun forever holding the lock.
    clock = FakeClock(start=12345.678)
    limit = RATE_LIMITS[name]
    bucket = RateLimiter(limit.rate, limit.burst, clock, name=name)
    for _ in range(500):
        if not take_if_ready(bucket):
            clock.advance(bucket.delay())
            assert take_if_ready(bucket)


def drive_until_done(clock: FakeClock, limiters: list[RateLimiter], done: threading.Event) -> None:
    """Move the clock to the next token whenever a bucket is empty; wait on the event, not sleep."""
    deadline = time.monotonic() + 120
    while not done.wait(0.001):
        assert time.monotonic() < deadline, "worker stuck"
        wait = max(limiter.delay() for limiter in limiters)
        if wait > 0:
            clock.advance(wait)


def in_background(
    work: Callable[[], None],
) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    done, failures = threading.Event(), []

    def run() -> None:
        try:
            work()
        except BaseException as error:
            failures.append(error)
        finally:
            done.set()

    worker = threading.Thread(target=run, name="torbox-submitter")
    worker.start()
    return worker, done, failures


def test_200_creations_through_the_default_buckets_get_zero_429s(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    fake.settings.active_limit = 1000
    provider = make(limiters=True)
    limiters = list(provider.context.limiters.values())

    def submit() -> None:
        for n in range(200):
            provider.start_job(payload(magnet=magnet(n)))

    worker, done, failures = in_background(submit)
    drive_until_done(clock, limiters, done)
    worker.join(5)
    assert failures == []
    assert fake.counts["createtorrent"] == 200
    assert fake.counts["rate_limited"] == 0
    # The hour budget, not the clock driver, set the pace: (200 - burst) at 50/hour.
    assert clock.monotonic() >= (200 - 8) * 3600 / 50 - 1


def test_1000_status_reads_through_the_default_bucket_get_zero_429s(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    provider = make(limiters=True)
    fake.add_item("torrent", f"{1:040x}")

    def read() -> None:
        for _ in range(1000):
            provider.get_status("torrent:1")

    worker, done, failures = in_background(read)
    drive_until_done(clock, list(provider.context.limiters.values()), done)
    worker.join(5)
    assert failures == [] and fake.counts["mylist"] == 1000
    assert fake.counts["rate_limited"] == 0


def test_429_past_300_a_minute_is_rate_limited_retryable_and_pauses_the_buckets(
    fake: FakeTorBox, clock: FakeClock, make: Callable[..., TorBoxProvider]
) -> None:
    other = httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {fake.api_key}"})
    for _ in range(300):  # another client of the same key spends the minute
        assert other.get("/v1/api/user/me").status_code == 200
    other.close()
    clock.advance(10.0)
    provider = make(limiters=True)
    with pytest.raises(ProviderError) as caught:
        provider.get_status("torrent:1")
    error = caught.value
    assert (error.code, error.retryable, error.http_status) == ("RATE_LIMITED", True, 429)
    assert error.retry_after == 50.0  # Retry-After: the window frees in 50 s
    paused = provider.context.limiters["default"].paused_until
    assert paused is not None and paused == pytest.approx(clock.monotonic() + 50.0)


@pytest.mark.parametrize(
    ("burst", "advance", "label"), [(10, 0.0, "10 per 1 minute"), (60, 61.0, "60 per 1 hour")]
)
def test_creation_past_its_edge_or_hourly_limit_is_rate_limited(
    fake: FakeTorBox,
    clock: FakeClock,
    make: Callable[..., TorBoxProvider],
    burst: int,
    advance: float,
    label: str,
) -> None:
    fake.add_cached(f"{0:040x}")  # duplicates of a cached hash keep slots free
    provider = make()
    for n in range(burst):
        provider.start_job(payload(magnet=magnet(n % 1 if advance else n)))
        if advance and n % 10 == 9:
            clock.advance(advance)
    with pytest.raises(ProviderError) as caught:
        provider.start_job(payload(magnet=magnet(0)))
    assert caught.value.code == "RATE_LIMITED" and caught.value.retryable
    assert caught.value.message == "rate limit exceeded"
    body = httpx.post(
        f"{fake.url}/v1/api/torrents/createtorrent",
        headers={"Authorization": f"Bearer {fake.api_key}"},
        data={"magnet": magnet(0)},
    )
    assert body.status_code == 429 and body.json()["detail"] == label
    assert int(body.headers["Retry-After"]) >= 1


def test_injected_faults_surface_only_as_retryable_errors_and_jobs_end_right() -> None:
    clock = FakeClock(autojump=True)
    fake = FakeTorBox(clock=clock, seed=20).start()
    provider = fake.make_provider()
    try:
        expected = {
            payload(magnet=magnet(1)): JobStatus.COMPLETED,
            payload(magnet=magnet(2)): JobStatus.FAILED,
            payload(magnet=magnet(3)): JobStatus.COMPLETED,  # cached
            payload(url="https://files.example/ok.bin"): JobStatus.COMPLETED,
            payload(url="https://files.example/dead.bin"): JobStatus.FAILED,
        }
        fake.set_scenario(f"{2:040x}", "error")
        fake.add_cached(f"{3:040x}")
        fake.set_scenario("https://files.example/dead.bin", "web_error")
        for kind in ("error_5xx", "reset", "malformed_json", "html"):
            fake.set_fault_rate(kind, 0.05)  # 20% of requests in all
        errors: list[BaseException] = []

        policy = RetryPolicy(max_retries=40, initial_delay=0.2, max_delay=5.0)

        def call(fn: Callable[[], T]) -> T:
            return with_retries(fn, policy, clock, rng=random.Random(3), on_retry=errors.append)

        jobs = {}
        for job in expected:
            started = call(lambda job=job: provider.find_existing(job) or provider.start_job(job))
            jobs[started.remote_id] = job
        final: dict[str, JobStatus] = {}
        for _ in range(200):
            for rid, status in call(lambda: provider.list_statuses(list(jobs))).items():
                if status.status.terminal:
                    final[rid] = status.status
            if len(final) == len(jobs):
                break
            clock.advance(1.0)
        assert {rid: final.get(rid) for rid in jobs} == {
            rid: expected[job] for rid, job in jobs.items()
        }
        for rid, job in jobs.items():
            if final[rid] is JobStatus.COMPLETED:
                links = call(lambda rid=rid, job=job: provider.get_file_links(rid, job))
                assert links.ready
                url = call(lambda rid=rid, f=links.files[0]: provider.resolve_download_url(rid, f))
                assert url.startswith(fake.url)
        assert len(errors) >= 3, "the faults were not exercised"
        assert all(isinstance(e, ProviderError) and e.retryable for e in errors)
        assert {e.code for e in errors if isinstance(e, ProviderError)} <= {
            "PROVIDER_UNAVAILABLE",
            "TIMEOUT",
            "RATE_LIMITED",
            "BAD_RESPONSE",  # a 200 whose JSON is cut short
        }
        assert max(fake.hash_counts().values()) == 1  # no job was submitted twice
    finally:
        provider.close()
        fake.stop()
