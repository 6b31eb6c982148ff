"""The job commands against the engine opened on the database (no daemon answers)."""

from __future__ import annotations

import json

from cli_helpers import Cli

URL = "https://example.com/files/a.zip"
MAGNET = "magnet:?xt=urn:btih:dd8255ecdc7ca55fb0bbf81323d87062db1f6d1c&dn=Sintel"


def test_add_wait_json_streams_job_lines_ending_in_completed(cli: Cli) -> None:
    done = cli.run("add", URL, "--wait", "--json", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) >= 2
    assert lines[0]["job"]["status"] == "queued"
    assert lines[-1]["job"]["status"] == "completed"
    assert {line["job"]["id"] for line in lines} == {lines[0]["job"]["id"]}
    file = lines[-1]["job"]["files"][0]
    assert file["verified"] and (cli.downloads / "a.zip").stat().st_size == file["size"]


def test_add_several_sources_makes_one_job_each_and_list_shows_them_newest_first(
    cli: Cli,
) -> None:
    added = cli.json("add", URL, MAGNET, "--select", "*.mkv", "--largest-only")["jobs"]
    assert [job["status"] for job in added] == ["queued", "queued"]
    assert added[1]["payload"]["select"] == {
        "ids": [], "globs": ["*.mkv"], "min_size": 0, "largest_only": True}
    assert added[0]["payload"]["download_dir"] == str(cli.downloads)
    listed = cli.json("list")
    assert listed["total"] == 2
    assert {job["id"] for job in listed["jobs"]} == {job["id"] for job in added}
    found = cli.json("list", "--search", "Sintel")
    assert [job["id"] for job in found["jobs"]] == [added[1]["id"]]
    assert cli.json("list", "--provider", "nobody")["total"] == 0


def test_a_job_that_fails_exits_1_with_wait(cli: Cli) -> None:
    blocker = cli.dir / "a-file"
    blocker.write_text("not a directory")
    done = cli.run("add", URL, "--download-dir", str(blocker / "sub"), "--wait", "--json")
    assert done.returncode == 1, done.stderr
    last = json.loads(done.stdout.splitlines()[-1])["job"]
    assert last["status"] == "failed" and last["error"]["code"]


def test_an_invalid_magnet_is_bad_input_naming_the_field(cli: Cli) -> None:
    error = cli.error("add", "magnet:?xt=urn:btih:nothex", expect=2)
    assert error["code"] == "validation" and error["field"] == "magnet"
    # Several sources: the field says which one.
    error = cli.error("add", URL, "magnet:?dn=x", expect=2)
    assert error["field"] == "payloads[1].magnet"
    human = cli.run("add", "magnet:?xt=urn:btih:nothex")
    assert human.returncode == 2 and "magnet" in human.stderr
    assert cli.json("list")["total"] == 0


def test_bad_usage_and_unknown_names_have_their_exit_codes(cli: Cli) -> None:
    assert cli.run("frobnicate").returncode == 2
    assert cli.error("add", "no-such.torrent", expect=2)["field"] == "torrent"
    assert cli.error("list", "--status", "bogus", expect=2)["field"] == "status"
    assert cli.error("status", "0" * 32, expect=4)["code"] == "not_found"
    assert cli.error("add", URL, "--provider", "nobody", expect=4)["code"] == "unknown_provider"


def test_status_cancel_retry_and_clear(cli: Cli) -> None:
    done = cli.run("add", URL, "--wait", "--json")
    job_id = json.loads(done.stdout.splitlines()[-1])["job"]["id"]
    assert cli.json("status", job_id)["job"]["status"] == "completed"
    error = cli.error("cancel", job_id, expect=5)
    assert error["code"] == "invalid_transition"
    assert cli.error("retry", job_id, expect=5)["code"] == "invalid_transition"
    # Several ids: one result each, the exit code of the first failure.
    results = cli.json("cancel", job_id, "f" * 32, expect=5)["results"]
    assert results[job_id]["ok"] is False and results["f" * 32]["error"]["code"] == "not_found"
    assert cli.json("clear")["deleted"] == 1
    assert cli.error("status", job_id, expect=4)["code"] == "not_found"


def test_an_unfinished_job_is_cancelled_then_retried(cli: Cli) -> None:
    cli.providers["mock"]["step_seconds"] = 3600
    cli.write_config()
    job_id = cli.json("add", URL)["jobs"][0]["id"]
    assert cli.json("cancel", job_id)["job"]["status"] == "cancelled"
    retried = cli.json("retry", job_id)["job"]
    assert retried["status"] == "queued" and retried["attempt"] == 2
    assert cli.error("retry", job_id, expect=5)["code"] == "invalid_transition"


def test_providers_list_and_test(cli: Cli) -> None:
    providers = cli.json("providers", "list")["providers"]
    assert [p["name"] for p in providers] == ["mock"] and providers[0]["state"] == "ok"
    result = cli.json("providers", "test", "mock")["result"]
    assert result["ok"] is True and result["provider"] == "mock"
    assert cli.error("providers", "test", "nobody", expect=4)["code"] == "unknown_provider"
    human = cli.run("providers", "test", "mock")
    assert human.returncode == 0 and "mock" in human.stdout


def test_human_output_of_add_wait_list_and_status(cli: Cli) -> None:
    done = cli.run("add", URL, "--wait")
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout and str(cli.downloads / "a.zip") in done.stdout
    listed = cli.run("list")
    assert listed.returncode == 0 and "completed" in listed.stdout and "1 of 1 job" in listed.stdout


def test_help_documents_the_exit_codes_and_config_show_masks_nothing_it_should_not(
    cli: Cli,
) -> None:
    helped = cli.run("--help")
    assert helped.returncode == 0
    for line in ("0  done", "1  a job FAILED", "2  bad input", "3  the daemon", "4  not found",
                 "5  conflict"):
        assert line in helped.stdout
    shown = cli.json("config", "show")
    assert shown["database"] == {"value": str(cli.dir / "jobs.db"), "source": str(cli.config)}
    assert cli.run("config", "show").returncode == 0


def test_a_bad_config_is_exit_2_naming_the_key(cli: Cli) -> None:
    cli.config.write_text("[api]\nport = 'x'\n")
    error = cli.error("list", expect=2)
    assert error["code"] == "config" and "api.port" in error["message"]


def test_a_torrent_file_is_sent_as_its_bytes(cli: Cli) -> None:
    import base64  # noqa: PLC0415

    from providers._torrent import bencode  # noqa: PLC0415

    data = bencode({b"info": {b"name": b"demo.mkv", b"length": 123456,
                              b"piece length": 16384, b"pieces": b"\x00" * 20}})
    torrent = cli.dir / "demo.torrent"
    torrent.write_bytes(data)
    done = cli.run("add", str(torrent), "--wait", "--json")
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.splitlines()[-1])["job"]
    assert last["status"] == "completed"
    assert base64.b64decode(last["payload"]["torrent"]) == data
