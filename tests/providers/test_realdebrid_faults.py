"""A fifth of all requests failing (5xx, resets, broken JSON, HTML) surfaces only as
retryable ProviderErrors, and retries by the policy carry every job to its right remote end."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from pacing_helpers import with_retries

from engine.testing._fakehttp import FaultKind
from engine.testing.realdebrid import FakeRealDebrid, Scenario
from providers import (
    FakeClock,
    JobStatus,
    ProviderError,
    RetryPolicy,
    StartJobPayload,
    parse_start_job_payload,
)
from providers.realdebrid import RealDebridProvider

T = TypeVar("T")

KINDS: tuple[FaultKind, ...] = ("error_5xx", "reset", "malformed_json", "html")
OUTCOMES = {  # info-hash -> the remote state the job must end in
    f"{1:040x}": "downloaded",
    f"{2:040x}": "downloaded",
    f"{3:040x}": "downloaded",
    f"{4:040x}": "dead",
    f"{5:040x}": "virus",
    f"{6:040x}": "magnet_error",
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(autojump=True)  # the retries sleep on it: instant


@pytest.fixture
def fake(serve: Callable[[FakeRealDebrid], FakeRealDebrid], clock: FakeClock) -> FakeRealDebrid:
    server = FakeRealDebrid(clock=clock, seed=1234, active_limit=100)
    for info_hash, outcome in OUTCOMES.items():
        if outcome != "downloaded":
            server.set_scenario(info_hash, Scenario(outcome=outcome))  # type: ignore[arg-type]
    return serve(server)


def test_faults_on_a_fifth_of_requests_are_retryable_and_every_job_ends_right(
    provider: RealDebridProvider, fake: FakeRealDebrid, clock: FakeClock
) -> None:
    for kind in KINDS:
        fake.set_fault_rate(kind, 0.05)  # 4 x 5% = 20% of all requests
    seen: list[BaseException] = []

    policy = RetryPolicy(max_retries=30, initial_delay=0.1, max_delay=30.0)

    def call(fn: Callable[[], T]) -> T:
        # Anything but a retryable ProviderError escapes the retries and fails the test.
        return with_retries(fn, policy, clock, on_retry=seen.append)

    jobs: dict[str, StartJobPayload] = {}
    for info_hash in OUTCOMES:
        job = parse_start_job_payload(
            {"magnet": f"magnet:?xt=urn:btih:{info_hash}", "select": {"globs": ["*.mkv"]}}
        )
        jobs[call(lambda job=job: provider.start_job(job)).remote_id] = job  # type: ignore[misc]
    link = parse_start_job_payload({"url": "https://hoster.example/some/file.bin"})
    link_id = call(lambda: provider.start_job(link)).remote_id

    final: dict[str, str] = {}
    for _ in range(60):
        pending = [rid for rid in jobs if rid not in final]
        if not pending:
            break
        statuses = call(lambda pending=pending: provider.list_statuses(pending))  # type: ignore[misc]
        for rid, status in statuses.items():
            if status.status.terminal:
                final[rid] = status.native_status
        clock.advance(1)
    files = {
        rid: call(lambda rid=rid: provider.get_file_links(rid, jobs[rid]))  # type: ignore[misc]
        for rid, native in final.items()
        if native == "downloaded"
    }
    link_files = call(lambda: provider.get_file_links(link_id, link))

    by_hash = {t["hash"]: t["status"] for t in fake.torrents()}
    assert by_hash == OUTCOMES  # every job reached its remote end, none twice
    assert sorted(final.values()) == sorted(OUTCOMES.values())
    assert all(r.ready and r.files and all(f.link for f in r.files) for r in files.values())
    assert all(f.name.endswith(".mkv") for r in files.values() for f in r.files)
    assert link_files.ready and link_files.files[0].link
    assert max(fake.torrents_by_hash().values()) == 1
    failed = [call(lambda rid=rid: provider.get_status(rid)) for rid in jobs]  # type: ignore[misc]
    assert sum(s.status is JobStatus.FAILED for s in failed) == 3
    assert len(seen) >= 5, "the faults should have been hit"
    assert all(isinstance(e, ProviderError) and e.retryable for e in seen)
    assert {e.code for e in seen if isinstance(e, ProviderError)} <= {
        "PROVIDER_UNAVAILABLE",
        "BAD_RESPONSE",  # a 200 whose JSON is cut short
    }
