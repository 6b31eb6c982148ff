"""FakeTorBox's lists, controls, links and cache checks, spoken to with plain httpx."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest
from fake_torbox_helpers import API, HASH, add_magnet, data

from engine.testing.torbox import FakeTorBox
from providers import FakeClock


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeTorBox]:
    server = FakeTorBox(clock=clock).start()
    yield server
    server.stop()


# -- lists ------------------------------------------------------------------------


def test_mylist_with_id_is_an_object_and_pages_by_offset_and_limit(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    for n in range(5):
        fake.add_item("torrent", f"{n:040x}")
    one = data(client.get(f"{API}/torrents/mylist", params={"id": 3}))
    assert isinstance(one, dict) and one["id"] == 3
    page = data(client.get(f"{API}/torrents/mylist", params={"offset": 1, "limit": 2}))
    assert [i["id"] for i in page] == [4, 3]  # newest first
    assert client.get(f"{API}/torrents/mylist", params={"id": 99}).json()["error"] == (
        "ITEM_NOT_FOUND"
    )


def test_items_follow_their_lifecycle_on_the_injected_clock(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock
) -> None:
    fake.settings.step_seconds = 10.0
    add_magnet(client)
    states = []
    for _ in range(5):
        item = data(client.get(f"{API}/torrents/mylist", params={"id": 1, "bypass_cache": 1}))
        states.append((item["download_state"], item["progress"], item["download_finished"]))
        clock.advance(10.0)
    assert states[0] == ("metaDL", 0.0, False) and states[1] == ("downloading", 0.0, False)
    assert states[2] == ("downloading", 0.5, False) and states[-1] == ("completed", 1.0, True)


def test_every_item_field_of_the_facts_is_present(client: httpx.Client, fake: FakeTorBox) -> None:
    fake.add_cached(HASH)
    add_magnet(client)
    item = data(client.get(f"{API}/torrents/mylist", params={"id": 1, "bypass_cache": 1}))
    for field in (
        "id",
        "hash",
        "name",
        "magnet",
        "size",
        "active",
        "auth_id",
        "server",
        "torrent_file",
        "created_at",
        "updated_at",
        "expires_at",
        "cached_at",
        "download_state",
        "progress",
        "download_speed",
        "upload_speed",
        "eta",
        "seeds",
        "peers",
        "ratio",
        "availability",
        "download_finished",
        "download_present",
        "inactive_check",
        "cached",
        "owner",
        "seed_torrent",
        "allow_zipped",
        "long_term_seeding",
        "private",
        "tracker",
        "alternative_hashes",
        "tags",
        "files",
    ):
        assert field in item, field
    file = item["files"][0]
    assert set(file) >= {"id", "name", "short_name", "size", "mimetype", "md5", "s3_path"}
    assert item["created_at"].endswith("+00:00")
    fake.settings.date_style = "z"
    again = data(client.get(f"{API}/torrents/mylist", params={"id": 1, "bypass_cache": 1}))
    assert again["created_at"].endswith("Z")


def test_web_download_lists_go_stale_for_a_few_seconds(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock
) -> None:
    assert data(client.get(f"{API}/webdl/mylist")) == []
    fake.add_item("webdl", "https://files.example/x.bin")
    assert data(client.get(f"{API}/webdl/mylist")) == []
    clock.advance(5.0)
    assert len(data(client.get(f"{API}/webdl/mylist"))) == 1


def test_unknown_state_scenario_shows_the_configured_string(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock
) -> None:
    fake.settings.unknown_state = "brandNewState"
    fake.set_scenario(HASH, "unknown_state")
    add_magnet(client)
    clock.advance(2.5)
    assert fake.state_of("torrent", 1) == "brandNewState"
    with pytest.raises(ValueError, match="unknown"):
        fake.set_scenario(HASH, "no-such-scenario")


# -- control ----------------------------------------------------------------------


def test_controltorrent_pauses_resumes_reannounces_and_deletes(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock
) -> None:
    add_magnet(client)
    control = f"{API}/torrents/controltorrent"
    clock.advance(3.0)
    assert client.post(control, json={"torrent_id": 1, "operation": "pause"}).status_code == 200
    assert fake.state_of("torrent", 1) == "paused"
    clock.advance(100.0)
    assert client.post(control, json={"torrent_id": 1, "operation": "resume"}).status_code == 200
    assert fake.state_of("torrent", 1) == "downloading"
    assert client.post(control, json={"torrent_id": 1, "operation": "reannounce"}).is_success
    bad = client.post(control, json={"torrent_id": 1, "operation": "explode"})
    assert (bad.status_code, bad.json()["error"]) == (400, "INVALID_OPTION")
    assert client.post(control, json={"torrent_id": 1}).status_code == 422
    assert client.post(control, content=b"id=1&operation=delete").status_code == 422
    assert client.post(control, json={"torrent_id": 1, "operation": "delete"}).is_success
    gone = client.post(control, json={"torrent_id": 1, "operation": "delete"})
    assert (gone.status_code, gone.json()["error"]) == (404, "ITEM_NOT_FOUND")


def test_webdl_uses_webdl_id_to_control_and_web_id_to_request(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    link = "https://files.example/movie.mkv"
    fake.add_cached(link)
    created = data(client.post(f"{API}/webdl/createwebdownload", data={"link": link}))
    assert created["webdownload_id"] == "1"  # a string, as PYSDK types it
    assert created["hash"] == hashlib.md5(link.encode()).hexdigest()
    request = f"{API}/webdl/requestdl"
    assert client.get(request, params={"token": fake.api_key, "webdl_id": 1}).status_code == 422
    assert data(client.get(request, params={"token": fake.api_key, "web_id": 1})).startswith("http")
    wrong = client.post(
        f"{API}/webdl/controlwebdownload", json={"web_id": 1, "operation": "delete"}
    )
    assert wrong.json()["error"] == "MISSING_REQUIRED_OPTION"
    right = client.post(
        f"{API}/webdl/controlwebdownload", json={"webdl_id": 1, "operation": "delete"}
    )
    assert right.is_success and fake.items() == []
    assert client.post(f"{API}/webdl/createwebdownload", data={}).status_code == 422


# -- links --------------------------------------------------------------------------


def ready_torrent(client: httpx.Client, fake: FakeTorBox) -> None:
    fake.add_cached(HASH, files=[("S/a.mkv", 5000), ("S/b.nfo", 10)])
    add_magnet(client)


def test_requestdl_gives_a_cdn_url_that_serves_ranges_and_expires(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock
) -> None:
    ready_torrent(client, fake)
    params = {"token": fake.api_key, "torrent_id": 1, "file_id": 0}
    url = data(client.get(f"{API}/torrents/requestdl", params=params))
    assert url.startswith(f"{fake.url}/dld/") and fake.api_key not in url
    whole = httpx.get(url)
    assert whole.status_code == 200 and len(whole.content) == 5000
    listed = data(client.get(f"{API}/torrents/mylist", params={"id": 1, "bypass_cache": 1}))
    assert hashlib.md5(whole.content).hexdigest() == listed["files"][0]["md5"]
    part = httpx.get(url, headers={"Range": "bytes=-10"})
    assert (part.status_code, part.content) == (206, whole.content[-10:])
    assert httpx.head(url).headers["Content-Length"] == "5000"
    clock.advance(3 * 3600.0)  # 3 h to start a download (PYSDK)
    expired = httpx.get(url)
    assert (expired.status_code, expired.text) == (403, "Invalid Presigned Token")


def test_requestdl_with_redirect_answers_307_not_302(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    ready_torrent(client, fake)
    params = {"token": fake.api_key, "torrent_id": 1, "file_id": 1, "redirect": "true"}
    answer = client.get(f"{API}/torrents/requestdl", params=params)
    assert answer.status_code == 307 and answer.headers["Location"].startswith(fake.url)


def test_requestdl_checks_its_token_readiness_and_file(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    ready_torrent(client, fake)
    add_magnet(client, f"magnet:?xt=urn:btih:{'2' * 40}")
    path = f"{API}/torrents/requestdl"
    assert (
        httpx.get(f"{fake.url}{path}", params={"token": "x", "torrent_id": 1}).json()["error"]
        == "BAD_TOKEN"
    )
    assert client.get(path, params={"torrent_id": 1}).status_code == 422  # token required
    not_ready = client.get(path, params={"token": fake.api_key, "torrent_id": 2})
    assert not_ready.status_code == 400
    no_file = client.get(path, params={"token": fake.api_key, "torrent_id": 1, "file_id": 9})
    assert no_file.json()["error"] == "ITEM_NOT_FOUND"
    zipped = client.get(path, params={"token": fake.api_key, "torrent_id": 1, "zip_link": "true"})
    assert len(httpx.get(data(zipped)).content) == 5010


def test_scripted_requestdl_failures(client: httpx.Client, fake: FakeTorBox) -> None:
    ready_torrent(client, fake)
    fake.fail_requestdl(2)
    params = {"token": fake.api_key, "torrent_id": 1}
    for _ in range(2):
        failed = client.get(f"{API}/torrents/requestdl", params=params)
        assert (failed.status_code, failed.json()["error"]) == (500, "DATABASE_ERROR")
    assert client.get(f"{API}/torrents/requestdl", params=params).is_success


# -- cache checks -------------------------------------------------------------------


def test_checkcached_by_get_and_post_in_object_and_list_format(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    fake.add_cached(HASH, name="Hit")
    path = f"{API}/torrents/checkcached"
    hashes = f"{'9' * 40},{HASH.upper()}"
    by_object = data(client.get(path, params=[("hash", hashes), ("hash", "8" * 40)]))
    assert list(by_object) == [HASH] and by_object[HASH]["name"] == "Hit"
    by_list = data(client.get(path, params={"hash": HASH, "format": "list", "list_files": "true"}))
    assert by_list[0]["hash"] == HASH and by_list[0]["files"][0]["name"].startswith("Hit/")
    posted = data(client.post(path, json={"hashes": [HASH, "7" * 40]}))
    assert list(posted) == [HASH]
    assert client.get(path, params={"hash": "7" * 40}).json()["data"] is None
    fake.settings.empty_cached_data = {}
    assert client.get(path, params={"hash": "7" * 40}).json()["data"] == {}
    assert client.get(path).status_code == 422
    assert client.get(path, params={"hash": HASH, "format": "xml"}).status_code == 422


def test_webdl_checkcached_uses_the_md5_of_the_link(client: httpx.Client, fake: FakeTorBox) -> None:
    link = "https://files.example/cached.bin"
    fake.add_cached(link)
    digest = hashlib.md5(link.encode()).hexdigest()
    assert list(data(client.get(f"{API}/webdl/checkcached", params={"hash": digest}))) == [digest]
