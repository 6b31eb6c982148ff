"""FakeTorBox on its own, spoken to with plain httpx: it behaves as the facts sheet says."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator

import httpx
import pytest
from fake_torbox_helpers import API, HASH, MAGNET, add_magnet, data

from engine.testing.torbox import FakeTorBox
from providers import FakeClock
from providers._torrent import bencode


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeTorBox]:
    server = FakeTorBox(clock=clock).start()
    yield server
    server.stop()


# -- envelope, routes, auth -----------------------------------------------------


def test_answers_use_the_envelope_and_unknown_routes_say_endpoint_not_found(
    client: httpx.Client,
) -> None:
    ok = client.get(f"{API}/user/me").json()
    assert set(ok) == {"success", "error", "detail", "data"} and ok["error"] is None
    missing = client.get(f"{API}/torrents/nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "success": False,
        "error": "ENDPOINT_NOT_FOUND",
        "detail": "Endpoint not found. Please check the URL and try again.",
        "data": None,
    }
    assert client.delete(f"{API}/user/me").status_code == 405


def test_missing_and_wrong_keys_are_no_auth_and_bad_token(fake: FakeTorBox) -> None:
    assert httpx.get(f"{fake.url}{API}/user/me").json()["error"] == "NO_AUTH"
    wrong = httpx.get(f"{fake.url}{API}/user/me", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (403, "BAD_TOKEN")
    fake.settings.auth_status = 401
    assert httpx.get(f"{fake.url}{API}/user/me").status_code == 401
    assert httpx.get(f"{fake.url}/").json()["success"] is True  # status needs no auth


def test_user_me_has_the_documented_fields(client: httpx.Client, fake: FakeTorBox) -> None:
    fake.settings.plan = 1
    me = data(client.get(f"{API}/user/me", params={"settings": "true"}))
    for field in (
        "id",
        "auth_id",
        "plan",
        "premium_expires_at",
        "cooldown_until",
        "email",
        "additional_concurrent_slots",
        "is_subscribed",
        "settings",
    ):
        assert field in me
    assert me["plan"] == 1


# -- creating -------------------------------------------------------------------


def test_createtorrent_takes_multipart_or_urlencoded_and_answers_the_ids(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    created = data(add_magnet(client))
    assert created == {"torrent_id": 1, "hash": HASH, "auth_id": fake.account.auth_id}
    form = client.post(
        f"{API}/torrents/createtorrent",
        data={"magnet": f"magnet:?xt=urn:btih:{'d' * 40}", "seed": "3", "allow_zip": "False"},
    )
    assert data(form)["torrent_id"] == 2  # urlencoded (DECY, TBNET) and C# booleans
    assert [i.name for i in fake.items()] == ["Some.Show", "Torrent dddddddd"]


def test_createtorrent_with_a_torrent_file_reads_its_hash_and_name(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    info = {b"name": b"Upload", b"piece length": 16384, b"pieces": b"\0" * 20, b"length": 5}
    raw = bencode({b"info": info})
    answer = client.post(
        f"{API}/torrents/createtorrent",
        files={"file": ("x.torrent", raw, "application/x-bittorrent")},
    )
    assert data(answer)["hash"] == hashlib.sha1(bencode(info)).hexdigest()
    assert fake.items()[0].torrent_file and fake.items()[0].name == "Upload"


PACK_INFO = {
    b"name": b"Pack",
    b"piece length": 16384,
    b"pieces": b"\0" * 20,
    b"files": [
        {b"length": 1234, b"path": [b"a.mkv"]},
        {b"length": 56, b"path": [b"Subs", b"b.srt"]},
    ],
}


@pytest.mark.parametrize("as_queued", ["false", "true"])
def test_an_uploaded_torrent_gives_the_item_its_own_files_not_invented_ones(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock, as_queued: str
) -> None:
    raw = bencode({b"info": PACK_INFO, b"announce": b"http://tracker.example/a"})
    answer = client.post(
        f"{API}/torrents/createtorrent",
        files={"file": ("x.torrent", raw, "application/x-bittorrent")},
        data={"as_queued": as_queued},
    )
    info_hash = hashlib.sha1(bencode(PACK_INFO)).hexdigest()
    assert data(answer)["hash"] == info_hash
    if as_queued == "true":  # the queue keeps them until a slot takes the item
        fake.account.promote(fake.account.queue[data(answer)["queued_id"]])
    clock.advance(60.0)  # past metaDL: the files are listed
    item = data(client.get(f"{API}/torrents/mylist", params={"id": 1, "bypass_cache": "true"}))
    assert (item["hash"], item["name"]) == (info_hash, "Pack")
    # TorBox's file names carry the top folder (facts: "Folder/file.ext").
    assert [(f["name"], f["short_name"], f["size"]) for f in item["files"]] == [
        ("Pack/a.mkv", "a.mkv", 1234),
        ("Pack/Subs/b.srt", "b.srt", 56),
    ]
    assert item["size"] == 1234 + 56


def test_an_uploaded_single_file_torrent_has_that_one_file(
    client: httpx.Client, clock: FakeClock
) -> None:
    info = {b"name": b"Film.mkv", b"piece length": 16384, b"pieces": b"\0" * 20, b"length": 77}
    upload = {"file": ("f.torrent", bencode({b"info": info}))}
    assert data(client.post(f"{API}/torrents/createtorrent", files=upload))["torrent_id"] == 1
    clock.advance(60.0)
    item = data(client.get(f"{API}/torrents/mylist", params={"id": 1, "bypass_cache": "true"}))
    assert [(f["name"], f["size"]) for f in item["files"]] == [("Film.mkv", 77)]


def test_an_upload_whose_info_has_no_files_or_length_is_bozo(client: httpx.Client) -> None:
    info = {b"name": b"Broken", b"piece length": 16384, b"pieces": b"\0" * 20}
    answer = client.post(
        f"{API}/torrents/createtorrent", files={"file": ("b.torrent", bencode({b"info": info}))}
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "BOZO_TORRENT")


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        ({}, 400, "MISSING_REQUIRED_OPTION"),
        ({"magnet": "magnet:?dn=nohash"}, 400, "BOZO_TORRENT"),
        ({"magnet": MAGNET, "seed": "9"}, 400, "INVALID_OPTION"),
    ],
)
def test_bad_creations_answer_documented_errors(
    client: httpx.Client, fields: dict[str, str], status: int, error: str
) -> None:
    answer = client.post(f"{API}/torrents/createtorrent", data=fields)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    if error == "MISSING_REQUIRED_OPTION":  # the wording seen live (nzbhydra2#1049)
        assert answer.json()["detail"] == "You must provide either a file or magnet link."


def test_magnet_and_file_together_are_too_many_options(client: httpx.Client) -> None:
    answer = client.post(
        f"{API}/torrents/createtorrent",
        files={"magnet": (None, MAGNET), "file": ("a.torrent", b"d4:infod4:name1:aee")},
    )
    assert answer.json()["error"] == "TOO_MANY_OPTIONS"


def test_bad_parameter_types_get_fastapi_422_bodies(client: httpx.Client) -> None:
    answer = add_magnet(client, seed="lots", as_queued="maybe")
    assert answer.status_code == 422
    assert [(e["loc"], e["type"]) for e in answer.json()["detail"]] == [
        (["body", "seed"], "int_parsing"),
        (["body", "as_queued"], "bool_parsing"),
    ]
    listing = client.get(f"{API}/torrents/mylist", params={"offset": "x"})
    assert listing.json()["detail"][0]["loc"] == ["query", "offset"]


def test_a_duplicate_hash_returns_the_existing_item(client: httpx.Client, fake: FakeTorBox) -> None:
    first, second = data(add_magnet(client)), data(add_magnet(client))
    assert first["torrent_id"] == second["torrent_id"] and fake.hash_counts() == {HASH: 1}


def test_a_cached_hash_is_found_cached_and_done_at_once(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    fake.add_cached(HASH, name="Cached.Show", files=[("Cached.Show/a.mkv", 1000)])
    answer = add_magnet(client).json()
    assert answer["detail"].startswith("Found Cached Torrent")
    item = data(client.get(f"{API}/torrents/mylist", params={"id": 1, "bypass_cache": "true"}))
    assert (item["download_state"], item["download_present"], item["progress"]) == (
        "cached",
        True,
        1,
    )
    assert item["files"][0]["name"] == "Cached.Show/a.mkv"


def test_add_only_if_cached_refuses_an_uncached_hash(client: httpx.Client) -> None:
    answer = add_magnet(client, add_only_if_cached="true")
    assert (answer.status_code, answer.json()["error"]) == (400, "DOWNLOAD_NOT_CACHED")


def test_slots_full_answer_active_limit_with_the_counts(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    fake.settings.active_limit = 1
    add_magnet(client)
    refused = add_magnet(client, f"magnet:?xt=urn:btih:{'e' * 40}").json()
    assert refused["error"] == "ACTIVE_LIMIT"
    assert refused["data"] == {"active_limit": 1, "current_active_downloads": 1}
    fake.settings.active_limit_style = "null_error"
    assert add_magnet(client, f"magnet:?xt=urn:btih:{'e' * 40}").json()["error"] is None


def test_queued_items_are_only_in_getqueued_and_start_when_a_slot_frees(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock
) -> None:
    fake.settings.active_limit = 1
    add_magnet(client)
    queued = data(add_magnet(client, f"magnet:?xt=urn:btih:{'f' * 40}", as_queued="true"))
    assert set(queued) == {"queued_id", "hash", "auth_id"}
    listed = data(client.get(f"{API}/torrents/mylist", params={"bypass_cache": "true"}))
    assert [i["hash"] for i in listed] == [HASH]
    waiting = data(client.get(f"{API}/queued/getqueued", params={"type": "torrent"}))
    assert [(q["id"], q["type"], q["hash"]) for q in waiting] == [(1, "torrent", "f" * 40)]
    clock.advance(20.0)  # the first finished at 6 s: the queued one started then
    assert data(client.get(f"{API}/queued/getqueued")) == []
    started = data(client.get(f"{API}/torrents/mylist", params={"id": 2, "bypass_cache": "true"}))
    assert started["hash"] == "f" * 40 and started["download_finished"] is True


def test_as_queued_is_ignored_on_the_free_plan(client: httpx.Client, fake: FakeTorBox) -> None:
    fake.settings.plan = 0
    assert "torrent_id" in data(add_magnet(client, as_queued="true"))


def test_controlqueued_deletes_and_starts_but_not_start_all(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    fake.settings.active_limit = 0
    add_magnet(client, as_queued="true")
    add_magnet(client, f"magnet:?xt=urn:btih:{'1' * 40}", as_queued="true")
    control = f"{API}/queued/controlqueued"
    assert client.post(control, json={"operation": "start", "all": True}).status_code == 400
    start = client.post(control, json={"queued_id": 1, "operation": "start"})
    assert start.json()["error"] == "ACTIVE_LIMIT"  # no free slot to start it in
    assert client.post(control, json={"queued_id": 2, "operation": "delete"}).is_success
    fake.settings.active_limit = 5
    client.get(f"{API}/user/me")  # any request: TorBox starts what fits
    assert fake.queued() == [] and [i.hash for i in fake.items()] == [HASH]


def test_legacy_queue_routes_are_gone(client: httpx.Client) -> None:
    answer = client.get(f"{API}/torrents/getqueued")
    assert (answer.status_code, answer.json()["error"]) == (410, "DEPRECATED")


# -- limits ---------------------------------------------------------------------------


def test_more_than_300_requests_a_minute_get_429_with_retry_after(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock
) -> None:
    for _ in range(300):
        assert client.get(f"{API}/user/me").status_code == 200
    clock.advance(15.0)
    limited = client.get(f"{API}/user/me")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "45"
    assert limited.json() == {
        "success": False,
        "error": "RATE_LIMIT_EXCEEDED",
        "detail": "300 per 1 minute",
        "data": None,
    }
    clock.advance(45.0)
    assert client.get(f"{API}/user/me").status_code == 200


def test_creations_are_limited_to_10_a_minute_and_60_an_hour(
    client: httpx.Client, fake: FakeTorBox, clock: FakeClock
) -> None:
    fake.settings.active_limit = 1000
    statuses = [add_magnet(client, f"magnet:?xt=urn:btih:{n:040x}").status_code for n in range(11)]
    assert statuses == [200] * 10 + [429]
    for minute in range(1, 6):
        clock.advance(60.0)
        for n in range(10):
            add_magnet(client, f"magnet:?xt=urn:btih:{minute * 100 + n:040x}")
    clock.advance(60.0)
    hourly = add_magnet(client, f"magnet:?xt=urn:btih:{'a' * 40}")
    assert hourly.status_code == 429 and hourly.json()["detail"] == "60 per 1 hour"
    assert fake.counts["createtorrent"] == 11 + 50 + 1 and len(fake.items()) == 60


# -- control API and counters ----------------------------------------------------------


def test_stats_and_faults_through_the_control_routes(
    client: httpx.Client, fake: FakeTorBox
) -> None:
    add_magnet(client)
    client.get(f"{API}/torrents/mylist", params={"bypass_cache": "true"})
    stats = httpx.get(f"{fake.url}/__fake__/stats").json()
    assert stats["counts"]["createtorrent"] == 1 and stats["counts"]["mylist:bypass"] == 1
    assert stats["items"] == {"torrent": 1, "webdl": 0} and stats["slots"] == 10
    script = {"script": [{"kind": "error_5xx", "route": "user_me", "count": 1}]}
    assert httpx.post(f"{fake.url}/__fake__/faults", json=script).json() == {"ok": True}
    assert client.get(f"{API}/user/me").status_code == 503
    assert client.get(f"{API}/user/me").status_code == 200


def test_the_fake_starts_on_a_given_port_like_a_cli_would(clock: FakeClock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = FakeTorBox(port=port, clock=clock, api_key="cli-key").start()
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        me = httpx.get(f"{server.url}{API}/user/me", headers={"Authorization": "Bearer cli-key"})
        assert me.json()["success"] is True
        assert server.provider_options() == {"api_key": "cli-key", "base_url": server.url}
    finally:
        server.stop()
