"""Checking finished files, reserving space, and the free-space check."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from actors.transfer import Md5Progress, NoSpace, _space, _verify, check_space, open_part, verify


def _data(n: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(n))


def test_an_md5_fed_in_order_equals_the_files_md5(tmp_path: Path) -> None:
    data = _data(300_000)
    progress = Md5Progress(tmp_path / "f.part")
    for offset in range(0, len(data), 65_536):
        progress.feed(offset, data[offset : offset + 65_536])
    assert progress.position == len(data)
    assert progress.hexdigest() == hashlib.md5(data).hexdigest()


def test_bytes_after_a_gap_are_not_fed_and_are_read_back_later(tmp_path: Path) -> None:
    data = _data(200_000)
    path = tmp_path / "f.part"
    path.write_bytes(data)
    progress = Md5Progress(path)
    progress.feed(0, data[:1000])
    progress.feed(5000, data[5000:9000])  # a gap before it: remembered, not hashed yet
    assert progress.position == 1000
    progress.feed(500, data[500:2000])  # overlaps the prefix: only the new tail counts
    assert progress.position == 2000
    progress.catch_up(path, len(data))
    assert progress.hexdigest() == hashlib.md5(data).hexdigest()


def test_a_resume_reads_back_only_the_prefix_on_disk(tmp_path: Path) -> None:
    data = _data(100_000)
    path = tmp_path / "f.part"
    path.write_bytes(data)
    progress = Md5Progress()
    progress.catch_up(path, 40_000)  # (catch_up gives it the path)
    assert progress.position == 40_000
    progress.feed(40_000, data[40_000:])
    assert progress.hexdigest() == hashlib.md5(data).hexdigest()


def test_catch_up_past_the_end_of_the_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(b"abc")
    with pytest.raises(OSError, match="ends at 3"):
        Md5Progress().catch_up(path, 10)


def test_verify_checks_the_size_and_the_md5(tmp_path: Path) -> None:
    data = _data(5000)
    path = tmp_path / "f"
    path.write_bytes(data)
    good = hashlib.md5(data).hexdigest()
    assert verify(path, 5000, None, None).how == "size"
    assert verify(path, 5000, None, None).size_ok
    assert not verify(path, 4999, None, None).size_ok
    checked = verify(path, 5000, good.upper(), None)
    assert (checked.size_ok, checked.md5_ok, checked.how) == (True, True, "size+md5")
    assert verify(path, 5000, "0" * 32, None).md5_ok is False


def test_an_empty_file_verifies(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    checked = verify(path, 0, hashlib.md5(b"").hexdigest(), None)
    assert checked.size_ok and checked.md5_ok


def test_open_part_reserves_the_size_and_keeps_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "f.part"
    path.write_bytes(b"hello")
    fd = open_part(path, 1000)
    try:
        assert os.fstat(fd).st_size == 1000
        assert os.pread(fd, 5, 0) == b"hello"
    finally:
        os.close(fd)
    fd = open_part(path, 3)  # the file shrank on the server: the part follows
    os.close(fd)
    assert path.read_bytes() == b"hel"


def test_a_full_disk_at_reservation_is_enospc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError) as caught:
        open_part(tmp_path / "f.part", 10_000)
    assert caught.value.errno == errno.ENOSPC


def test_a_file_system_without_fallocate_gets_a_sparse_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    fd = open_part(tmp_path / "f.part", 10_000)
    try:
        assert os.fstat(fd).st_size == 10_000
    finally:
        os.close(fd)


def test_check_space_names_what_is_needed_and_what_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_space, "free_bytes", lambda directory: 1000)
    check_space(tmp_path, 900, 100)
    with pytest.raises(NoSpace) as caught:
        check_space(tmp_path, 901, 100)
    text = str(caught.value)
    assert "901 bytes" in text and "1000 bytes are free" in text and str(tmp_path) in text


def test_the_hashing_thread_ends_when_idle_and_comes_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_verify, "_IDLE", 0.05)
    progress = Md5Progress(tmp_path / "f.part")
    progress.feed(0, b"abc")
    thread = progress._thread
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive() and progress._thread is None
    progress.feed(3, b"def")  # a new thread takes over
    assert progress.hexdigest() == hashlib.md5(b"abcdef").hexdigest()


def test_bytes_past_a_gap_are_read_back_once_the_prefix_reaches_them(tmp_path: Path) -> None:
    """Four connections: what the later ones wrote is hashed from disk as soon as the
    first one reaches it, and their next bytes are taken from memory again."""
    data = _data(400_000)
    path = tmp_path / "f.part"
    path.write_bytes(data)  # what the connections wrote (feed follows the write)
    progress = Md5Progress(path)
    for start in (100_000, 200_000, 300_000):  # connections 2-4, 20 KB each so far
        progress.feed(start, data[start : start + 20_000])
    assert progress.position == 0
    progress.feed(0, data[:100_000])  # connection 1 is done: it reaches connection 2
    assert progress.position == 120_000  # connection 2's span is claimed (read back)
    progress.feed(120_000, data[120_000:200_000])  # its next bytes: straight from memory
    assert progress.position == 220_000  # ... and on into connection 3's span
    progress.feed(220_000, data[220_000:300_000])
    progress.feed(320_000, data[320_000:])
    assert progress.position == len(data)
    assert progress._spans == {} and progress._ends == {}
    assert progress.hexdigest() == hashlib.md5(data).hexdigest()


def test_one_connections_bytes_stay_one_span_and_overlaps_are_hashed_once(
    tmp_path: Path,
) -> None:
    data = _data(50_000)
    path = tmp_path / "f.part"
    path.write_bytes(data)
    progress = Md5Progress(path)
    for offset in range(10_000, 30_000, 1_000):
        progress.feed(offset, data[offset : offset + 1_000])
    assert progress._spans == {10_000: 30_000}  # twenty pieces, one span
    progress.written(20_000, 40_000)  # a resume's range overlapping it
    progress.feed(0, data[:10_000])
    assert progress.position == 40_000
    progress.feed(40_000, data[40_000:])
    assert progress.hexdigest() == hashlib.md5(data).hexdigest()


def test_nobody_waits_for_the_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed with the queue full, and ``written`` (on the download actor's thread),
    both return at once: the bytes are on disk and are read back in turn."""
    monkeypatch.setattr(_verify, "_HELD", 1000)
    data = _data(200_000)
    path = tmp_path / "f.part"
    path.write_bytes(data)
    progress = Md5Progress(path)
    gate = threading.Event()
    real = progress._md5

    class SlowMd5:
        def update(self, piece: bytes) -> None:
            gate.wait(10)
            real.update(piece)

        def hexdigest(self) -> str:
            return real.hexdigest()

    progress._md5 = SlowMd5()  # type: ignore[assignment]
    progress.feed(0, data[:1000])  # the hashing thread now waits in update
    progress.feed(1000, data[1000:2000])  # 1000 bytes wait already: read back instead
    done = threading.Event()

    def more() -> None:
        progress.feed(2000, data[2000:3000])  # the same
        progress.written(3000, 200_000)
        done.set()

    threading.Thread(target=more, daemon=True).start()
    assert done.wait(5), "a feed or written() waited for the hashing thread"
    assert progress.position == 200_000
    gate.set()
    assert progress.hexdigest() == hashlib.md5(data).hexdigest()


def test_a_read_back_error_surfaces_in_the_digest(tmp_path: Path) -> None:
    path = tmp_path / "f.part"
    path.write_bytes(b"abc")
    progress = Md5Progress(path)
    progress.feed(0, b"ab")
    progress.written(2, 10)  # says ten bytes are there; the file has three
    with pytest.raises(OSError, match="ends at 3"):
        progress.hexdigest()


def test_feeding_and_declaring_need_the_path() -> None:
    with pytest.raises(ValueError, match="path"):
        Md5Progress().written(0, 10)
    with pytest.raises(ValueError, match="path"):
        Md5Progress().feed(0, b"abc")


def test_a_failure_while_hashing_is_raised_by_the_digest_never_a_hang(tmp_path: Path) -> None:
    progress = Md5Progress(tmp_path / "f.part")

    class Broken:
        def update(self, piece: bytes) -> None:
            raise RuntimeError("the hash broke")

    progress._md5 = Broken()  # type: ignore[assignment]
    progress.feed(0, b"abc")
    progress.feed(3, b"def")  # the thread goes on after the failure: join() returns
    with pytest.raises(OSError, match="the hash broke"):
        progress.hexdigest()
    assert progress._held == 0
