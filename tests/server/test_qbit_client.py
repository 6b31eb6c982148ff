"""The qBittorrent face driven by the third-party ``qbittorrent-api`` client, over real HTTP.

The client is stricter than Sonarr (``../ARR.md``): it HEADs the base URL, logs in
lazily on the first 403, POSTs its reads, names file parts ``torrent__N`` and reads
``app/webapiVersion`` to choose parameters. Every test runs a real engine (the mock,
whose files are served over loopback and downloaded for real) behind a real daemon.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import qbittorrentapi
from server_helpers import Served, ServeFactory

from engine.server.qbittorrent import QbitOptions
from engine.testing import ClockDriver
from providers import JobNotFound
from providers._torrent import bencode

USER, PASSWORD = "arr", "qbit-pass-0123"
#: Wall seconds a test waits for what the fake clock drives.
DEADLINE = 60.0


def magnet(n: int, name: str, trackers: int = 0) -> str:
    """A magnet with a unique hash; ``trackers`` announce URLs make it long."""
    extra = "".join(f"&tr=udp%3A%2F%2Ftracker{i}.example.org%3A1337%2Fannounce" for i in
                    range(trackers))
    return f"magnet:?xt=urn:btih:{n:040x}&dn={name}{extra}"


def torrent_file(name: str, size: int = 1 << 20) -> tuple[bytes, str]:
    """A single-file .torrent and its info-hash."""
    info = {"name": name, "piece length": 1 << 18, "length": size,
            "pieces": b"\x00" * 20 * ((size + (1 << 18) - 1) // (1 << 18))}
    return bencode({"announce": "udp://tracker.example.org:1337", "info": info}), \
        hashlib.sha1(bencode(info)).hexdigest()


@pytest.fixture
def qbit(serve: ServeFactory) -> Served:
    """A daemon whose face wants USER/PASSWORD (and takes the API token as Bearer)."""
    return serve(qbittorrent=QbitOptions(username=USER, password=PASSWORD,
                                         session_timeout=10**9))


@pytest.fixture
def client(qbit: Served) -> Iterator[qbittorrentapi.Client]:
    made = qbittorrentapi.Client(host=qbit.url, username=USER, password=PASSWORD,
                                 REQUESTS_ARGS={"timeout": 30})
    yield made
    made.auth_log_out()


def until(check: Callable[[], Any], clock: Any, what: str) -> Any:
    """Drive the fake clock until ``check()`` gives something true; returns it."""
    deadline = time.monotonic() + DEADLINE
    with ClockDriver(clock, step=0.5):
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
    raise AssertionError(f"timed out waiting for {what}")


def one(client: qbittorrentapi.Client, hash_: str) -> Any:
    found = client.torrents_info(torrent_hashes=hash_)
    return found[0] if found else None


def test_version_and_login(client: qbittorrentapi.Client, qbit: Served) -> None:
    assert client.app.web_api_version == "2.9.3"
    assert client.app.version.startswith("v4.")
    assert client.is_logged_in
    prefs = client.app.preferences
    assert prefs["dht"] is True and prefs["max_ratio_enabled"] is False
    assert prefs["save_path"] == str(qbit.roots[0])
    assert client.app.build_info["bitness"] == 64


def test_a_bad_login_fails_and_a_missing_session_is_403(qbit: Served) -> None:
    bad = qbittorrentapi.Client(host=qbit.url, username=USER, password="wrong",
                                REQUESTS_ARGS={"timeout": 30})
    with pytest.raises(qbittorrentapi.LoginFailed):
        bad.auth_log_in()
    raw = httpx.Client(base_url=qbit.url, timeout=30)
    assert raw.post("/api/v2/auth/login",
                    data={"username": USER, "password": "nope"}).text == "Fails."
    answer = raw.get("/api/v2/torrents/info")
    assert answer.status_code == 403
    # The version probe needs no session, and never answers 401.
    assert raw.get("/api/v2/app/webapiVersion").status_code == 200
    raw.close()


def test_an_expired_session_gets_403_and_the_client_logs_in_again(serve: ServeFactory) -> None:
    served = serve(qbittorrent=QbitOptions(username=USER, password=PASSWORD,
                                           session_timeout=600))
    raw = httpx.Client(base_url=served.url, timeout=30)
    assert raw.post("/api/v2/auth/login",
                    data={"username": USER, "password": PASSWORD}).text == "Ok."
    assert raw.get("/api/v2/torrents/info").status_code == 200
    served.clock.advance(601)
    assert raw.get("/api/v2/torrents/info").status_code == 403
    assert raw.post("/api/v2/auth/login",
                    data={"username": USER, "password": PASSWORD}).text == "Ok."
    assert raw.get("/api/v2/torrents/info").status_code == 200
    raw.close()
    client = qbittorrentapi.Client(host=served.url, username=USER, password=PASSWORD,
                                   REQUESTS_ARGS={"timeout": 30})
    assert client.torrents_info() == []
    served.clock.advance(601)
    assert client.torrents_info() == []  # a 403, then a new login, then the answer


def test_add_magnet_long_magnet_and_torrent_file(
    client: qbittorrentapi.Client, qbit: Served, tmp_path: Path
) -> None:
    client.torrents_create_category("tv")
    assert client.torrents_add(urls=magnet(1, "Show.S01E01"), category="tv") == "Ok."
    long_magnet = magnet(2, "Show.S01E02", trackers=25)
    assert len(long_magnet) > 1024
    data, torrent_hash = torrent_file("Movie.2024.mkv")
    path = tmp_path / "movie.torrent"
    path.write_bytes(data)
    # A file part makes the client send multipart: the long magnet rides along.
    assert client.torrents_add(urls=long_magnet, torrent_files=[str(path)],
                               category="tv") == "Ok."
    # The same long magnet from a raw multipart body, as Sonarr sends long fields.
    raw = httpx.Client(base_url=qbit.url, timeout=30, auth=(USER, PASSWORD))
    third = magnet(3, "Show.S01E03", trackers=25)
    answer = raw.post("/api/v2/torrents/add",
                      files={"urls": (None, third), "category": (None, "tv")})
    assert answer.text == "Ok."
    raw.close()
    hashes = {t.hash for t in client.torrents_info(category="tv")}
    assert hashes == {f"{1:040x}", f"{2:040x}", f"{3:040x}", torrent_hash}
    # Case-insensitive everywhere: an upper-case hash finds the item.
    assert client.torrents_properties(torrent_hash.upper())["name"] == "Movie.2024.mkv"
    assert client.torrents_info(category="other") == []
    assert len(client.torrents_info()) == 4


def test_junk_is_fails_and_nothing_is_kept(client: qbittorrentapi.Client, qbit: Served) -> None:
    assert client.torrents_add(urls="ftp://nowhere/x.torrent") == "Fails."
    assert client.torrents_add(urls="magnet:?xt=urn:btih:zz") == "Fails."
    assert client.torrents_info() == []
    assert qbit.engine.list_jobs() == []
    reasons = [r["reason"] for r in qbit.daemon.app.state.qbit_face.refusals]
    assert any("not a magnet" in r for r in reasons)
    assert any("not a valid torrent" in r for r in reasons)


def test_a_job_reaches_paused_up_with_its_files_at_content_path(
    client: qbittorrentapi.Client, qbit: Served
) -> None:
    client.torrents_create_category("tv")
    hash_ = f"{7:040x}"
    assert client.torrents_add(urls=magnet(7, "Pack.S01"), category="tv") == "Ok."
    first = one(client, hash_)
    assert first.state in ("queuedDL", "metaDL", "downloading")
    assert first.progress < 1
    done = until(lambda: (t := one(client, hash_)) is not None and t.state == "pausedUP" and t,
                 qbit.clock, "pausedUP")
    assert done.progress == 1
    assert done.amount_left == 0
    assert done.ratio >= done.ratio_limit  # removable after import
    save = Path(done.save_path)
    content = Path(done.content_path)
    assert save == qbit.roots[0] / "tv"
    assert content != save and save in content.parents
    on_disk = sorted(p for p in content.rglob("*") if p.is_file())
    assert on_disk, "the files are on disk at content_path"
    job = qbit.engine.list_jobs()[0]
    assert {Path(f.local_path) for f in job.files if f.selected} == set(on_disk)
    assert all(f.verified for f in job.files if f.selected)
    files = client.torrents_files(hash_)
    assert len(files) == len(job.files)
    assert all(f.progress == 1 for f in files)
    assert all((save / f.name).is_file() for f in files)
    props = client.torrents_properties(hash_)
    assert props["save_path"] == str(save)
    assert props["completion_date"] > 0


def test_delete_without_files_keeps_them_and_with_files_removes_them(
    client: qbittorrentapi.Client, qbit: Served
) -> None:
    for n in (11, 12):
        client.torrents_add(urls=magnet(n, f"Item{n}"))
    hashes = [f"{11:040x}", f"{12:040x}"]

    def both_done() -> bool:
        return all((t := one(client, h)) is not None and t.state == "pausedUP" for h in hashes)

    until(both_done, qbit.clock, "both done")
    kept = Path(one(client, hashes[0]).content_path)
    gone = Path(one(client, hashes[1]).content_path)
    client.torrents_delete(delete_files=False, torrent_hashes=hashes[0])
    client.torrents_delete(delete_files=True, torrent_hashes=hashes[1])
    assert client.torrents_info() == []
    assert kept.exists() and any(kept.rglob("*"))
    assert not gone.exists()
    assert qbit.engine.list_jobs() == []  # the jobs are forgotten too


def test_delete_of_a_running_job_cancels_it(client: qbittorrentapi.Client, qbit: Served) -> None:
    client.torrents_add(urls=magnet(21, "Running"))
    job = qbit.engine.list_jobs()[0]
    client.torrents_delete(delete_files=True, torrent_hashes=f"{21:040x}")
    assert client.torrents_info() == []
    with pytest.raises(JobNotFound):
        qbit.engine.get_job(job.id)


def test_categories_and_set_category(client: qbittorrentapi.Client, qbit: Served) -> None:
    client.torrents_create_category("tv")
    client.torrents_create_category("movies", save_path=str(qbit.roots[0] / "films"))
    cats = client.torrents_categories()
    assert cats["tv"]["savePath"] == str(qbit.roots[0] / "tv")
    assert cats["movies"]["savePath"] == str(qbit.roots[0] / "films")
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_create_category("tv")
    with pytest.raises(qbittorrentapi.exceptions.HTTPError):
        client.torrents_create_category("out", save_path="/etc")
    client.torrents_edit_category("tv", save_path=str(qbit.roots[0] / "series"))
    assert client.torrents_categories()["tv"]["savePath"] == str(qbit.roots[0] / "series")
    client.torrents_add(urls=magnet(31, "Cat"), category="tv")
    hash_ = f"{31:040x}"
    client.torrents_set_category("movies", torrent_hashes=hash_)
    assert one(client, hash_).category == "movies"
    with pytest.raises(qbittorrentapi.Conflict409Error):
        client.torrents_set_category("nope", torrent_hashes=hash_)
    client.torrents_remove_categories("movies")
    assert "movies" not in client.torrents_categories()
    assert one(client, hash_).category == ""
    # An add naming an unknown category makes it, as qBittorrent does.
    client.torrents_add(urls=magnet(32, "New"), category="anime")
    assert "anime" in client.torrents_categories()


def test_tags(client: qbittorrentapi.Client) -> None:
    client.torrents_add(urls=magnet(41, "Tagged"), tags="a,b")
    hash_ = f"{41:040x}"
    assert one(client, hash_).tags == "a, b"
    client.torrents_add_tags("c", torrent_hashes=hash_)
    client.torrents_remove_tags("a", torrent_hashes=hash_)
    assert one(client, hash_).tags == "b, c"
    client.torrents_create_tags("spare")
    assert set(client.torrents_tags()) == {"b", "c", "spare"}
    client.torrents_delete_tags("b")
    assert one(client, hash_).tags == "c"
    assert len(client.torrents_info(tag="c")) == 1
    assert client.torrents_info(tag="b") == []


def test_sync_maindata_full_then_increments(client: qbittorrentapi.Client, qbit: Served) -> None:
    full = client.sync_maindata(rid=0)
    assert full["full_update"] is True and full["torrents"] == {}
    client.torrents_add(urls=magnet(51, "Synced"), category="tv")
    hash_ = f"{51:040x}"
    step = client.sync_maindata(rid=full["rid"])
    assert "full_update" not in step
    assert set(step["torrents"]) == {hash_}
    assert step["torrents"][hash_]["name"] == "Synced"
    assert "tv" in step["categories"]
    quiet = client.sync_maindata(rid=step["rid"])
    assert hash_ not in quiet.get("torrents", {})  # nothing changed
    client.torrents_delete(delete_files=True, torrent_hashes=hash_)
    removed = client.sync_maindata(rid=quiet["rid"])
    assert removed["torrents_removed"] == [hash_]
    assert client.sync_maindata(rid=10**6)["full_update"] is True  # an unknown rid


def test_paused_add_waits_until_resumed(client: qbittorrentapi.Client, qbit: Served) -> None:
    client.torrents_add(urls=magnet(61, "Later"), is_paused=True)
    hash_ = f"{61:040x}"
    assert one(client, hash_).state == "pausedDL"
    assert qbit.engine.list_jobs() == []
    client.torrents_resume(torrent_hashes=hash_)
    assert len(qbit.engine.list_jobs()) == 1
    assert one(client, hash_).state in ("queuedDL", "metaDL", "downloading")


def test_no_ops_and_reads_by_get_and_post(client: qbittorrentapi.Client, qbit: Served) -> None:
    client.torrents_add(urls=magnet(71, "Noop"))
    hash_ = f"{71:040x}"
    client.torrents_top_priority(torrent_hashes=hash_)
    client.torrents_bottom_priority(torrent_hashes=hash_)
    client.torrents_set_force_start(True, torrent_hashes=hash_)
    client.torrents_set_share_limits(ratio_limit=1, seeding_time_limit=-1,
                                     inactive_seeding_time_limit=-1, torrent_hashes=hash_)
    client.torrents_pause(torrent_hashes=hash_)
    assert client.transfer_info()["connection_status"] == "connected"
    raw = httpx.Client(base_url=qbit.url, timeout=30, auth=(USER, PASSWORD))
    for path in ("torrents/info", "app/preferences", "torrents/categories", "sync/maindata",
                 "transfer/info", "app/version"):
        assert raw.get(f"/api/v2/{path}").status_code == 200, path
        assert raw.post(f"/api/v2/{path}").status_code == 200, path
    assert raw.get("/api/v2/torrents/delete").status_code == 405
    assert raw.get("/api/v2/torrents/properties", params={"hash": "0" * 40}).status_code == 404
    raw.close()


def test_bearer_key_and_basic_are_accepted(qbit: Served) -> None:
    bearer = httpx.Client(base_url=qbit.url, timeout=30,
                          headers={"Authorization": f"Bearer {qbit.daemon.options.token}"})
    assert bearer.get("/api/v2/torrents/info").status_code == 200
    basic = httpx.Client(base_url=qbit.url, timeout=30, auth=(USER, PASSWORD))
    assert basic.get("/api/v2/torrents/info").status_code == 200
    wrong = httpx.Client(base_url=qbit.url, timeout=30, auth=(USER, "bad"))
    assert wrong.get("/api/v2/torrents/info").status_code == 403
    for c in (bearer, basic, wrong):
        c.close()


def test_a_browser_page_elsewhere_cannot_add(qbit: Served) -> None:
    raw = httpx.Client(base_url=qbit.url, timeout=30)
    raw.post("/api/v2/auth/login", data={"username": USER, "password": PASSWORD})
    answer = raw.post("/api/v2/torrents/add", data={"urls": magnet(81, "X")},
                      headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    assert raw.get("/api/v2/torrents/info").json() == []
    raw.close()


def test_the_face_under_a_prefix(serve: ServeFactory) -> None:
    served = serve(token=None, qbittorrent=QbitOptions(prefix="/qbit"))
    raw = httpx.Client(base_url=served.url, timeout=30)
    assert raw.get("/qbit/api/v2/app/webapiVersion").text == "2.9.3"
    # Auth off on loopback and no credentials: the face is open.
    assert raw.post("/qbit/api/v2/torrents/add", data={"urls": magnet(91, "P")}).text == "Ok."
    assert len(raw.get("/api/v2/torrents/info").json()) == 1
    raw.close()


def test_web_api_2_11_uses_qbittorrent_5_names(serve: ServeFactory) -> None:
    served = serve(token=None, qbittorrent=QbitOptions(api_version="2.11.2"))
    client = qbittorrentapi.Client(host=served.url, REQUESTS_ARGS={"timeout": 30})
    assert client.app.version.startswith("v5.")
    client.torrents_add(urls=magnet(95, "Five"), is_stopped=True)
    assert one(client, f"{95:040x}").state == "stoppedDL"
    client.torrents_start(torrent_hashes=f"{95:040x}")
    done = until(lambda: (t := one(client, f"{95:040x}")) is not None
                 and t.state == "stoppedUP" and t, served.clock, "stoppedUP")
    assert done.progress == 1


def test_torrent_urls_are_fetched_and_a_redirect_to_a_magnet_is_followed(
    client: qbittorrentapi.Client,
) -> None:
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    data, torrent_hash = torrent_file("Fetched.mkv")
    redirected = magnet(99, "Redirected")

    class Tracker(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/file.torrent":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif self.path == "/go":
                self.send_response(302)
                self.send_header("Location", redirected)
                self.end_headers()
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tracker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert client.torrents_add(urls=f"{base}/file.torrent\n{base}/go") == "Ok."
        assert client.torrents_add(urls=f"{base}/missing") == "Fails."
    finally:
        server.shutdown()
        server.server_close()
    assert {t.hash for t in client.torrents_info()} == {torrent_hash, f"{99:040x}"}
