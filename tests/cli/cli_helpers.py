"""Run the real ``debrid`` entry point in a subprocess, on a config in ``tmp_path``."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: A generous bound for one command: each starts Python and (often) an engine.
TIMEOUT = 60.0


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Cli:
    """The command, run as ``python -m engine.cli`` with ``DEBRID_CONFIG`` at ``config``."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.config = tmp_path / "conf" / "config.toml"
        self.config.parent.mkdir()
        self.downloads = tmp_path / "downloads"
        self.providers: dict[str, dict[str, Any]] = {"mock": {"step_seconds": 0}}
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DEBRID_CONFIG": str(self.config),
            "DEBRID_DAEMON_URL": f"http://127.0.0.1:{closed_port()}",
            "COLUMNS": "200",
        }
        for name in ("DEBRID_DATABASE", "DEBRID_API_TOKEN", "DEBRID_TORBOX_API_KEY",
                     "DEBRID_REALDEBRID_API_TOKEN", "DEBRID_API_PORT", "DEBRID_API_HOST"):
            self.env.pop(name, None)
        self.write_config()

    @property
    def secrets(self) -> Path:
        """The keys file beside the config."""
        return self.config.parent / "secrets.json"

    def write_config(self) -> None:
        """config.toml: the database and downloads in tmp_path, ``self.providers``."""
        lines = [
            f'database = "{self.dir / "jobs.db"}"',
            f'download_dir = "{self.downloads}"',
            "[api]",
            'host = "127.0.0.1"',
            f"port = {closed_port()}",
        ]
        for name, options in self.providers.items():
            lines.append(f"[providers.{name}]")
            lines.extend(f"{key} = {json.dumps(value)}" for key, value in options.items())
        self.config.write_text("\n".join(lines) + "\n")

    def argv(self, *args: str) -> list[str]:
        """The command line of ``debrid args...``."""
        return [sys.executable, "-m", "engine.cli", *args]

    def run(self, *args: str, stdin: str | None = None,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``debrid args...`` to its end."""
        return subprocess.run(
            self.argv(*args), input=stdin if stdin is not None else "",
            capture_output=True, text=True, timeout=TIMEOUT,
            env={**self.env, **(env or {})}, cwd=self.dir, check=False,
        )

    def json(self, *args: str, expect: int = 0) -> Any:
        """``debrid --json args...``: its one JSON document, after checking the exit code."""
        done = self.run("--json", *args)
        assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
        return json.loads(done.stdout)

    def error(self, *args: str, expect: int) -> dict[str, Any]:
        """``debrid --json args...`` that fails: its ``{"error"}`` on stderr."""
        done = self.run("--json", *args)
        assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
        assert done.stdout == ""
        error: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])["error"]
        return error

    def start(self, *args: str) -> Process:
        """``debrid args...`` in the background, its stdout read line by line."""
        child = subprocess.Popen(
            self.argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=self.env, cwd=self.dir,
        )
        return Process(child)


class Process:
    """A running command whose output lines arrive on queues (read with timeouts)."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.child = child
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        self.err_lines: queue.Queue[str | None] = queue.Queue()
        assert child.stdout is not None and child.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(child.stdout,), daemon=True),
            threading.Thread(target=self._drain, args=(child.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.err.append(line)
            self.err_lines.put(line)
        self.err_lines.put(None)

    def line(self, timeout: float = TIMEOUT) -> str:
        """The next stdout line (fails the test after ``timeout`` or at the end)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output line within {timeout}s; stderr: {''.join(self.err)}")
        if line is None:
            pytest.fail(f"the command ended (rc {self.child.wait()}); stderr: "
                        f"{''.join(self.err)}")
        return line

    def err_line(self, timeout: float = TIMEOUT) -> str:
        """The next stderr line (fails the test after ``timeout`` or at the end)."""
        try:
            line = self.err_lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no stderr line within {timeout}s")
        if line is None:
            pytest.fail(f"the command ended (rc {self.child.wait()}) with stderr "
                        f"{''.join(self.err)}")
        return line

    def rest(self) -> list[str]:
        """Every remaining stdout line, once the command has ended."""
        lines = []
        while (line := self.lines.get(timeout=TIMEOUT)) is not None:
            lines.append(line)
        return lines

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Its exit code, after the output threads are done."""
        code = self.child.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout)
        for stream in (self.child.stdout, self.child.stderr):
            if stream is not None:
                stream.close()
        return code

    def stop(self) -> int:
        """SIGTERM, then its exit code."""
        if self.child.poll() is None:
            self.child.terminate()
        try:
            return self.wait(30)
        except subprocess.TimeoutExpired:
            self.child.kill()
            raise
