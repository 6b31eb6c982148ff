"""One range streamed into a file: checkpoints only after a sync, off the reader's thread."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from actors.transfer import Abort, FetchOutcome, fetch_range, open_part
from providers._fileserve import FileServer, ServedFile

KiB = 1024


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def _fetch(server: FileServer, tmp_path: Path, file: ServedFile,
           checkpoints: list[tuple[int, int]]) -> tuple[object, bytes]:
    url = server.add(file)
    part = tmp_path / "f.part"
    fd = open_part(part, file.size)
    synced = [0]
    real = os.fdatasync

    def counting(descriptor: int) -> None:
        real(descriptor)
        synced[0] += 1

    try:
        with httpx.Client(trust_env=False) as client:
            os.fdatasync = counting  # type: ignore[assignment]
            try:
                result = fetch_range(
                    client, url, 0, file.size, fd=fd, validator=None, ranged=False,
                    on_data=lambda offset, n: None, bandwidth_take=lambda n: True,
                    checkpoint=lambda upto: checkpoints.append((upto, synced[0])),
                    checkpoint_bytes=64 * KiB, abort=Abort(), chunk_size=None,
                )
            finally:
                os.fdatasync = real  # type: ignore[assignment]
    finally:
        os.close(fd)
    return result, part.read_bytes()


def test_every_checkpoint_follows_a_sync_and_they_come_in_order(
    server: FileServer, tmp_path: Path
) -> None:
    file = ServedFile("f", 1024 * KiB + 5, "fetch")
    checkpoints: list[tuple[int, int]] = []
    result, data = _fetch(server, tmp_path, file, checkpoints)
    assert result.outcome is FetchOutcome.DONE  # type: ignore[attr-defined]
    assert data == file.content()
    offsets = [upto for upto, _ in checkpoints]
    assert offsets == sorted(offsets) and offsets[-1] == file.size
    # Each report comes after a sync of its own (syncs seen so far >= reports so far).
    for number, (_, syncs) in enumerate(checkpoints, start=1):
        assert syncs >= number
    assert len(checkpoints) >= 2  # the syncer reported while the body still came
    assert not [t for t in threading.enumerate() if t.name == "sync"]  # it ended


def test_a_sync_error_on_the_syncer_is_a_write_error(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    file = ServedFile("f", 1024 * KiB, "fetch-eio")
    url = server.add(file)
    part = tmp_path / "f.part"
    fd = open_part(part, file.size)
    reported: list[int] = []
    monkeypatch.setattr(os, "fdatasync", broken)
    try:
        with httpx.Client(trust_env=False) as client:
            result = fetch_range(
                client, url, 0, file.size, fd=fd, validator=None, ranged=False,
                on_data=lambda offset, n: None, bandwidth_take=lambda n: True,
                checkpoint=reported.append, checkpoint_bytes=64 * KiB, abort=Abort(),
                chunk_size=None,
            )
    finally:
        os.close(fd)
    assert result.outcome is FetchOutcome.WRITE_ERROR and result.errno == errno.EIO
    assert reported == []  # nothing reported that was not synced
