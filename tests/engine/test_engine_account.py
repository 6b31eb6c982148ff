"""The account as a state: a revoked key or a locked account holds a provider's jobs.

Against the fake Real-Debrid over real sockets, and the mock: while the service
refuses the whole account, polls back off to a few a minute, the jobs wait
(their metadata says why, no stall timer runs), ``Engine.health()`` names the
state, and when the account works again (a new key, the lock lifted) they go on;
past ``account_fail_after`` they fail with the account's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors._job import WAITING_FOR
from engine import Engine, EngineConfig, JobStatus
from engine.testing import ClockDriver, advance_until
from engine.testing.realdebrid import FakeRealDebrid
from providers import FakeClock, MemorySecretStore, MockProvider, ProviderRegistry, RetryPolicy

RETRY = RetryPolicy(max_retries=12, initial_delay=1.0, max_delay=30.0)
HASH = f"{0xACC001:040x}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeRealDebrid]:
    with FakeRealDebrid(clock=clock, step_seconds=60.0) as server:
        yield server


def rd_engine(
    fake: FakeRealDebrid, clock: FakeClock, db: Path, secrets: MemorySecretStore, **config: Any
) -> Engine:
    return Engine(
        EngineConfig(
            database=db,
            clock=clock,
            secrets=secrets,
            retry=RETRY,
            seed=3,
            providers={"realdebrid": {**fake.provider_options(), "poll_interval": 5.0}},
            **config,
        )
    )


def requests_to(fake: FakeRealDebrid) -> int:
    return int(fake.stats()["counts"].get("total", 0))


def downloading(engine: Engine, clock: FakeClock, job_id: str) -> None:
    with ClockDriver(clock, step=1.0):
        advance_until(
            clock,
            lambda: engine.get_job(job_id).status is JobStatus.DOWNLOADING,
            step=0,
            timeout=60,
        )


def spend(clock: FakeClock, seconds: float) -> None:
    """Let ``seconds`` of fake time pass, in steps the engine keeps up with."""
    end = clock.monotonic() + seconds
    with ClockDriver(clock, step=20.0):
        advance_until(clock, lambda: clock.monotonic() >= end, step=0, timeout=120)


def held_note(engine: Engine, job_id: str) -> dict[str, Any] | None:
    note = engine.get_job(job_id).metadata.get(WAITING_FOR)
    return note if isinstance(note, dict) and "account" in note else None


def test_a_key_revoked_mid_download_holds_the_job_until_a_new_key_works(
    fake: FakeRealDebrid, clock: FakeClock, tmp_path: Path
) -> None:
    secrets = MemorySecretStore()
    with rd_engine(fake, clock, tmp_path / "jobs.db", secrets) as engine:
        job = engine.create_job("realdebrid", {"magnet": f"magnet:?xt=urn:btih:{HASH}"})
        downloading(engine, clock, job.id)
        fake.tokens.clear()  # the user revoked the key on the website
        with ClockDriver(clock, step=1.0):
            advance_until(clock, lambda: held_note(engine, job.id) is not None, step=0,
                          timeout=60)
        health = engine.health().providers["realdebrid"]
        assert health.state == "auth_failed"
        assert health.account_error is not None and health.account_error.startswith("BAD_TOKEN")
        assert not engine.health().ready
        # Seven fake hours: past the six-hour DOWNLOADING stall, polls a few a minute.
        before = requests_to(fake)
        spend(clock, 7 * 3600.0)
        probes = requests_to(fake) - before
        assert probes <= 7 * 60 + 5  # at most one a minute once backed off
        assert engine.get_job(job.id).status is JobStatus.DOWNLOADING
        note = held_note(engine, job.id)
        assert note is not None and note["account"] == "BAD_TOKEN"
        # A new key: the next probe works, the job goes on and completes.
        fake.tokens.add("new-key")
        secrets.set("realdebrid.api_token", "new-key")
        with ClockDriver(clock, step=1.0):
            done = engine.wait(job.id, timeout=60)
        assert done.status is JobStatus.COMPLETED, done.error
        assert WAITING_FOR not in done.metadata
        assert engine.health().providers["realdebrid"].state == "ok"
    assert set(fake.torrents_by_hash().values()) == {1}


def test_a_locked_account_holds_new_and_running_jobs_and_they_finish_once_unlocked(
    fake: FakeRealDebrid, clock: FakeClock, tmp_path: Path
) -> None:
    with rd_engine(fake, clock, tmp_path / "jobs.db", MemorySecretStore()) as engine:
        first = engine.create_job("realdebrid", {"magnet": f"magnet:?xt=urn:btih:{HASH}"})
        downloading(engine, clock, first.id)
        fake.account_locked = True
        later = engine.create_job(
            "realdebrid", {"magnet": f"magnet:?xt=urn:btih:{0xACC002:040x}"}
        )
        with ClockDriver(clock, step=1.0):
            advance_until(
                clock,
                lambda: held_note(engine, first.id) is not None
                and held_note(engine, later.id) is not None,
                step=0,
                timeout=120,
            )
        assert engine.health().providers["realdebrid"].state == "account_refused"
        assert engine.get_job(later.id).remote_id is None  # held back, not sent
        spend(clock, 600.0)
        assert [engine.get_job(j.id).status for j in (first, later)] == [
            JobStatus.DOWNLOADING, JobStatus.QUEUED,
        ]
        fake.account_locked = False
        with ClockDriver(clock, step=1.0):
            done = [engine.wait(j.id, timeout=120) for j in (first, later)]
    assert [j.status for j in done] == [JobStatus.COMPLETED, JobStatus.COMPLETED]
    assert set(fake.torrents_by_hash().values()) == {1}


def test_past_account_fail_after_the_waiting_jobs_fail_with_the_accounts_code(
    fake: FakeRealDebrid, clock: FakeClock, tmp_path: Path
) -> None:
    secrets = MemorySecretStore()
    with rd_engine(
        fake, clock, tmp_path / "jobs.db", secrets, account_fail_after=600.0
    ) as engine:
        job = engine.create_job("realdebrid", {"magnet": f"magnet:?xt=urn:btih:{HASH}"})
        downloading(engine, clock, job.id)
        fake.tokens.clear()
        with ClockDriver(clock, step=5.0):
            failed = engine.wait(job.id, timeout=60)
        assert failed.status is JobStatus.FAILED
        assert failed.error is not None and failed.error.code == "BAD_TOKEN"
        assert "refused every call for 10 min" in failed.error.message
        # A job created now fails at once, without a request for its submission.
        before = fake.stats()["counts"].get("POST /torrents/addMagnet", 0)
        late = engine.create_job("realdebrid", {"magnet": f"magnet:?xt=urn:btih:{0xACC003:040x}"})
        with ClockDriver(clock, step=1.0):
            refused = engine.wait(late.id, timeout=60)
        assert refused.error is not None and refused.error.code == "BAD_TOKEN"
        assert fake.stats()["counts"].get("POST /torrents/addMagnet", 0) == before


def test_a_refused_submission_waits_for_the_account_and_is_sent_once(
    clock: FakeClock, tmp_path: Path
) -> None:
    mock = MockProvider(1.0)
    mock.inject("fatal", op="start_job", code="BAD_TOKEN")
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    config = EngineConfig(
        database=tmp_path / "jobs.db", clock=clock, registry=registry,
        providers={"mock": {"poll_interval": 0.5}}, retry=RETRY, seed=1, stall_timeouts={},
    )
    with Engine(config) as engine:
        job = engine.create_job("mock", {"magnet": f"magnet:?xt=urn:btih:{HASH}"})
        with ClockDriver(clock, step=0.5):
            advance_until(clock, lambda: held_note(engine, job.id) is not None, step=0,
                          timeout=30)
            assert engine.get_job(job.id).status is JobStatus.QUEUED
            done = engine.wait(job.id, timeout=60)
    assert done.status is JobStatus.COMPLETED
    assert mock.calls["start_job"] == 2  # the refused one, then the probe that worked
    assert set(mock.submissions().values()) == {1}


@pytest.mark.parametrize("keep", [False, True])
def test_a_stalled_job_deletes_its_stuck_torrent_unless_told_to_keep_it(
    fake: FakeRealDebrid, clock: FakeClock, tmp_path: Path, keep: bool
) -> None:
    """Finding 13 of issue 10: a STALLED job stopped tracking its torrent and left
    it on the account, holding one of its few active slots for ever."""
    from engine.testing.realdebrid import Scenario  # noqa: PLC0415

    fake.set_scenario(HASH, Scenario(outcome="stalled", seeders=0))
    with rd_engine(
        fake, clock, tmp_path / "jobs.db", MemorySecretStore(),
        stall_timeouts={JobStatus.DOWNLOADING: 600.0}, keep_failed_items=keep,
    ) as engine:
        job = engine.create_job("realdebrid", {"magnet": f"magnet:?xt=urn:btih:{HASH}"})
        with ClockDriver(clock, step=5.0):
            failed = engine.wait(job.id, timeout=60)
            assert failed.error is not None and failed.error.code == "STALLED"
            if keep:
                spend(clock, 120.0)
            else:
                advance_until(clock, lambda: not fake.torrents_by_hash(), step=0, timeout=60)
    assert fake.torrents_by_hash() == ({HASH: 1} if keep else {})


def test_keep_failed_items_keeps_a_torrent_real_debrid_gave_up_on(
    fake: FakeRealDebrid, clock: FakeClock, tmp_path: Path
) -> None:
    """Review of issue 10: with the default stall timeouts Real-Debrid's provider
    gives up on a stuck torrent first, and deleted it whatever the option said."""
    from engine.testing.realdebrid import Scenario  # noqa: PLC0415

    fake.set_scenario(HASH, Scenario(outcome="stalled", seeders=0))
    with rd_engine(
        fake, clock, tmp_path / "jobs.db", MemorySecretStore(), keep_failed_items=True
    ) as engine:
        job = engine.create_job("realdebrid", {"magnet": f"magnet:?xt=urn:btih:{HASH}"})
        with ClockDriver(clock, step=30.0):
            failed = engine.wait(job.id, timeout=120)
        assert failed.status is JobStatus.FAILED
        spend(clock, 120.0)
    assert fake.torrents_by_hash() == {HASH: 1}


def test_a_retry_of_a_job_whose_failed_item_was_kept_deletes_that_item(
    fake: FakeRealDebrid, clock: FakeClock, tmp_path: Path
) -> None:
    """Review of issue 10: the kept item was recorded as released, so the retry's
    cleanup skipped it and the new attempt left two torrents of the same hash."""
    from engine.testing.realdebrid import Scenario  # noqa: PLC0415

    fake.set_scenario(HASH, Scenario(outcome="stalled", seeders=0))
    with rd_engine(
        fake, clock, tmp_path / "jobs.db", MemorySecretStore(),
        stall_timeouts={JobStatus.DOWNLOADING: 600.0}, keep_failed_items=True,
    ) as engine:
        job = engine.create_job("realdebrid", {"magnet": f"magnet:?xt=urn:btih:{HASH}"})
        with ClockDriver(clock, step=5.0):
            failed = engine.wait(job.id, timeout=60)
            assert failed.error is not None and failed.error.code == "STALLED"
            old = failed.remote_id
            spend(clock, 30.0)
            engine.retry_job(job.id)
            advance_until(
                clock, lambda: engine.get_job(job.id).remote_id not in (None, old), step=0,
                timeout=60,
            )
            spend(clock, 120.0)
    assert fake.torrents_by_hash() == {HASH: 1}
