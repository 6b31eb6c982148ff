"""``run_daemon`` (``debrid serve``) in a process of its own: the JSON line, --demo, SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

SCRIPT = """
import sys
from engine.settings import load_settings
from engine.server import run_daemon
settings = load_settings({"api.port": (0, "--port")})
sys.exit(run_daemon(settings, demo=True, out=sys.stdout, err=sys.stderr))
"""


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    return lines.get(timeout=timeout)


def test_serve_demo_prints_its_urls_serves_three_providers_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    config = tmp_path / "conf" / "config.toml"
    config.parent.mkdir()
    config.write_text(f'download_dir = "{tmp_path / "downloads"}"\n')
    env = {**os.environ, "DEBRID_CONFIG": str(config), "DEBRID_DATA_DIR": str(tmp_path / "data")}
    env.pop("DEBRID_API_TOKEN", None)
    with subprocess.Popen(
        [sys.executable, "-c", SCRIPT], env=env, cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as process:
        _check_the_daemon(process, config, tmp_path)


def _check_the_daemon(process: subprocess.Popen[str], config: Path, tmp_path: Path) -> None:
    try:
        line = _first_line(process, 60)
        assert line, process.stderr.read() if process.stderr else ""
        urls = json.loads(line)
        assert set(urls) == {"url", "login_url", "page_url"}
        assert urls["login_url"].startswith(urls["url"] + "/login?code=")
        assert urls["page_url"] == urls["url"] + "/provider-test"
        with httpx.Client(base_url=urls["url"], timeout=30) as client:
            login = client.get(urls["login_url"].removeprefix(urls["url"]))
            assert login.status_code == 303
            session = login.headers["set-cookie"].split(";")[0]
            providers = client.get("/api/providers", headers={"Cookie": session}).json()
            names = {p["name"] for p in providers["providers"]}
            assert names == {"mock", "realdebrid", "torbox"}
            token = (config.parent / "api-token").read_text().strip()
            health = client.get("/api/health", headers={"Authorization": f"Bearer {token}"})
            assert health.status_code in (200, 503) and health.json()["live"] is True
            # The qBittorrent face is served too; a demo's adds land in its temp folder.
            qbit = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/v2/app/webapiVersion").text == "2.9.3"
            prefs = client.get("/api/v2/app/preferences", headers=qbit).json()
            assert prefs["save_path"].endswith("downloads")
            assert not prefs["save_path"].startswith(str(tmp_path / "downloads"))
        assert not (config.parent / "secrets.json").exists()  # demo keys stay in memory
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        stderr = process.stderr.read() if process.stderr else ""
        assert "/login?code=" in stderr and "Traceback" not in stderr
        assert not (tmp_path / "data").exists() or not list((tmp_path / "data").glob("jobs.db"))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
