"""The DownloadActor against a real file server over loopback: files land whole,
resume where they stopped, and every fault has its remedy."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from download_harness import Bench, Download

from actors._download import DownloadActor, DownloadCrashed, DownloadSettings
from actors._download_messages import (
    CancelDownload,
    DownloadFailed,
    DownloadFinished,
    WindUpDownload,
)
from actors.transfer import Bandwidth
from engine.testing import ClockDriver
from providers import FakeClock, FileTransfer, JobFile
from providers._fileserve import FileServer, ServedFile

KiB = 1024
MiB = 1 << 20


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=[True, False], ids=["wire", "httpx"])
def bench(clock: FakeClock, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bench]:
    bench = Bench(clock, tmp_path, raw_sockets=request.param)
    yield bench
    bench.stop()


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server
        server.release_stalls()


def settings(**changes: object) -> DownloadSettings:
    base = DownloadSettings(min_split=256 * KiB, checkpoint_bytes=64 * KiB, chunk_size=16 * KiB)
    return attrs.evolve(base, **changes)  # type: ignore[arg-type]


def served(size: int, name: str = "f.bin", seed: str = "s") -> ServedFile:
    return ServedFile(name=name, size=size, seed=seed)


def job_file(file: ServedFile, file_id: int = 0, *, md5: bool = True, **more: object) -> JobFile:
    return JobFile(file_id, file.name, file.size, None, md5=file.md5 if md5 else None,
                   **more)  # type: ignore[arg-type]


def one_url(url: str):  # type: ignore[no-untyped-def]
    return lambda file, count: url


def landed(download: Download, file: ServedFile, name: str | None = None) -> bytes:
    return (download.root / (name or file.name)).read_bytes()


def test_a_file_lands_whole_and_verified(bench: Bench, server: FileServer) -> None:
    file = served(700 * KiB + 3)
    url = server.add(file)
    download = bench.start([job_file(file)], one_url(url), settings=settings())
    ended = download.end()
    assert isinstance(ended, DownloadFinished)
    assert landed(download, file) == file.content(0, file.size)
    [done] = ended.files
    assert (done.verified, done.bytes_done, done.transfer) == ("size+md5", file.size, None)
    assert not (download.root / "f.bin.part").exists()
    assert server.served_bytes(url) == file.size + 1  # the probe's one byte, then the file


def test_four_connections_fetch_four_ranges_into_one_part(
    bench: Bench, server: FileServer
) -> None:
    file = served(2 * MiB + 17)
    url = server.add(file)
    download = bench.start([job_file(file)], one_url(url), settings=settings(), connections=4)
    assert isinstance(download.end(), DownloadFinished)
    assert landed(download, file) == file.content(0, file.size)
    ranged = [r for r in server.requests if r.range and r.range != "bytes=0-0"]
    assert len(ranged) == 4, ranged


def test_a_server_that_refuses_ranges_gets_one_connection(
    bench: Bench, server: FileServer
) -> None:
    server.knobs.ignore_range = True
    file = served(2 * MiB)
    url = server.add(file)
    download = bench.start([job_file(file)], one_url(url), settings=settings(), connections=4)
    assert isinstance(download.end(), DownloadFinished)
    assert landed(download, file) == file.content(0, file.size)
    gets = [r for r in server.requests if r.method == "GET" and r.range != "bytes=0-0"]
    assert len(gets) == 1 and gets[0].range is None


def resumable(download_root: Path, file: ServedFile, upto: int, *, etag: str | None = None
              ) -> FileTransfer:
    """A ``.part`` holding the first ``upto`` bytes, as a stopped download leaves it."""
    download_root.mkdir(parents=True, exist_ok=True)
    part = download_root / f"{file.name}.part"
    part.write_bytes(file.content(0, upto) + b"\0" * (file.size - upto))
    return FileTransfer(file.size, etag or file.etag, file.last_modified, ((0, upto),))


def test_a_resume_fetches_only_what_is_missing_with_if_range(
    bench: Bench, server: FileServer, tmp_path: Path
) -> None:
    file = served(1 * MiB)
    url = server.add(file)
    root = tmp_path / "dl"
    transfer = resumable(root, file, 600 * KiB)
    start = job_file(file, local_path=str(root / file.name), bytes_done=600 * KiB,
                     transfer=transfer)
    download = bench.start([start], one_url(url), settings=settings(), root=root)
    assert isinstance(download.end(), DownloadFinished)
    assert landed(download, file) == file.content(0, file.size)
    assert server.served_bytes(url) == 1 + file.size - 600 * KiB
    [get] = [r for r in server.requests if r.range and r.range != "bytes=0-0"]
    assert get.range == f"bytes={600 * KiB}-{file.size - 1}"
    assert get.if_range == file.etag


@pytest.mark.parametrize("fault", ["ignore_range", "changed", "smaller"])
def test_a_resume_that_cannot_continue_starts_the_file_again(
    bench: Bench, server: FileServer, tmp_path: Path, fault: str
) -> None:
    file = served(1 * MiB)
    url = server.add(file)
    root = tmp_path / "dl"
    transfer = resumable(root, file, 512 * KiB)
    if fault == "ignore_range":
        server.knobs.ignore_range = True
    elif fault == "changed":
        file.version += 1  # new bytes, new ETag
    else:
        transfer = attrs.evolve(transfer, ranges=((0, 2 * MiB),), size=2 * MiB)
    start = job_file(file, local_path=str(root / file.name), bytes_done=512 * KiB,
                     transfer=transfer)
    start = attrs.evolve(start, md5=file.md5)
    download = bench.start([start], one_url(url), settings=settings(), root=root)
    ended = download.end()
    assert isinstance(ended, DownloadFinished), ended
    assert landed(download, file) == file.content(0, file.size)  # nothing appended to old bytes


def test_a_416_on_a_range_restarts_the_file(
    bench: Bench, server: FileServer, tmp_path: Path
) -> None:
    file = served(300 * KiB)
    url = server.add(file)
    root = tmp_path / "dl"
    # A record that says more is on disk than the server has: its range cannot be served.
    transfer = FileTransfer(file.size, file.etag, file.last_modified, ((0, 100 * KiB),))
    resumable(root, file, 100 * KiB)
    start = job_file(file, local_path=str(root / file.name), bytes_done=100 * KiB,
                     transfer=transfer)
    server.knobs.answer_416_at = 100 * KiB
    download = bench.start([start], one_url(url), settings=settings(), root=root)
    assert isinstance(download.end(), DownloadFinished)
    assert landed(download, file) == file.content(0, file.size)


def test_an_expired_link_is_asked_again_and_the_file_goes_on(
    bench: Bench, server: FileServer
) -> None:
    file = served(1 * MiB)
    first, second = server.add(file), server.add(file)
    server.knobs.stall_after = 300 * KiB
    download = bench.start([job_file(file)], lambda f, count: first if count == 1 else second,
                           settings=settings())
    download.wait_for(lambda m: type(m).__name__ == "DownloadProgress"
                      and m.stats["bytes_done"] >= 160 * KiB)
    server.expire(first)  # the CDN's token runs out mid-file...
    server.knobs.stall_after = None
    server.release_stalls()  # ...and the connection drops: the next request gets 403
    assert isinstance(download.end(), DownloadFinished)
    assert landed(download, file) == file.content(0, file.size)
    asked = download.asked()
    assert len(asked) == 2 and asked[1].failed_url == first
    # Goes on from where it was: only the bytes after the last checkpoint come twice.
    assert server.served_bytes(first) + server.served_bytes(second) <= file.size + 64 * KiB + 2


def test_a_connection_cut_mid_body_goes_on_from_where_it_stopped(
    bench: Bench, server: FileServer
) -> None:
    file = served(1 * MiB)
    url = server.add(file)
    server.knobs.cut_after = 200 * KiB
    download = bench.start([job_file(file)], one_url(url), settings=settings())
    assert isinstance(download.end(), DownloadFinished)
    assert landed(download, file) == file.content(0, file.size)
    # Every cut response is continued, not fetched again: at most a chunk is lost per cut.
    cuts = len([r for r in server.requests if r.method == "GET"]) - 1
    assert server.served_bytes(url) <= file.size + 1 + cuts * 16 * KiB


def test_a_stall_reconnects_then_asks_a_new_link_then_fails(
    bench: Bench, server: FileServer, clock: FakeClock
) -> None:
    file = served(1 * MiB)
    url = server.add(file)
    server.knobs.stall_after = 100 * KiB
    download = bench.start([job_file(file)], one_url(url),
                           settings=settings(low_speed_seconds=60.0, stall_tries=2))
    deadline = time.monotonic() + 20
    while not download.owner.messages or not isinstance(
        download.owner.messages[-1], DownloadFailed
    ):
        assert time.monotonic() < deadline, "the stall was never noticed"
        clock.advance(5.0)
        download.owner.cond.acquire()
        download.owner.cond.wait(0.02)
        download.owner.cond.release()
    ended = download.end()
    assert isinstance(ended, DownloadFailed) and ended.code == "DOWNLOAD_STALLED", ended
    assert len(download.asked()) == 2  # one reconnect on the same link, then a new link
    [kept] = ended.files
    assert kept.bytes_done >= 64 * KiB  # what arrived before the stall is kept


def test_an_md5_mismatch_fetches_once_more_then_fails(
    bench: Bench, server: FileServer
) -> None:
    file = served(200 * KiB)
    url = server.add(file)
    wrong = attrs.evolve(job_file(file), md5="0" * 32)
    download = bench.start([wrong], one_url(url), settings=settings())
    ended = download.end()
    assert isinstance(ended, DownloadFailed) and ended.code == "CHECKSUM_MISMATCH"
    assert server.served_bytes(url) >= 2 * file.size
    assert not (download.root / "f.bin").exists()
    assert not (download.root / "f.bin.part").exists()


def test_no_space_fails_before_a_byte_is_written(bench: Bench, server: FileServer) -> None:
    file = served(300 * KiB)
    url = server.add(file)
    download = bench.start([job_file(file)], one_url(url),
                           settings=settings(free_bytes=lambda path: 100 * KiB))
    ended = download.end()
    assert isinstance(ended, DownloadFailed) and ended.code == "NO_SPACE"
    assert "bytes are free" in ended.message
    assert server.served_bytes(url) == 0
    assert not (download.root / "f.bin.part").exists()


def test_a_write_error_mid_way_fails_with_its_cause_and_keeps_the_part(
    bench: Bench, server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = served(1 * MiB)
    url = server.add(file)
    real = os.pwrite

    def pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        # The disk fills at 400 KiB: a write across it is short, the next one fails
        # (however big the reads are: the wire's can hold the whole file).
        room = 400 * KiB - offset
        if room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, memoryview(data)[:room], offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    download = bench.start([job_file(file)], one_url(url), settings=settings())
    ended = download.end()
    assert isinstance(ended, DownloadFailed) and ended.code == "NO_SPACE", ended
    assert "No space left" in ended.message
    [kept] = ended.files
    # What was written before the failing write is kept (how much depends on how big
    # the reads were), and never more than reached the disk.
    assert kept.transfer is not None and 0 < kept.bytes_done <= 400 * KiB
    part = (download.root / "f.bin.part").read_bytes()
    assert part[: kept.bytes_done] == file.content(0, kept.bytes_done)


def test_cancel_stops_within_a_second_and_removes_the_part(
    bench: Bench, server: FileServer
) -> None:
    file = served(4 * MiB)
    url = server.add(file)
    server.knobs.stall_after = 256 * KiB
    download = bench.start([job_file(file)], one_url(url), settings=settings(), connections=2)
    download.wait_for(lambda m: type(m).__name__ == "DownloadProgress"
                      and m.stats["bytes_done"] > 0)
    download.ref.tell(CancelDownload())
    # Stopped (its .part gone first) within a second, though the server still holds
    # both connections open.
    assert download.ref.actor_stopped.wait(1.0)
    assert not (download.root / "f.bin.part").exists()
    assert not (download.root / "f.bin").exists()


def test_a_wind_up_keeps_the_part_and_answers_with_what_is_synced(
    bench: Bench, server: FileServer
) -> None:
    file = served(4 * MiB)
    url = server.add(file)
    server.knobs.stall_after = 300 * KiB
    download = bench.start([job_file(file)], one_url(url), settings=settings())
    download.wait_for(lambda m: type(m).__name__ == "DownloadProgress"
                      and m.stats["bytes_done"] >= 160 * KiB)
    files = download.ref.ask(WindUpDownload(), timeout=10)
    [kept] = files
    assert kept.transfer is not None and kept.bytes_done >= 160 * KiB
    part = (download.root / "f.bin.part").read_bytes()
    assert part[: kept.bytes_done] == file.content(0, kept.bytes_done)


def test_an_empty_file_is_a_file(bench: Bench, server: FileServer) -> None:
    file = served(0, name="empty.txt")
    url = server.add(file)
    download = bench.start([job_file(file)], one_url(url), settings=settings())
    ended = download.end()
    assert isinstance(ended, DownloadFinished), ended
    assert (download.root / "empty.txt").read_bytes() == b""
    assert ended.files[0].verified == "size+md5"


def test_hostile_names_land_inside_the_folder_without_overwriting(
    bench: Bench, server: FileServer, tmp_path: Path
) -> None:
    names = ["../../escape.txt", "/etc/passwd", "C:\\Windows\\x.txt", "a/CON", "dup.txt",
             "DUP.txt", "x\x00y.txt", "trail. ", "sub/dir/ok.txt"]
    files = [served(1000 + i, name=n, seed=f"n{i}") for i, n in enumerate(names)]
    urls = {i: server.add(f) for i, f in enumerate(files)}
    jobs = [job_file(f, i) for i, f in enumerate(files)]
    root = tmp_path / "job"
    download = bench.start(jobs, lambda f, count: urls[f.id], settings=settings(), root=root)
    ended = download.end()
    assert isinstance(ended, DownloadFinished), ended
    paths = [Path(f.local_path or "") for f in ended.files]
    assert len({str(p).casefold() for p in paths}) == len(paths)
    for path, file in zip(paths, files, strict=True):
        assert path.resolve().is_relative_to(root.resolve()), path
        assert path.read_bytes() == file.content(0, file.size)
    assert not (tmp_path / "escape.txt").exists()
    assert {p.name for p in paths} >= {"escape.txt", "passwd", "x.txt", "CON_", "dup.txt",
                                       "DUP (1).txt", "xy.txt", "trail", "ok.txt"}


def test_md5_is_fed_while_streaming_not_read_back(
    bench: Bench, server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = served(1 * MiB)
    url = server.add(file)
    reads: list[int] = []
    real = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        reads.append(n)
        return real(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread)
    download = bench.start([job_file(file)], one_url(url), settings=settings())
    assert isinstance(download.end(), DownloadFinished)
    assert sum(reads) == 0
    assert hashlib.md5(landed(download, file)).hexdigest() == file.md5


def test_a_finished_download_forgets_its_jobs_cap(
    bench: Bench, server: FileServer, clock: FakeClock
) -> None:
    bandwidth = Bandwidth(clock)
    bandwidth.set_job("job-1", 50_000_000)
    file = served(100 * KiB)
    download = bench.start([job_file(file)], one_url(server.add(file)),
                           settings=settings(bandwidth=bandwidth))
    with ClockDriver(clock, step=0.05):  # the cap's waits are on the fake clock
        assert isinstance(download.end(), DownloadFinished)
    download.ref.actor_stopped.wait(5)
    assert bandwidth.limits()["jobs"] == {}


def test_a_failed_sync_after_a_cut_fails_the_file_at_once(
    bench: Bench, server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: a sync error after a cut was taken for the cut alone, and the
    file went on, cut after cut, with nothing of it recorded."""
    file = served(1 * MiB)
    url = server.add(file)
    server.knobs.cut_after = 30 * KiB

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    download = bench.start([job_file(file)], one_url(url), settings=settings())
    ended = download.end()
    assert isinstance(ended, DownloadFailed) and ended.code == "WRITE_ERROR", ended
    assert "Input/output error" in ended.message
    assert server.served_bytes(url) <= 30 * KiB + 1


