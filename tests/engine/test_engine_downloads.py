"""Local downloads through the whole engine: real fakes over loopback, real files."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from engine_helpers import kill_when_ready

from actors import DownloadSettings
from engine import Engine, EngineConfig, Job, JobEvent, JobStatus, ValidationError
from engine.testing import ClockDriver, deterministic_bytes
from engine.testing._inject import inject_job_crash
from engine.testing.realdebrid import FakeRealDebrid, Scenario
from engine.testing.torbox import FakeTorBox
from providers import FakeClock, JobNotFound

KiB = 1024
MiB = 1 << 20
# The fakes hold bodies (stall_after) while the fake clock runs fast: a speed floor
# of an hour keeps the stall ladder (tested in the actor's tests) out of these.
SMALL = DownloadSettings(min_split=64 * KiB, checkpoint_bytes=64 * KiB, chunk_size=16 * KiB,
                         low_speed_seconds=3600.0)


def info_hash(i: int) -> str:
    return f"{i + 0xD0A000:040x}"


def magnet(i: int) -> str:
    return f"magnet:?xt=urn:btih:{info_hash(i)}&dn=dl{i}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def torbox(clock: FakeClock) -> Iterator[FakeTorBox]:
    with FakeTorBox(clock=clock, step_seconds=2.0) as server:
        yield server


@pytest.fixture
def rd(clock: FakeClock) -> Iterator[FakeRealDebrid]:
    with FakeRealDebrid(clock=clock, step_seconds=2.0) as server:
        yield server


def engine_on(
    name: str, options: dict[str, Any], clock: FakeClock, db: Path, **config: Any
) -> Engine:
    return Engine(EngineConfig(
        database=db, clock=clock, stall_timeouts={}, seed=1,
        providers={name: {**options, "poll_interval": 5.0}},
        downloads=config.pop("downloads", SMALL), **config,
    ))


def md5_of(path: str | None) -> str:
    assert path is not None
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def watch(engine: Engine, job_id: str, predicate: Any) -> threading.Event:
    """An event set once a committed change of the job satisfies ``predicate``."""
    seen = threading.Event()

    def on_event(event: JobEvent) -> None:
        if event.job_id == job_id and predicate(event.job):
            seen.set()

    engine.subscribe(on_event)
    return seen


@pytest.mark.parametrize("connections", [1, 4])
def test_a_torbox_torrent_lands_on_disk_verified_by_md5(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path, connections: int
) -> None:
    torbox.add_cached(info_hash(1), name="Pack",
                      files=[("Pack/big.mkv", 700 * KiB + 5), ("Pack/sub/a.srt", 3000),
                             ("Pack/empty.nfo", 0)])
    target = tmp_path / "dl"
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db") as engine:
        job = engine.create_job("torbox", {"magnet": magnet(1), "download_dir": str(target),
                                           "connections": connections})
        progress: list[float] = []
        engine.subscribe(lambda e: progress.append(e.job.progress) if e.job_id == job.id
                         else None)
        with ClockDriver(clock, step=1.0):
            done = engine.wait(job.id, timeout=60)
    assert done.status is JobStatus.COMPLETED, done.error
    assert done.progress == 100.0
    for file in done.files:
        assert file.verified == "size+md5" and file.bytes_done == file.size
        assert md5_of(file.local_path) == file.md5
        assert Path(file.local_path or "").is_relative_to(target)
    assert (target / "Pack" / "empty.nfo").read_bytes() == b""
    assert not list(target.rglob("*.part"))
    assert done.metadata["download"]["bytes_total"] == 700 * KiB + 5 + 3000
    assert "speed_bps" not in done.metadata["download"]
    assert any(50.0 <= p < 100.0 for p in progress)  # the local half shows as it goes


def test_real_debrid_torrent_and_hoster_link_land_byte_identical(
    rd: FakeRealDebrid, clock: FakeClock, tmp_path: Path
) -> None:
    rd.set_scenario(info_hash(2), Scenario(cached=True))
    target = tmp_path / "dl"
    with engine_on("realdebrid", rd.provider_options(), clock, tmp_path / "jobs.db") as engine:
        jobs = [
            engine.create_job("realdebrid", {"magnet": magnet(2), "download_dir": str(target),
                                             "connections": 2}),
            engine.create_job("realdebrid", {"url": "https://hoster.example/f/film.bin",
                                             "download_dir": str(target / "web")}),
        ]
        with ClockDriver(clock, step=1.0):
            done = [engine.wait(j.id, timeout=60) for j in jobs]
    assert [j.status for j in done] == [JobStatus.COMPLETED] * 2, [j.error for j in done]
    seeds = {r.download.rsplit("/", 1)[-1]: r for r in rd.account.downloads.values()}
    checked = 0
    for job in done:
        for file in job.files:
            if not file.selected:
                continue
            assert file.verified == "size"
            data = Path(file.local_path or "").read_bytes()
            record = next(r for r in rd.account.downloads.values()
                          if r.filesize == file.size and Path(file.local_path or "").name
                          .startswith(Path(r.filename).stem[:20]))
            assert data == deterministic_bytes(record.seed, 0, record.filesize)
            checked += 1
    assert checked >= 2 and seeds


def test_an_expired_torbox_link_is_asked_again_and_the_file_goes_on(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    size = 1 * MiB
    torbox.add_cached(info_hash(3), name="One", files=[("One/one.bin", size)])
    torbox.file_knobs.stall_after = 400 * KiB
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db") as engine:
        job = engine.create_job("torbox", {"magnet": magnet(3),
                                           "download_dir": str(tmp_path / "dl")})
        halfway = watch(engine, job.id, lambda j: j.files and j.files[0].bytes_done >= 272 * KiB)
        with ClockDriver(clock, step=0.2):
            assert halfway.wait(30)
            torbox.expire_links()  # "Invalid Presigned Token" from now on
            torbox.file_knobs.stall_after = None
            torbox.release_stalls()  # the connection drops: the next request gets 403
            done = engine.wait(job.id, timeout=60)
    assert done.status is JobStatus.COMPLETED, done.error
    assert md5_of(done.files[0].local_path) == done.files[0].md5
    # Went on from where it was: at most a checkpoint's worth came twice (+ probes).
    assert torbox.served_bytes() <= size + 64 * KiB + 16 * KiB + 4


def test_a_dead_real_debrid_link_is_unrestricted_again_and_the_file_goes_on(
    rd: FakeRealDebrid, clock: FakeClock, tmp_path: Path
) -> None:
    with engine_on("realdebrid", rd.provider_options(), clock, tmp_path / "jobs.db") as engine:
        rd.file_knobs.stall_after = 200 * KiB
        job = engine.create_job("realdebrid", {"url": "https://hoster.example/f/dead.bin",
                                               "download_dir": str(tmp_path / "dl")})
        halfway = watch(engine, job.id, lambda j: j.files and j.files[0].bytes_done >= 64 * KiB)
        with ClockDriver(clock, step=0.2):
            assert halfway.wait(30)
            for record in list(rd.account.downloads.values()):
                rd.kill_download(record.download)
            rd.file_knobs.stall_after = None
            rd.release_stalls()
            done = engine.wait(job.id, timeout=60)
    assert done.status is JobStatus.COMPLETED, done.error
    [file] = done.files
    assert file.verified == "size"
    assert len(rd.account.downloads) >= 2  # unrestricted a second time
    assert rd.served_bytes() <= file.size + 64 * KiB + 16 * KiB + 4


def test_a_retry_keeps_the_verified_files_and_fetches_only_the_rest(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    torbox.add_cached(info_hash(4), name="Three",
                      files=[("Three/a.bin", 100 * KiB), ("Three/b.bin", 120 * KiB),
                             ("Three/c.bin", 140 * KiB)])
    full = threading.Event()
    starts: list[int] = []

    def free(directory: Path) -> int:
        starts.append(1)
        return 0 if full.is_set() or len(starts) == 3 else 1 << 40  # the third file: full

    settings = attrs.evolve(SMALL, free_bytes=free)
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db",
                   downloads=settings) as engine:
        job = engine.create_job("torbox", {"magnet": magnet(4),
                                           "download_dir": str(tmp_path / "dl")})
        with ClockDriver(clock, step=1.0):
            failed = engine.wait(job.id, timeout=60)
        assert failed.status is JobStatus.FAILED and failed.error is not None
        assert failed.error.code == "NO_SPACE"
        kept = {f.name: Path(f.local_path or "") for f in failed.files if f.verified}
        assert sorted(kept) == ["Three/a.bin", "Three/b.bin"]
        inodes = {name: path.stat().st_ino for name, path in kept.items()}
        served = torbox.served_bytes()
        engine.retry_job(job.id)  # space freed (the probe says so now)
        with ClockDriver(clock, step=1.0):
            done = engine.wait(job.id, timeout=60, statuses=[JobStatus.COMPLETED,
                                                             JobStatus.FAILED])
    assert done.status is JobStatus.COMPLETED, done.error
    assert {f.name: Path(f.local_path or "").stat().st_ino for f in done.files
            if f.name in inodes} == inodes
    assert torbox.served_bytes() - served == 140 * KiB + 1  # only c.bin (and its probe)


def test_a_clean_stop_keeps_the_part_and_the_next_start_resumes_it(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    size = 1 * MiB
    torbox.add_cached(info_hash(5), name="Stop", files=[("Stop/s.bin", size)])
    torbox.file_knobs.stall_after = 500 * KiB
    db = tmp_path / "jobs.db"
    first = engine_on("torbox", torbox.provider_options(), clock, db).start()
    try:
        job = first.create_job("torbox", {"magnet": magnet(5),
                                          "download_dir": str(tmp_path / "dl")})
        # The live figure (written, not all of it synced and recorded yet) says when
        # the worker has everything the server will send.
        halfway = watch(first, job.id, lambda j: j.metadata.get("download", {}).get(
            "bytes_done", 0) >= 500 * KiB)
        with ClockDriver(clock, step=0.2):
            assert halfway.wait(30)
    finally:
        first.stop()
    stopped = Engine(EngineConfig(database=db, providers={})).start()
    try:
        kept = stopped.get_job(job.id)
    finally:
        stopped.stop()
    assert kept.status is JobStatus.DOWNLOADING
    [file] = kept.files
    # Everything that reached the disk before the stop is recorded, not just the last
    # checkpoint (448 KiB): the stop synced the rest and wrote it down.
    assert file.transfer is not None and file.bytes_done == 500 * KiB
    assert (tmp_path / "dl" / "Stop" / "s.bin.part").exists()
    before = torbox.served_bytes()
    torbox.file_knobs.stall_after = None
    torbox.release_stalls()
    with engine_on("torbox", torbox.provider_options(), clock, db) as second, \
            ClockDriver(clock, step=0.5):
        done = second.wait(job.id, timeout=60)
    assert done.status is JobStatus.COMPLETED, done.error
    assert md5_of(done.files[0].local_path) == done.files[0].md5
    assert torbox.served_bytes() - before == size - file.bytes_done + 1


def test_cancel_mid_transfer_removes_the_part(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    torbox.add_cached(info_hash(6), name="Cancel", files=[("Cancel/c.bin", 1 * MiB)])
    torbox.file_knobs.stall_after = 300 * KiB
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db") as engine:
        job = engine.create_job("torbox", {"magnet": magnet(6),
                                           "download_dir": str(tmp_path / "dl")})
        started = watch(engine, job.id, lambda j: j.files and j.files[0].bytes_done > 0)
        with ClockDriver(clock, step=0.2):
            assert started.wait(30)
        cancelled = engine.cancel_job(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert not list((tmp_path / "dl").rglob("*.part"))


def test_set_bandwidth_changes_the_caps_and_refuses_nonsense(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db",
                   bandwidth_bps=1_000_000) as engine:
        job: Job = engine.create_job("torbox", {"magnet": magnet(7)})
        assert engine.set_bandwidth(global_bps=2_000_000) == {"global_bps": 2_000_000.0,
                                                             "jobs": {}}
        limits = engine.set_bandwidth(job_id=job.id, bps=500_000)
        assert limits["jobs"] == {job.id: 500_000.0}
        assert engine.set_bandwidth(job_id=job.id, bps=None)["jobs"] == {}
        with pytest.raises(ValidationError, match="global_bps"):
            engine.set_bandwidth(global_bps=-5)
        with pytest.raises(ValidationError, match="bps"):
            engine.set_bandwidth(job_id=job.id)
        with pytest.raises(ValidationError, match="job_id"):
            engine.set_bandwidth(bps=10)
        with pytest.raises(JobNotFound):
            engine.set_bandwidth(job_id="no-such-job", bps=10)
    with pytest.raises(ValidationError, match="bandwidth_bps"):
        EngineConfig(bandwidth_bps=0)


CHILD = Path(__file__).resolve().parents[2] / "tests" / "fakes" / "download_kill_child.py"


def test_a_sigkill_mid_file_then_a_restart_fetches_no_recorded_byte_again(
    tmp_path: Path,
) -> None:
    size = 2 * MiB
    with FakeTorBox(step_seconds=0.1) as fake:  # real time: the child runs on its own clock
        fake.add_cached(info_hash(8), name="Kill", files=[("Kill/k.bin", size)])
        fake.file_knobs.stall_after = 900 * KiB  # the child gets this far, then waits
        db, target = tmp_path / "jobs.db", tmp_path / "dl"
        line, returncode = kill_when_ready(
            [str(CHILD), str(db), json.dumps(fake.provider_options()), magnet(8), str(target),
             str(832 * KiB)],
            tmp_path / "child.stderr",
        )
        assert line.startswith("ready "), (line, (tmp_path / "child.stderr").read_text())
        assert returncode == -signal.SIGKILL
        fake.file_knobs.stall_after = None
        fake.release_stalls()
        served_before = fake.served_bytes()
        config = EngineConfig(database=db, stall_timeouts={},
                              providers={"torbox": {**fake.provider_options(),
                                                    "poll_interval": 0.2}},
                              downloads=SMALL)
        with Engine(config) as engine:
            [stored] = engine.list_jobs()
            recorded = stored.files[0].bytes_done
            done = engine.wait(stored.id, timeout=60)
        served_after = fake.served_bytes() - served_before
    assert done.status is JobStatus.COMPLETED, done.error
    assert md5_of(done.files[0].local_path) == done.files[0].md5
    assert recorded >= 832 * KiB  # what was synced before the kill was recorded...
    assert served_after == size - recorded + 1  # ...and not one of those bytes came again



def test_hostile_names_from_a_provider_stay_inside_the_folder(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    hostile = ["Evil/../../../escape.bin", "Evil//etc/passwd", "Evil/C:\\win\\x.dll",
               "Evil/con.txt", "Evil/a:b?.txt", "Evil/same.txt", "Evil/SAME.txt",
               "Evil/dots. . ", "Evil/" + "n" * 300 + ".mkv", "Evil/nul\x00.txt"]
    torbox.add_cached(info_hash(9), name="Evil", files=[(n, 1000 + i)
                                                        for i, n in enumerate(hostile)])
    target = tmp_path / "job"
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db") as engine:
        job = engine.create_job("torbox", {"magnet": magnet(9), "download_dir": str(target)})
        with ClockDriver(clock, step=1.0):
            done = engine.wait(job.id, timeout=60)
    assert done.status is JobStatus.COMPLETED, done.error
    paths = [Path(f.local_path or "") for f in done.files]
    assert len(paths) == len(hostile)
    assert len({str(p).casefold() for p in paths}) == len(paths)  # none overwrote another
    for file, path in zip(done.files, paths, strict=True):
        assert path.resolve().is_relative_to(target.resolve())
        assert all(len(part.encode()) <= 255 for part in path.parts)
        assert md5_of(str(path)) == file.md5
    escaped = [p for p in tmp_path.rglob("escape*") if not p.is_relative_to(target)]
    assert escaped == [] and not (tmp_path.parent / "escape.bin").exists()


def test_a_job_crash_before_the_first_checkpoint_resumes_the_same_file(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    """Found in review: the path was chosen by the DownloadActor and stored with the
    first progress, so a crash before it made the restart pick ``d (1).bin``."""
    torbox.add_cached(info_hash(10), name="Crash", files=[("Crash/d.bin", 1 * MiB)])
    torbox.file_knobs.stall_after = 1
    target = tmp_path / "dl"
    part = target / "Crash" / "d.bin.part"
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db",
                   max_restarts=5) as engine:
        job = engine.create_job("torbox", {"magnet": magnet(10), "download_dir": str(target)})
        local = watch(engine, job.id, lambda j: "download" in j.metadata)
        with ClockDriver(clock, step=0.1):
            assert local.wait(30)
        # The clock stands still now: no tick, and no checkpoint (one byte comes).
        pause = threading.Event()
        for _ in range(400):
            if part.exists():
                break
            pause.wait(0.025)
        assert part.exists()
        inject_job_crash(engine, job.id)
        torbox.file_knobs.stall_after = None
        torbox.release_stalls()
        with ClockDriver(clock, step=0.1):
            done = engine.wait(job.id, timeout=60)
    assert done.status is JobStatus.COMPLETED, done.error
    on_disk = sorted(p.name for p in (target / "Crash").iterdir())
    assert on_disk == ["d.bin"], on_disk
    assert md5_of(done.files[0].local_path) == done.files[0].md5


def test_a_sync_in_the_local_phase_answers_from_the_disk_not_the_provider(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    """Found in review: a sync while the files downloaded asked the provider (its
    budget, its errors) about an item whose part was done."""
    torbox.add_cached(info_hash(11), name="Sync", files=[("Sync/s.bin", 1 * MiB)])
    torbox.file_knobs.stall_after = 300 * KiB
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db") as engine:
        job = engine.create_job("torbox", {"magnet": magnet(11),
                                           "download_dir": str(tmp_path / "dl")})
        started = watch(engine, job.id, lambda j: j.files and j.files[0].bytes_done > 0)
        with ClockDriver(clock, step=0.2):
            assert started.wait(30)
        polls = sum(n for route, n in torbox.counts.items() if route.endswith("mylist"))
        synced = engine.sync_job_status(job.id)
        assert sum(n for route, n in torbox.counts.items() if route.endswith("mylist")) == polls
        torbox.release_stalls()
    assert synced.status is JobStatus.DOWNLOADING and synced.files[0].bytes_done > 0


def test_cancel_removes_the_folders_it_made_and_only_those(
    torbox: FakeTorBox, clock: FakeClock, tmp_path: Path
) -> None:
    # Regression (qBittorrent face review): a cancel racing a download's start left
    # the folders the download had just made, so "delete with files" left them behind.
    torbox.add_cached(info_hash(8), name="Gone", files=[("Gone/sub/c.bin", 1 * MiB)])
    torbox.file_knobs.stall_after = 300 * KiB
    kept = tmp_path / "dl"
    kept.mkdir()
    (kept / "mine.txt").write_text("the user's")
    target = kept / "Item"
    with engine_on("torbox", torbox.provider_options(), clock, tmp_path / "jobs.db") as engine:
        job = engine.create_job("torbox", {"magnet": magnet(8), "download_dir": str(target)})
        started = watch(engine, job.id, lambda j: j.files and j.files[0].bytes_done > 0)
        with ClockDriver(clock, step=0.2):
            assert started.wait(30)
        assert any(target.rglob("*.part"))
        engine.cancel_job(job.id)
    assert not target.exists()  # made by the download, left empty by the cancel
    assert (kept / "mine.txt").read_text() == "the user's"
