"""``debrid fake-server``: a fake provider from the command line, usable by the engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from engine import Engine, EngineConfig, JobStatus
from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["realdebrid", "torbox"])
def test_fake_server_command_serves_on_loopback_and_the_engine_completes_a_job(
    kind: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "fake-server", kind, "--port", "0", "--step", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    ) as child:
        try:
            _drive(child, kind, tmp_path)
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=20)
    assert child.returncode == 0


def _drive(child: subprocess.Popen[str], kind: str, tmp_path: Path) -> None:
    assert child.stdout is not None
    first = json.loads(child.stdout.readline())
    assert first["url"].startswith("http://127.0.0.1:")
    stats = httpx.get(first["url"] + "/__fake__/stats", timeout=10).json()
    assert "counts" in stats
    config = EngineConfig(
        database=tmp_path / "jobs.db",
        providers={kind: {**first["options"], "poll_interval": 0.2}},
    )
    with Engine(config) as engine:
        job = engine.create_job(kind, {"magnet": "magnet:?xt=urn:btih:" + "c" * 40})
        done = engine.wait(job.id, timeout=60)
    assert done.status is JobStatus.COMPLETED, done.error


def test_a_port_out_of_range_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fake-server", "torbox", "--port", "70000"]) == 2
    assert "--port: 70000 is not a TCP port" in capsys.readouterr().err
