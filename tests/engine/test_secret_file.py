"""The engine's secrets file: parsed once, re-read when another process rewrites it, 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import engine._secrets
from engine._secrets import FileSecretStore
from engine.testing.realdebrid import FakeRealDebrid
from providers import FakeClock, ProviderContext
from providers.realdebrid import RealDebridProvider


class Reads:
    """Counts the stats and parses of one file."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.stats = 0
        self.parses = 0
        real_stat, real_parse = os.stat, engine._secrets._parse

        def counting_stat(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            if os.fspath(target) == os.fspath(path):
                self.stats += 1
            return real_stat(target, *args, **kwargs)

        def counting_parse(raw: bytes) -> dict[str, str]:
            self.parses += 1
            return real_parse(raw)

        monkeypatch.setattr(os, "stat", counting_stat)
        monkeypatch.setattr(engine._secrets, "_parse", counting_parse)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "secrets.json"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, path: Path) -> Reads:
    return Reads(monkeypatch, path)


def test_reads_stat_the_file_and_parse_it_only_when_it_changed(
    path: Path, reads: Reads
) -> None:
    store = FileSecretStore(path)
    store.set("a", "1")
    assert reads.parses == 0  # its own write is known without reading it back
    stats = reads.stats
    for _ in range(10):
        assert store.get("a") == "1"
    assert (reads.stats - stats, reads.parses) == (10, 0)
    other = FileSecretStore(path)  # another process
    other.update({"a": "2", "b": "3"})
    assert store.get("a") == "2" and store.snapshot() == {"a": "2", "b": "3"}
    assert reads.parses == 2  # other's read before its write, then ours of its write


def test_an_in_place_rewrite_of_the_same_size_is_seen(path: Path) -> None:
    store = FileSecretStore(path)
    store.set("a", "1")
    assert store.get("a") == "1"
    before = path.stat()
    path.write_text('{"a": "9"}')  # same inode, same size: only the mtime tells
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1))
    assert store.get("a") == "9"


def test_writes_replace_the_file_atomically_readable_by_the_owner_only(path: Path) -> None:
    path.write_text('{"old": "x"}')
    path.chmod(0o644)
    store = FileSecretStore(path)
    store.update({"a": "1", "old": None})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secrets.json"]  # no temporary left
    assert FileSecretStore(path).snapshot() == {"a": "1"}


def test_a_failed_write_leaves_the_file_and_no_temporary(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSecretStore(path)
    store.set("a", "1")

    def broken(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        store.set("a", "2")
    assert [p.name for p in path.parent.iterdir()] == ["secrets.json"]
    assert FileSecretStore(path).get("a") == "1"


@pytest.mark.parametrize("content", [b"", b"[1, 2]", b"{not json", b"[" * 100_000, b"\xff\xfe"])
def test_a_file_that_is_not_a_json_object_reads_as_empty(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    assert FileSecretStore(path).snapshot() == {}


def test_no_write_when_nothing_changes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileSecretStore(path)
    store.set("a", "1")
    writes: list[object] = []
    real: Callable[..., None] = store._write
    monkeypatch.setattr(store, "_write", lambda data: (writes.append(data), real(data)))
    store.update({"a": "1", "b": None})
    store.delete("missing")
    assert writes == []


@pytest.fixture
def fake() -> Iterator[FakeRealDebrid]:
    with FakeRealDebrid(clock=FakeClock()) as server:
        yield server


def test_a_provider_stats_the_file_once_a_request_and_sees_an_outside_login(
    path: Path, reads: Reads, fake: FakeRealDebrid
) -> None:
    """OAuth mode read and parsed the whole file 9 times a request."""
    provider = RealDebridProvider(base_url=fake.rest_url, oauth_base_url=fake.oauth_url)
    provider.bind(ProviderContext(clock=fake.clock, secrets=FileSecretStore(path)))
    try:
        device = provider.start_device_auth()
        fake.approve_device(device.user_code)
        assert provider.poll_device_auth_once(device)
        stats, parses, sent = reads.stats, reads.parses, fake.counts["total"]
        for _ in range(5):
            assert provider.test_connection().ok
        assert fake.counts["total"] - sent == 5
        assert (reads.stats - stats, reads.parses - parses) == (5, 0)
        # Another process logs in with a private token; the OAuth tokens stop working.
        fake.tokens.add("tok-private-2")
        FileSecretStore(path).update({"realdebrid.api_token": "tok-private-2"})
        fake.oauth.access_tokens.clear()
        assert provider.test_connection().ok  # the very next request sends the new token
    finally:
        provider.close()