def test_a_download_that_dies_anyway_tells_its_job(
    bench: Bench, server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: an exception that escaped the crash handler killed the actor
    without a word, and the job waited for it until its stall timeout."""
    file = served(100 * KiB)

    def broken(self: DownloadActor, exc: BaseException) -> None:
        raise RuntimeError("the crash handler itself failed")

    def failing(self: DownloadActor, message: object) -> None:
        raise RuntimeError("a bug while handling a message")

    monkeypatch.setattr(DownloadActor, "_crashed", broken)
    monkeypatch.setattr(DownloadActor, "_dispatch", failing)
    download = bench.start([job_file(file)], one_url(server.add(file)), settings=settings())
    crashed = download.wait_for(lambda m: isinstance(m, DownloadCrashed))
    assert "crash handler" in crashed.error or "bug" in crashed.error


def test_a_cancel_removes_only_the_empty_folders_it_made_and_a_neighbour_goes_on(
    bench: Bench, server: FileServer, tmp_path: Path
) -> None:
    # Regression (review of the folder clean-up on cancel): job A made the shared
    # folder, job B found it there and waited for its link; A's cancel removed the
    # folder, empty then, and B's .part could not be opened (WRITE_ERROR).
    import threading  # noqa: PLC0415

    shared = tmp_path / "shared" / "deeper"
    first, second = served(64 * KiB, "a.bin", "a"), served(64 * KiB, "b.bin", "b")
    url_b = server.add(second)
    a_asked, b_asked, b_go = threading.Event(), threading.Event(), threading.Event()

    def link_a(_: JobFile, __: int) -> str:
        a_asked.set()
        return "http://127.0.0.1:9/never"  # refused: A waits for its retry (fake clock)

    def link_b(_: JobFile, __: int) -> str:
        b_asked.set()
        assert b_go.wait(30)
        return url_b

    a = bench.start([job_file(first)], link_a, settings=settings(), root=shared)
    assert a_asked.wait(10)  # A has made its folders (they are made before the link)
    b = bench.start([job_file(second)], link_b, settings=settings(), root=shared)
    assert b_asked.wait(10)
    a.ref.tell(CancelDownload())
    assert a.ref.actor_stopped.wait(5)
    assert not (tmp_path / "shared").exists()  # what A made, empty: gone
    b_go.set()
    end = b.end()
    assert isinstance(end, DownloadFinished), end
    assert (shared / "b.bin").stat().st_size == second.size
