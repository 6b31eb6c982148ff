"""``debrid auth``: keys checked with the (fake) service, stored 0600, never printed."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator

import pytest
from cli_helpers import Cli

from engine.testing import FakeRealDebrid, FakeTorBox


@pytest.fixture
def realdebrid(cli: Cli) -> Iterator[FakeRealDebrid]:
    # device_interval=1: the command polls every second (Real-Debrid's floor).
    fake = FakeRealDebrid(device_interval=1).start()
    options = fake.provider_options()
    cli.providers["realdebrid"] = {"base_url": options["base_url"],
                                   "oauth_base_url": options["oauth_base_url"]}
    cli.write_config()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def torbox(cli: Cli) -> Iterator[FakeTorBox]:
    fake = FakeTorBox(api_key="tb-good-key-1234").start()
    cli.providers["torbox"] = {"base_url": fake.url}
    cli.write_config()
    try:
        yield fake
    finally:
        fake.stop()


def _keys(cli: Cli) -> dict[str, str]:
    assert stat.S_IMODE(cli.secrets.stat().st_mode) == 0o600
    keys: dict[str, str] = json.loads(cli.secrets.read_text())
    return keys


def test_realdebrid_device_flow_stores_the_tokens_and_never_prints_them(
    cli: Cli, realdebrid: FakeRealDebrid
) -> None:
    child = cli.start("auth", "realdebrid", "--json")
    try:
        device = json.loads(child.line())
        assert device["verification_url"] and device["interval"] == 1
        # Approved only once the command says it is waiting (its progress line).
        assert "waiting for approval" in child.err_line()
        assert realdebrid.approve_device(device["user_code"])
        assert child.wait() == 0, "".join(child.err)
        result = json.loads(child.rest()[-1])
    finally:
        child.stop()
    assert result["ok"] is True and result["provider"] == "realdebrid"
    keys = _keys(cli)
    assert {"realdebrid.access_token", "realdebrid.refresh_token", "realdebrid.client_id",
            "realdebrid.client_secret"} <= set(keys)
    printed = json.dumps(device) + json.dumps(result) + "".join(child.err)
    for name, value in keys.items():
        if name != "realdebrid.expires_at":
            assert value not in printed, name


def test_realdebrid_token_is_stored_only_once_accepted(
    cli: Cli, realdebrid: FakeRealDebrid
) -> None:
    refused = cli.run("auth", "realdebrid", "--token", "not-a-real-token")
    assert refused.returncode == 1
    assert "not-a-real-token" not in refused.stdout + refused.stderr
    assert not cli.secrets.exists()
    accepted = cli.run("auth", "realdebrid", "--token", "fake-rd-token")
    assert accepted.returncode == 0, accepted.stderr
    assert "fake-rd-token" not in accepted.stdout + accepted.stderr
    assert _keys(cli) == {"realdebrid.api_token": "fake-rd-token"}


def test_torbox_key_is_tested_then_stored_and_a_refused_one_is_not(
    cli: Cli, torbox: FakeTorBox
) -> None:
    refused = cli.run("--json", "auth", "torbox", "--key", "tb-wrong-key-9999")
    assert refused.returncode == 1
    assert json.loads(refused.stderr.strip().splitlines()[-1])["error"]["code"] == "refused"
    assert "tb-wrong-key-9999" not in refused.stdout + refused.stderr
    assert not cli.secrets.exists()

    accepted = cli.run("auth", "torbox", "--key", "tb-good-key-1234")
    assert accepted.returncode == 0, accepted.stderr
    assert "tb-good-key-1234" not in accepted.stdout + accepted.stderr
    assert _keys(cli) == {"torbox.api_key": "tb-good-key-1234"}
    # The directory existed already (the test made it): its mode is the user's, the file 0600.
    shown = cli.run("config", "show")
    assert "tb-good-key-1234" not in shown.stdout + shown.stderr


def test_torbox_key_can_come_from_stdin(cli: Cli, torbox: FakeTorBox) -> None:
    done = cli.run("auth", "torbox", stdin="tb-good-key-1234\n")
    assert done.returncode == 0, done.stderr
    assert "tb-good-key-1234" not in done.stdout + done.stderr
    assert _keys(cli) == {"torbox.api_key": "tb-good-key-1234"}
