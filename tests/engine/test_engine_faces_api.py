"""What the daemon's faces need of the Engine: search and sort, counts, deletes, telemetry."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import MakeEngine

from engine import Engine, EngineConfig, InvalidTransition, JobNotFound, JobStatus, ValidationError
from engine.testing import ClockDriver, advance_until
from engine.testing.realdebrid import FakeRealDebrid
from providers import FakeClock, MockProvider, RetryPolicy


def _finish(engine: Engine, clock: FakeClock, job_id: str) -> JobStatus:
    with ClockDriver(clock, step=1.0):
        return engine.wait(job_id, timeout=30).status


def test_text_search_finds_jobs_by_url_magnet_name_and_id(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(3600.0))
    film = engine.create_job("mock", {"url": "https://host.example/Big_Buck%Bunny.mkv"})
    show = engine.create_job("mock", {"magnet": "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=Sintel"})
    engine.create_job("mock", {"url": "https://other.example/x.zip"})

    assert [j.id for j in engine.list_jobs(text="buck%bunny")] == [film.id]
    assert [j.id for j in engine.list_jobs(text="SINTEL")] == [show.id]
    assert [j.id for j in engine.list_jobs(text=show.id[:10])] == [show.id]
    # "%" and "_" mean themselves, not LIKE's wildcards.
    assert engine.list_jobs(text="x_zip") == []  # LIKE would match "x.zip"
    assert engine.count_jobs(text=".example/") == 2
    assert engine.count_jobs(text="sintel", status=JobStatus.COMPLETED) == 0
    # Only what a person would type finds a job: not the JSON around it.
    assert engine.count_jobs(text="priority") == 0
    assert engine.count_jobs(text='"url"') == 0
    with pytest.raises(ValidationError) as error:
        engine.list_jobs(text="x" * 501)
    assert error.value.field == "text"


def test_search_folds_case_beyond_ascii_and_finds_escaped_text(
    make_engine: MakeEngine, tmp_path: Path
) -> None:
    engine = make_engine(MockProvider(3600.0))
    cafe = engine.create_job("mock", {"url": "https://h.example/CAFÉ.mkv"})
    odd = tmp_path / 'say"hi\\films'
    quoted = engine.create_job("mock", {"url": "https://h.example/q", "download_dir": str(odd)})
    assert [j.id for j in engine.list_jobs(text="café")] == [cafe.id]
    assert [j.id for j in engine.list_jobs(text="CAFÉ")] == [cafe.id]
    assert [j.id for j in engine.list_jobs(text='say"hi\\fil')] == [quoted.id]
    # A lone surrogate (possible in a JSON body) folds to nothing: no filter, no error.
    assert len(engine.list_jobs(text="\ud800")) == 2


def test_list_sorts_newest_first_and_pages_without_overlap(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(3600.0))
    ids = []
    for i in range(5):
        ids.append(engine.create_job("mock", {"url": f"https://h.example/{i}"}).id)
        clock.advance(1)
    newest = engine.list_jobs(order="created_at", descending=True, limit=2)
    after = engine.list_jobs(order="created_at", descending=True, limit=2, offset=2)
    assert [j.id for j in newest + after] == ids[::-1][:4]
    with pytest.raises(ValidationError) as error:
        engine.list_jobs(order="payload")
    assert error.value.field == "order"


def test_job_counts_by_provider_and_status(make_engine: MakeEngine, clock: FakeClock) -> None:
    mock = MockProvider(0.0)
    engine = make_engine(mock)
    done = engine.create_job("mock", {"url": "https://h.example/a"})
    assert _finish(engine, clock, done.id) is JobStatus.COMPLETED
    # A refused submission, not a cancel: at step 0 a cancel raced the job's completion
    # (CI once saw COMPLETED -> CANCELLED refused).
    mock.inject("fatal", op="start_job")
    failed = engine.create_job("mock", {"url": "https://h.example/b"})
    assert _finish(engine, clock, failed.id) is JobStatus.FAILED
    assert engine.job_counts() == {("mock", "completed"): 1, ("mock", "failed"): 1}


def test_delete_removes_finished_jobs_and_keeps_live_ones(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(3600.0))
    live = engine.create_job("mock", {"url": "https://h.example/live"})
    # Cancelled once submitted: a cancel while the submission was on its way owes a
    # lookup of what landed, and the job is kept until it ran (test_engine_deletes).
    doomed = engine.create_job("mock", {"url": "https://h.example/c"})
    advance_until(clock, lambda: engine.get_job(doomed.id).remote_id is not None, step=0)
    cancelled = engine.cancel_job(doomed.id)
    answer = engine.delete_jobs([cancelled.id, live.id, "no-such-job", cancelled.id])
    assert set(answer) == {cancelled.id, live.id, "no-such-job"}
    assert answer[cancelled.id] is None
    assert isinstance(answer[live.id], InvalidTransition)
    assert isinstance(answer["no-such-job"], JobNotFound)
    with pytest.raises(JobNotFound):
        engine.get_job(cancelled.id)
    with pytest.raises(JobNotFound):
        engine.retry_job(cancelled.id)
    assert engine.get_job(live.id).status is not JobStatus.CANCELLED
    with pytest.raises(InvalidTransition):
        engine.delete_job(live.id)
    assert engine.count_jobs() == 1
    assert engine.delete_jobs([]) == {}


def test_a_job_retried_just_before_its_delete_is_kept(make_engine: MakeEngine) -> None:
    engine = make_engine(MockProvider(3600.0))
    job = engine.cancel_job(engine.create_job("mock", {"url": "https://h.example/r"}).id)
    again = engine.retry_job(job.id)
    assert again.status is JobStatus.QUEUED
    assert isinstance(engine.delete_jobs([job.id])[job.id], InvalidTransition)
    assert engine.get_job(job.id).attempt == 2


def test_telemetry_counts_requests_rate_limits_commits(tmp_path: Path) -> None:
    clock = FakeClock()
    with FakeRealDebrid(clock=clock, step_seconds=1.0) as fake:
        fake.fail_next(None, "too_many_requests", count=2, headers={"Retry-After": "2"})
        config = EngineConfig(
            database=tmp_path / "jobs.db",
            clock=clock,
            stall_timeouts={},
            retry=RetryPolicy(max_retries=30, initial_delay=1.0, max_delay=5.0),
            providers={"realdebrid": {**fake.provider_options(), "poll_interval": 2.0}},
        )
        with Engine(config) as engine:
            jobs = engine.create_jobs(
                "realdebrid",
                [{"magnet": f"magnet:?xt=urn:btih:{i + 0xABC000:040x}"} for i in range(3)],
            )
            with ClockDriver(clock, step=2.0):
                for job in jobs:
                    assert engine.wait(job.id, timeout=60).status is JobStatus.COMPLETED
            seen = engine.telemetry()
    assert fake.status_counts[429] > 0
    assert seen.rate_limited["realdebrid"] == fake.status_counts[429]
    assert seen.requests[("realdebrid", "429")] == fake.status_counts[429]
    answered = sum(n for (name, _), n in seen.requests.items() if name == "realdebrid")
    assert answered == fake.stats()["counts"]["total"]
    assert seen.commits >= 3
    assert seen.commit_seconds_buckets[max(seen.commit_seconds_buckets)] == seen.commits
    assert seen.commit_seconds_sum > 0


def test_telemetry_counts_downloaded_bytes(make_engine: MakeEngine, clock: FakeClock,
                                           tmp_path: Path) -> None:
    engine = make_engine(MockProvider(0.0))
    job = engine.create_job(
        "mock", {"url": "https://h.example/file.bin", "download_dir": str(tmp_path / "dl")}
    )
    assert _finish(engine, clock, job.id) is JobStatus.COMPLETED
    size = sum(f.size or 0 for f in engine.get_job(job.id).files if f.selected)
    assert size > 0
    assert engine.telemetry().bytes_downloaded == {"mock": size}


def test_telemetry_counts_calls_held_for_a_budget(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    engine = make_engine(MockProvider(0.0, requests_per_second=0.25, burst=1))
    jobs = engine.create_jobs("mock", [{"url": f"https://h.example/{i}"} for i in range(3)])
    with ClockDriver(clock, step=1.0):
        for job in jobs:
            assert engine.wait(job.id, timeout=30).status is JobStatus.COMPLETED
    waits = engine.telemetry().budget_waits
    assert set(waits) == {("mock", "default")}
    assert waits[("mock", "default")] >= 2
