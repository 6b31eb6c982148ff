"""TorBox jobs through the whole engine, against the fake server over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import finish_with_crashing_submissions, restart_in_phase, stored_bytes

from engine import Engine, EngineConfig, JobStatus
from engine.testing import ClockDriver, advance_until
from engine.testing.torbox import FakeTorBox
from providers import FakeClock, RetryPolicy
from providers.torbox import TorBoxProvider

RETRY = RetryPolicy(max_retries=12, initial_delay=1.0, max_delay=60.0)


def info_hash(i: int) -> str:
    return f"{i + 0x7B0000:040x}"


def magnet(i: int) -> dict[str, Any]:
    return {"magnet": f"magnet:?xt=urn:btih:{info_hash(i)}&dn=tb{i}"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeTorBox]:
    with FakeTorBox(clock=clock, step_seconds=2.0) as server:
        yield server


def tb_engine(fake: FakeTorBox, clock: FakeClock, db: Path, **options: Any) -> Engine:
    return Engine(
        EngineConfig(
            database=db,
            clock=clock,
            retry=RETRY,
            seed=3,
            stall_timeouts={},  # tested elsewhere; fake hours of rate limiting are not stalls
            providers={"torbox": {**fake.provider_options(), "poll_interval": 5.0, **options}},
        )
    )


def test_torrent_cached_and_web_download_jobs_complete(
    fake: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    fake.add_cached(info_hash(2), name="Cached thing")
    with tb_engine(fake, clock, tmp_path / "jobs.db") as engine:
        jobs = [
            engine.create_job("torbox", {**magnet(1), "select": {"largest_only": True}}),
            engine.create_job("torbox", magnet(2)),
            engine.create_job("torbox", {"url": "https://hoster.example/f/big.bin"}),
        ]
        with ClockDriver(clock, step=1.0):
            done = [engine.wait(j.id, timeout=60) for j in jobs]
    assert [j.status for j in done] == [JobStatus.COMPLETED] * 3, [j.error for j in done]
    torrent, cached, web = done
    assert sum(f.selected for f in torrent.files) == 1
    assert all(f.md5 for f in torrent.files)
    assert cached.status is JobStatus.COMPLETED
    assert web.remote_id is not None and web.files
    assert all(v == 1 for v in fake.hash_counts().values())


def test_only_if_cached_refuses_what_is_not_cached(
    fake: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    with tb_engine(fake, clock, tmp_path / "jobs.db") as engine:
        job = engine.create_job("torbox", {**magnet(3), "only_if_cached": True})
        with ClockDriver(clock, step=1.0):
            failed = engine.wait(job.id, timeout=60)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert fake.items() == []


def test_two_hundred_creations_at_the_fakes_limits_get_no_429(
    fake: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    fake.settings.active_limit = 1000
    with tb_engine(fake, clock, tmp_path / "jobs.db") as engine:
        engine.create_jobs("torbox", [magnet(i) for i in range(200)])
        with ClockDriver(clock, step=10.0):
            advance_until(
                clock,
                lambda: len(engine.list_jobs(status=JobStatus.COMPLETED, limit=None)) == 200,
                step=0,
                timeout=240,
            )
    assert fake.counts["rate_limited"] == 0
    assert len(fake.items("torrent")) == 200
    # 200 creations at 60 an hour cannot take less than three hours of (fake) time.
    assert clock.monotonic() >= 3 * 3600


def test_twenty_percent_faults_still_end_every_job_in_the_right_state(
    fake: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    fake.set_scenario(info_hash(50), "error")
    for kind in ("error_5xx", "reset", "malformed_json", "html"):
        fake.set_fault_rate(kind, 0.05)  # type: ignore[arg-type]
    with tb_engine(fake, clock, tmp_path / "jobs.db", timeout=2.0) as engine:
        good = engine.create_jobs("torbox", [magnet(i) for i in range(15)])
        bad = engine.create_job("torbox", magnet(50))
        with ClockDriver(clock, step=2.0):
            done = [engine.wait(j.id, timeout=120) for j in good]
            failed = engine.wait(bad.id, timeout=120)
    assert all(j.status is JobStatus.COMPLETED for j in done), [
        (j.status, j.error) for j in done if j.status is not JobStatus.COMPLETED
    ]
    assert failed.status is JobStatus.FAILED
    assert all(v == 1 for v in fake.hash_counts().values())


@pytest.mark.parametrize("phase", [JobStatus.QUEUED, JobStatus.RESOLVING, JobStatus.DOWNLOADING])
def test_restart_in_each_phase_adds_no_duplicate_item(
    fake: FakeTorBox, clock: FakeClock, tmp_path: Path, phase: JobStatus
) -> None:
    done = restart_in_phase(
        lambda: tb_engine(fake, clock, tmp_path / "jobs.db"),
        "torbox",
        [magnet(i) for i in range(4)],
        phase=phase,
        clock=clock,
        remote_made=lambda: len(fake.items()) >= 1,
        step=2.0,
    )
    assert all(j.status is JobStatus.COMPLETED for j in done), [j.error for j in done]
    assert sorted(fake.hash_counts().values()) == [1] * 4


def test_crash_between_create_and_answer_is_found_again_not_created_twice(
    fake: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    crashing, done = finish_with_crashing_submissions(
        TorBoxProvider,
        "torbox",
        fake.provider_options(),
        [magnet(i) for i in range(3)],
        clock=clock,
        database=tmp_path / "jobs.db",
        retry=RETRY,
        step=2.0,
    )
    assert crashing.crashes == 2
    assert all(j.status is JobStatus.COMPLETED for j in done)
    assert sorted(fake.hash_counts().values()) == [1, 1, 1]


def test_the_api_key_never_reaches_the_database_or_job_data(
    fake: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    with tb_engine(fake, clock, tmp_path / "jobs.db") as engine:
        job = engine.create_job("torbox", magnet(7))
        with ClockDriver(clock, step=1.0):
            done = engine.wait(job.id, timeout=60)
        assert fake.api_key not in repr(done.to_dict())
        assert engine.test_connection("torbox").ok
    raw = stored_bytes(tmp_path)
    assert fake.api_key.encode() not in raw
