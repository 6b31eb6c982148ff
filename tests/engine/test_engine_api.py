"""The public surface: names, lifecycle without leaks, the README example, the demo, logs."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from engine_helpers import MakeEngine, magnet

import engine as engine_pkg
import providers as providers_pkg
from engine import Engine, EngineConfig, EngineNotRunning, JobStatus
from engine._logging import configure_logging
from engine.testing import ClockDriver
from providers import FakeClock, MockProvider, ProviderRegistry

ROOT = Path(__file__).resolve().parents[2]


def test_engine_public_names_change_only_on_purpose() -> None:
    assert sorted(engine_pkg.__all__) == [
        "DuplicateProvider",
        "Engine",
        "EngineConfig",
        "EngineError",
        "EngineNotRunning",
        "FileSelection",
        "InvalidTransition",
        "Job",
        "JobErrorInfo",
        "JobEvent",
        "JobFile",
        "JobNotFound",
        "JobStatus",
        "ProviderError",
        "StartJobPayload",
        "StoreError",
        "TestConnectionResponse",
        "UnknownProvider",
        "ValidationError",
        "WaitTimeout",
    ]
    for name in engine_pkg.__all__:
        assert getattr(engine_pkg, name) is not None


def test_every_error_is_an_engine_error() -> None:
    for name in (
        "ValidationError",
        "InvalidTransition",
        "ProviderError",
        "JobNotFound",
        "UnknownProvider",
        "StoreError",
        "EngineNotRunning",
        "WaitTimeout",
    ):
        assert issubclass(getattr(engine_pkg, name), engine_pkg.EngineError)


def test_the_core_names_import_from_the_package_roots() -> None:
    for name in (
        "JobStatus",
        "Job",
        "JobFile",
        "StartJobPayload",
        "ProviderError",
        "InvalidTransition",
        "ValidationError",
        "RateLimiter",
        "next_delay",
        "FakeClock",
        "MockProvider",
        "ProviderRegistry",
        "parse_start_job_payload",
    ):
        assert hasattr(providers_pkg, name)
    from persistence import JobStore  # noqa: F401, PLC0415


def test_threads_return_to_their_count_after_stop(tmp_path: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    clock = FakeClock()
    registry = ProviderRegistry()
    registry.register_provider("mock", MockProvider(1.0))
    engine = Engine(
        EngineConfig(
            database=tmp_path / "jobs.db",
            registry=registry,
            clock=clock,
            providers={"mock": {"poll_interval": 0.5}},
        )
    )
    engine.start()
    jobs = [engine.create_job("mock", magnet(i)) for i in range(20)]
    with ClockDriver(clock, step=0.5):
        engine.wait(jobs[0].id, timeout=30, statuses=[JobStatus.DOWNLOADING])
    engine.stop()
    extra = [t for t in threading.enumerate() if t.ident not in before]
    for thread in extra:
        thread.join(5)
    assert [t.name for t in extra if t.is_alive()] == []
    with pytest.raises(EngineNotRunning):
        engine.create_job("mock", magnet(99))


def test_calls_on_a_stopped_engine_say_so(tmp_path: Path) -> None:
    engine = Engine(EngineConfig(database=tmp_path / "x.db"))
    with pytest.raises(EngineNotRunning, match="not started"):
        engine.get_job("x")


def test_default_config_is_sqlite_in_the_data_dir_with_the_two_second_mock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEBRID_DATA_DIR", str(tmp_path / "data"))
    config = EngineConfig()
    assert Path(config.database_target()) == tmp_path / "data" / "jobs.db"
    assert config.providers == {"mock": {"step_seconds": 2.0}}
    with Engine(config) as engine:
        assert engine.provider_names() == ("mock",)
        assert engine.test_connection("mock").details["step_seconds"] == 2.0
    assert (tmp_path / "data" / "jobs.db").exists()


def test_readme_embedding_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- embedding-example -->\s*```python\n(.*?)```", readme, re.S)
    assert match, "README lost its embedding example"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(match.group(1), "README.md", "exec"), namespace)
    assert (tmp_path / "jobs.db").exists()


def test_python_dash_m_engine_runs_the_demo_to_completion(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "engine", "--step", "0", "--database", str(tmp_path / "demo.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "submitted 3 mock jobs" in result.stdout
    assert result.stdout.count(": completed") == 0
    assert result.stdout.count("completed:") == 3
    assert f"database: {tmp_path / 'demo.db'}" in result.stdout


def test_every_log_line_about_a_job_carries_job_id_and_provider(
    make_engine: MakeEngine, clock: FakeClock
) -> None:
    stream = io.StringIO()
    handler = configure_logging("json", "DEBUG", stream)
    try:
        mock = MockProvider(1.0)
        mock.inject("transient", op="start_job")
        engine = make_engine(mock)
        job = engine.create_job("mock", magnet(1))
        with ClockDriver(clock, step=0.25):
            engine.wait(job.id, timeout=30)
    finally:
        for name in ("debrid", "pykka"):
            logging.getLogger(name).removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    about_jobs = [line for line in lines if "job_id" in line]
    assert {line["event"] for line in about_jobs} >= {
        "job_transition",
        "retry_scheduled",
        "job_submitted",
    }
    for line in lines:
        if line["logger"] in ("debrid.actors.job",):
            assert line["job_id"] and line["provider"] == "mock", line


def test_secret_looking_log_fields_are_masked() -> None:
    from providers._log import get_logger  # noqa: PLC0415

    stream = io.StringIO()
    handler = configure_logging("console", "INFO", stream)
    try:
        get_logger("debrid.test").info("auth_refreshed", api_token="s3cr3t-value", user="bob")
    finally:
        logging.getLogger("debrid").removeHandler(handler)
    text = stream.getvalue()
    assert "s3cr3t-value" not in text
    assert "api_token=***" in text and "user=bob" in text


def test_job_ids_are_distinct_random_version_4_uuids() -> None:
    import uuid  # noqa: PLC0415

    from engine._engine import new_job_ids  # noqa: PLC0415

    ids = new_job_ids(5000)
    assert len(set(ids)) == 5000
    for job_id in ids[:200]:
        parsed = uuid.UUID(hex=job_id)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, job_id)
    assert new_job_ids(0) == []


def test_created_jobs_get_uuid_ids(make_engine: MakeEngine) -> None:
    import uuid  # noqa: PLC0415

    engine = make_engine(MockProvider(0.0))
    jobs = engine.create_jobs("mock", [magnet(1), magnet(2)])
    assert all(uuid.UUID(hex=job.id).version == 4 for job in jobs)
    assert jobs[0].id != jobs[1].id
