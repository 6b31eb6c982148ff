"""The qBittorrent face's parts on their own: state mapping, sync increments, sessions."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from engine.server._security import FailedLogins
from engine.server.qbittorrent import MainData, QbitAuth, QbitOptions
from engine.server.qbittorrent._sync import MAX_SNAPSHOTS
from engine.server.qbittorrent._view import UNKNOWN_ETA, content_path, state_of, torrent_of
from persistence import ClientItem
from providers import Job, JobErrorInfo, JobFile, JobStatus, StartJobPayload

NOW = 1_700_000_000_000
HASH = "ab" * 20


def item(tmp: Path, **changes: Any) -> ClientItem:
    base = dict(hash=HASH, provider="mock", name="Show", save_path=str(tmp / "tv"),
                folder=str(tmp / "tv" / "Show"), added_on=NOW - 5000, updated_at=NOW - 5000,
                job_id="j1")
    base.update(changes)
    return ClientItem(**base)  # type: ignore[arg-type]


def job(status: JobStatus, **changes: Any) -> Job:
    base: dict[str, Any] = dict(id="j1", provider="mock", status=status,
                                payload=StartJobPayload(magnet=f"magnet:?xt=urn:btih:{HASH}"),
                                created_at=NOW - 5000, updated_at=NOW - 1000)
    base.update(changes)
    return Job(**base)


def placed(tmp: Path, names: list[str], write: bool = True) -> tuple[JobFile, ...]:
    files = []
    for n, name in enumerate(names):
        path = tmp / "tv" / "Show" / name
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 10)
        files.append(JobFile(id=n, name=name, size=10, local_path=str(path), bytes_done=10,
                             verified="size"))
    return tuple(files)


@pytest.mark.parametrize(("status", "extra", "expected"), [
    (JobStatus.QUEUED, {}, "queuedDL"),
    (JobStatus.RESOLVING, {}, "metaDL"),
    (JobStatus.RESOLVING, {"metadata": {"waiting_for": {"budget": "creation"}}}, "queuedDL"),
    (JobStatus.DOWNLOADING, {}, "downloading"),
    (JobStatus.DOWNLOADING, {"updated_at": NOW - 61_000}, "downloading"),
    (JobStatus.DOWNLOADING, {"updated_at": NOW - 61_000,
                             "metadata": {"download": {"speed_bps": 0}}}, "stalledDL"),
    (JobStatus.DOWNLOADING, {"updated_at": NOW - 59_000,
                             "metadata": {"download": {"speed_bps": 0}}}, "downloading"),
    (JobStatus.FAILED, {"error": JobErrorInfo("X", "why")}, "error"),
])
def test_state_table(tmp_path: Path, status: JobStatus, extra: dict[str, Any],
                     expected: str) -> None:
    assert state_of(item(tmp_path), job(status, **extra), NOW, False).value == expected


def test_completed_is_paused_up_only_with_the_files_on_disk(tmp_path: Path) -> None:
    files = placed(tmp_path, ["a.mkv", "b.srt"])
    done = job(JobStatus.COMPLETED, files=files, progress=100.0)
    assert state_of(item(tmp_path), done, NOW, False).value == "pausedUP"
    assert state_of(item(tmp_path), done, NOW, True).value == "stoppedUP"
    Path(files[0].local_path or "").unlink()
    assert state_of(item(tmp_path), done, NOW, False).value == "missingFiles"


def test_held_items(tmp_path: Path) -> None:
    paused = item(tmp_path, job_id=None, held={"magnet": "m"})
    assert state_of(paused, None, NOW, False).value == "pausedDL"
    assert state_of(paused, None, NOW, True).value == "stoppedDL"
    starting = item(tmp_path, held={"magnet": "m"})
    assert state_of(starting, None, NOW, False).value == "queuedDL"


def test_progress_reaches_one_only_when_completed(tmp_path: Path) -> None:
    files = placed(tmp_path, ["a.mkv"], write=False)
    running = torrent_of(item(tmp_path), job(JobStatus.DOWNLOADING, files=files,
                                             progress=100.0), NOW, False)
    assert running["progress"] < 1
    assert running["ratio"] < running["ratio_limit"]
    queued = torrent_of(item(tmp_path), job(JobStatus.QUEUED), NOW, False)
    assert queued["eta"] == UNKNOWN_ETA
    done = torrent_of(item(tmp_path), job(JobStatus.COMPLETED, files=placed(tmp_path, ["a.mkv"]),
                                          progress=100.0), NOW, False)
    assert done["progress"] == 1 and done["eta"] == 0 and done["amount_left"] == 0
    assert done["ratio"] >= done["ratio_limit"]
    assert done["completion_on"] == (NOW - 1000) // 1000


def test_speed_and_eta_come_from_the_local_download(tmp_path: Path) -> None:
    metadata = {"download": {"speed_bps": 2048, "eta_seconds": 30}}
    entry = torrent_of(item(tmp_path), job(JobStatus.DOWNLOADING, metadata=metadata),
                       NOW - 10, False)
    assert entry["dlspeed"] == 2048 and entry["eta"] == 30


@given(st.lists(st.sampled_from(["a.mkv", "S01/e1.mkv", "S01/e2.mkv", "Show/x.nfo",
                                 "Show/sub/y.srt"]), min_size=1, max_size=5, unique=True))
def test_content_path_is_never_the_save_path(names: list[str]) -> None:
    tmp = Path("/srv/downloads")
    files = placed(tmp, names, write=False)
    found = content_path(item(tmp), job(JobStatus.COMPLETED, files=files))
    save = tmp / "tv"
    assert Path(found) != save
    assert save in Path(found).parents
    if len(names) == 1:
        assert found == files[0].local_path
    else:
        assert all(Path(found) in Path(f.local_path or "").parents for f in files)


# -- sync/maindata ---------------------------------------------------------------------
def test_increments_carry_only_what_changed() -> None:
    main = MainData()
    first = main.answer(0, {"h1": {"a": 1, "b": 2}}, {"tv": {"name": "tv"}}, ["x"], {"s": 1})
    assert first["full_update"] is True
    second = main.answer(first["rid"], {"h1": {"a": 1, "b": 3}, "h2": {"a": 0}}, {}, ["y"],
                         {"s": 1})
    assert second["torrents"] == {"h1": {"b": 3}, "h2": {"a": 0}}
    assert second["categories_removed"] == ["tv"]
    assert second["tags"] == ["y"] and second["tags_removed"] == ["x"]
    assert "server_state" not in second and "full_update" not in second
    third = main.answer(second["rid"], {"h2": {"a": 0}}, {}, ["y"], {"s": 2})
    assert third["torrents_removed"] == ["h1"] and "torrents" not in third
    assert third["server_state"] == {"s": 2}


def test_old_rids_are_forgotten_and_get_a_full_update() -> None:
    main = MainData()
    first = main.answer(0, {}, {}, [], {})["rid"]
    for _ in range(MAX_SNAPSHOTS):
        main.answer(0, {}, {}, [], {})
    assert main.answer(first, {}, {}, [], {})["full_update"] is True
    assert len(main._snapshots) <= MAX_SNAPSHOTS


# -- sessions ----------------------------------------------------------------------------
def request(headers: dict[str, str], method: str = "GET") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": method, "headers": raw, "path": "/api/v2/x",
                    "client": ("127.0.0.1", 1), "query_string": b""})


def test_sessions_expire_when_unused_and_are_bounded() -> None:
    now = [0.0]
    auth = QbitAuth(QbitOptions(username="u", password="p", session_timeout=100), None,
                    FailedLogins(), lambda: now[0])
    sid = auth.login("u", "p", "1.2.3.4")
    assert sid is not None
    cookie = {"cookie": f"SID={sid}"}
    now[0] = 99
    assert auth.allowed(request(cookie))  # used: the idle time starts again
    now[0] = 198
    assert auth.allowed(request(cookie))
    now[0] = 299
    assert not auth.allowed(request(cookie))
    for _ in range(300):
        auth.login("u", "p", "1.2.3.4")
    assert len(auth._sessions) <= 256


def test_credentials_basic_and_bearer() -> None:
    auth = QbitAuth(QbitOptions(username="u", password="p"), "tok", FailedLogins())
    assert auth.login("u", "wrong", "a") is None
    assert auth.login("x", "p", "a") is None
    basic = base64.b64encode(b"u:p").decode()
    assert auth.allowed(request({"authorization": f"Basic {basic}"}))
    assert auth.allowed(request({"authorization": "Bearer tok"}))
    assert not auth.allowed(request({"authorization": "Bearer nope"}))
    assert not auth.allowed(request({"authorization": "Basic !!!"}))
    assert not auth.allowed(request({}))


def test_with_no_login_set_the_token_is_the_password_and_open_when_both_are_off() -> None:
    token_auth = QbitAuth(QbitOptions(), "tok", FailedLogins())
    assert token_auth.login("anyone", "tok", "a") is not None
    assert token_auth.login("anyone", "other", "a") is None
    assert not token_auth.allowed(request({}))
    open_auth = QbitAuth(QbitOptions(), None, FailedLogins())
    assert open_auth.open and open_auth.allowed(request({}))
    # Open, but not to a page on another site that makes the browser post.
    assert not open_auth.allowed(request({"sec-fetch-site": "cross-site"}, "POST"))
    assert not open_auth.allowed(request({"origin": "https://evil.example",
                                          "host": "127.0.0.1:8686"}, "POST"))
    assert open_auth.allowed(request({"origin": "http://127.0.0.1:8686",
                                      "host": "127.0.0.1:8686"}, "POST"))


def test_failed_logins_lock_the_address_out() -> None:
    failures = FailedLogins(limit=3)
    auth = QbitAuth(QbitOptions(username="u", password="p"), None, failures)
    for _ in range(3):
        assert auth.login("u", "bad", "127.0.0.1") is None
    assert auth.blocked_for("127.0.0.1") > 0
    basic = base64.b64encode(b"u:p").decode()
    assert not auth.allowed(request({"authorization": f"Basic {basic}"}))  # even right ones


def test_options_never_show_secrets() -> None:
    from engine.server.qbittorrent import ArrTarget, CategoryOptions  # noqa: PLC0415

    options = QbitOptions(username="u", password="hunter2-pass",
                          categories=(CategoryOptions("tv", arr=ArrTarget("http://x", "KEY-9")),))
    assert "hunter2-pass" not in repr(options) and "KEY-9" not in repr(options)
