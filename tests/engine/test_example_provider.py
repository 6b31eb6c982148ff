"""The example provider package, installed with pip, found by its entry point, run by an Engine.

pip installs ``examples/debrid-example-provider`` (a copy, so no build files land in
the tree) into a temporary ``--target``; a child Python with that directory on
PYTHONPATH then runs a job end to end through an ``Engine`` whose config only
names ``example``: nothing registers it but its entry point. The same package is
then driven through the daemon: ``debrid serve`` with a config file naming it, a
job posted to the control API and followed over its event stream to COMPLETED.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "debrid-example-provider"

CHILD = textwrap.dedent(
    """
    import json, sys
    from engine import Engine, EngineConfig, JobStatus
    from providers import default_registry

    registry = default_registry()
    listed = "example" in registry.names()
    found_before_import = listed and "debrid_example_provider" not in sys.modules
    config = EngineConfig(
        database=sys.argv[1],
        providers={"example": {"poll_interval": 0.05}, "mock": {"enabled": False}},
    )
    with Engine(config) as engine:
        connection = engine.test_connection("example")
        done = engine.wait(engine.create_job("example", {"url": "https://host/movie.mkv"}).id, 30)
        failed = engine.wait(engine.create_job("example", {"url": "https://host/fail.bin"}).id, 30)
        print(json.dumps({
            "found_before_import": found_before_import,
            "connection_ok": connection.ok,
            "done": done.to_dict(),
            "failed": failed.to_dict(),
            "provider_class": type(registry.create("example", {})).__module__,
        }))
    """
)


def _install(target: Path, source: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target)]
    # Offline, setuptools in the venv builds it; setuptools < 70.1 needs ``wheel`` for that.
    if importlib.util.find_spec("wheel") is not None:
        command.append("--no-build-isolation")
    result = subprocess.run(
        [*command, str(source)], capture_output=True, text=True, timeout=240, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"pip install failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed once for this module: the ``--target`` directory."""
    base = tmp_path_factory.mktemp("example")
    source = base / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = base / "site"
    _install(target, source)
    assert (target / "debrid_example_provider").is_dir()
    return target


def _env(target: Path, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(target), root, env.get("PYTHONPATH", "")) if p
    )
    env["DEBRID_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.mark.slow
def test_the_installed_example_runs_a_job_to_completed_through_the_engine(
    installed: Path, tmp_path: Path
) -> None:
    env = _env(installed, tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "jobs.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["found_before_import"] is True  # listed from metadata, imported lazily
    assert report["connection_ok"] is True
    assert report["provider_class"] == "debrid_example_provider.provider"
    done, failed = report["done"], report["failed"]
    assert (done["provider"], done["status"]) == ("example", "completed")
    assert [f["name"] for f in done["files"]] == ["movie.mkv"]
    assert done["files"][0]["link"].startswith("http://127.0.0.1:")
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "DEAD_SOURCE"


@pytest.mark.slow
def test_the_installed_example_runs_a_job_through_the_daemon(
    installed: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"database = {json.dumps(str(tmp_path / 'jobs.db'))}\n"
        f"download_dir = {json.dumps(str(tmp_path / 'dl'))}\n"
        "[api]\nport = 0\n"
        "[providers.example]\npoll_interval = 0.05\n",
        encoding="utf-8",
    )
    env = {**_env(installed, tmp_path), "DEBRID_CONFIG": str(config),
           "DEBRID_API_TOKEN": "example-test-token"}
    log = tmp_path / "daemon.log"
    with log.open("w") as err, subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve"],
        stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=tmp_path,
    ) as daemon:
        try:
            job = _one_job_through(daemon, log)
        finally:
            daemon.terminate()
            assert daemon.wait(timeout=60) == 0, log.read_text()
    assert job["provider"] == "example"
    assert job["status"] == "completed"
    assert [f["name"] for f in job["files"]] == ["a.mkv"]


def _one_job_through(daemon: subprocess.Popen[str], log: Path) -> dict[str, object]:
    """Post one job to the daemon and follow its event stream until it completes."""
    assert daemon.stdout is not None
    line = daemon.stdout.readline()  # the JSON line, once the daemon listens
    assert line, log.read_text()
    url = json.loads(line)["url"]
    auth = {"Authorization": "Bearer example-test-token"}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
        names = [p["name"] for p in client.get("/api/providers").json()["providers"]]
        assert names == ["example"]
        with client.stream("GET", "/api/events") as events:
            created = client.post(
                "/api/jobs", json={"provider": "example", "payload": {"url": "https://host/a.mkv"}}
            )
            assert created.status_code == 201, created.text
            job_id = created.json()["job"]["id"]
            for raw in events.iter_lines():
                if raw.startswith("data:"):
                    event = json.loads(raw[5:])
                    if event["job"]["id"] == job_id and event["job"]["status"] == "completed":
                        break
        job: dict[str, object] = client.get(f"/api/jobs/{job_id}").json()["job"]
    return job
