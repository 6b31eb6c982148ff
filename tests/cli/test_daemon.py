"""Where commands run: a daemon that answers (over HTTP), else the database, else exit 3."""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading

import httpx
from cli_helpers import Cli, closed_port

URL = "https://example.com/files/a.zip"


def test_commands_go_to_a_running_daemon_over_http(cli: Cli) -> None:
    daemon = cli.start("serve", "--port", "0")
    try:
        started = json.loads(daemon.line())
        url = started["url"]
        assert url.startswith("http://127.0.0.1:")
        # The daemon owns the database: only HTTP can reach these jobs now.
        done = cli.run("--daemon", url, "add", URL, "--wait", "--json", "--timeout", "60")
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert lines[-1]["job"]["status"] == "completed"
        job_id = lines[-1]["job"]["id"]
        listed = cli.json("--daemon", url, "list")
        assert [job["id"] for job in listed["jobs"]] == [job_id] and listed["total"] == 1
        assert cli.json("--daemon", url, "status", job_id)["job"]["status"] == "completed"
        assert cli.error("--daemon", url, "cancel", job_id, expect=5)["code"] == (
            "invalid_transition")
        assert cli.error("--daemon", url, "status", "0" * 32, expect=4)["code"] == "not_found"
        assert cli.error("--daemon", url, "add", "magnet:?xt=x", expect=2)["field"] == "magnet"
        assert cli.json("--daemon", url, "providers", "test", "mock")["result"]["ok"] is True
        # Found through DEBRID_DAEMON_URL too, without --daemon.
        env_listed = cli.run("--json", "list", env={"DEBRID_DAEMON_URL": url})
        assert env_listed.returncode == 0, env_listed.stderr
        assert json.loads(env_listed.stdout)["total"] == 1
        # No daemon where the environment points, and the database is owned: exit 3.
        error = cli.error("list", expect=3)
        assert error["code"] == "database_owned" and "in use" in error["message"]
        assert cli.json("--daemon", url, "clear")["deleted"] == 1
    finally:
        assert daemon.stop() == 0, "".join(daemon.err)


def test_a_daemon_asked_for_that_does_not_answer_is_exit_3(cli: Cli) -> None:
    error = cli.error("--daemon", f"http://127.0.0.1:{closed_port()}", "list", expect=3)
    assert error["code"] == "unreachable"


def test_the_readme_command_serves_a_demo_whose_jobs_complete(cli: Cli) -> None:
    """``debrid serve --demo`` (the README's first command): a job per provider is
    there at once and each reaches COMPLETED against the in-process fakes."""
    cli.config.write_text(f'download_dir = "{cli.downloads}"\n')  # no database: the demo's own
    daemon = cli.start("serve", "--demo", "--port", "0", "--demo-step", "0.05")
    try:
        url = json.loads(daemon.line())["url"]
        token = (cli.config.parent / "api-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
            with client.stream("GET", "/api/events", params={"last_event_id": "0"}) as events:
                jobs = client.get("/api/jobs").json()["jobs"]
                assert sorted(j["provider"] for j in jobs) == ["mock", "realdebrid", "torbox"]
                waiting = {j["id"] for j in jobs if j["status"] != "completed"}
                for raw in events.iter_lines():
                    if waiting and raw.startswith("data:"):
                        job = json.loads(raw[5:]).get("job") or {}  # a reset has none
                        if job.get("status") == "completed":
                            waiting.discard(job["id"])
                    if not waiting:
                        break
            done = client.get("/api/jobs").json()["jobs"]
        assert {j["status"] for j in done} == {"completed"}, done
        downloaded = [j for j in done if j["payload"]["download_dir"]]
        assert sorted(j["provider"] for j in downloaded) == ["mock", "torbox"]
        for job in downloaded:
            assert all(f["verified"] for f in job["files"] if f["selected"])
    finally:
        assert daemon.stop() == 0, "".join(daemon.err)


def test_serve_on_a_port_in_use_is_exit_2_naming_it(cli: Cli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        error = cli.error("serve", "--port", str(port), expect=2)
    assert error["field"] == "api.port" and str(port) in error["message"]


def test_options_a_provider_does_not_take_are_exit_2_naming_it(cli: Cli) -> None:
    cli.providers = {"mock": {"step_seconds": 0, "bogus": 1}}
    cli.write_config()
    error = cli.error("list", expect=2)
    assert error["field"] == "providers.mock" and "bogus" in error["message"]


def test_the_token_is_never_sent_to_something_else_on_the_daemons_port(cli: Cli) -> None:
    """Review finding: whatever answered /api/health on the daemon's port (another
    user's process while the daemon was down) received the bearer token."""
    seen: list[str] = []

    class Impostor(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization") or "")
            body = b'{"proof": "0000"}' if self.path.startswith("/api/proof") else b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        error = cli.error("--daemon", url, "list", expect=3)
    finally:
        server.shutdown()
        server.server_close()
    assert error["code"] == "not_the_daemon"
    assert seen and not any(seen)  # asked, but never with a token


def test_the_daemon_runs_the_configured_completion_command(cli: Cli) -> None:
    out = cli.dir / "done.json"
    copy = "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())"
    cli.write_config()
    command = json.dumps([sys.executable, "-c", copy, str(out)])
    with cli.config.open("a") as config:
        config.write(f"[notify]\non_complete_command = {command}\n")
    daemon = cli.start("serve", "--port", "0", "--log-format", "json")
    try:
        url = json.loads(daemon.line())["url"]
        done = cli.run("--daemon", url, "add", URL, "--wait", "--json", "--timeout", "60")
        assert done.returncode == 0, done.stderr
        job_id = json.loads(done.stdout.splitlines()[-1])["job"]["id"]
        while True:  # the daemon's JSON log says when the notification was delivered
            line = daemon.err_line()
            if line.startswith("{") and json.loads(line).get("event") == "notify_delivered":
                assert json.loads(line)["job_id"] == job_id
                break
        sent = json.loads(out.read_text())
        assert (sent["id"], sent["status"]) == (job_id, "completed")
    finally:
        assert daemon.stop() == 0, "".join(daemon.err)
