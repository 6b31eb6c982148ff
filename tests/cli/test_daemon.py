"""Where commands run: a daemon that answers (over HTTP), else the database, else exit 3."""

from __future__ import annotations

import json

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
