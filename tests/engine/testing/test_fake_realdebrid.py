"""The fake Real-Debrid server against the facts sheet's checklist (section 8), over sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engine.testing.realdebrid import FakeRealDebrid, Scenario
from engine.testing.realdebrid._model import LINK_PREFIX
from providers import FakeClock
from providers._torrent import bencode, torrent_info_hash

TOKEN = "fake-rd-token"
HASH = "a" * 40
MAGNET = f"magnet:?xt=urn:btih:{HASH}&dn=Some.Show"


def magnet(info_hash: str, name: str = "Show") -> str:
    return f"magnet:?xt=urn:btih:{info_hash}&dn={name}"


def hex_hash(n: int) -> str:
    return f"{n:040x}"


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeRealDebrid]:
    server = FakeRealDebrid(clock=clock, step_seconds=1.0, download_steps=4)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(fake: FakeRealDebrid) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake.rest_url, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


def add(api: httpx.Client, link: str = MAGNET) -> str:
    response = api.post("/torrents/addMagnet", data={"magnet": link})
    assert response.status_code == 201, response.text
    torrent_id: str = response.json()["id"]
    return torrent_id


def info(api: httpx.Client, torrent_id: str) -> dict[str, Any]:
    response = api.get(f"/torrents/info/{torrent_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def select_all(api: httpx.Client, clock: FakeClock, torrent_id: str) -> None:
    clock.advance(1)
    assert api.post(f"/torrents/selectFiles/{torrent_id}", data={"files": "all"}).status_code == 204


# -- control API and auth -----------------------------------------------------------


def test_stats_route_answers_a_plain_httpx_client(fake: FakeRealDebrid, api: httpx.Client) -> None:
    add(api)
    api.get("/torrents")
    stats = httpx.get(f"{fake.url}/__fake__/stats").json()
    assert stats["counts"]["torrents_add_magnet"] == 1
    assert stats["counts"]["torrents"] == 1
    assert stats["torrents"] == 1
    assert stats["statuses"] == {"200": 1, "201": 1}


def test_missing_or_wrong_token_gets_401_bad_token(fake: FakeRealDebrid) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic " + TOKEN}):
        response = httpx.get(f"{fake.rest_url}/user", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "bad_token", "error_code": 8}


def test_auth_token_query_parameter_is_accepted(fake: FakeRealDebrid) -> None:
    response = httpx.get(f"{fake.rest_url}/user", params={"auth_token": TOKEN})
    assert response.status_code == 200
    assert response.json()["type"] == "premium"


def test_public_methods_need_no_token(fake: FakeRealDebrid) -> None:
    assert httpx.get(f"{fake.rest_url}/time").status_code == 200
    assert httpx.get(f"{fake.rest_url}/time/iso").status_code == 200
    assert httpx.get(f"{fake.rest_url}/hosts").status_code == 200
    check = httpx.post(f"{fake.rest_url}/unrestrict/check", data={"link": "https://h.example/f"})
    assert check.json()["supported"] == 1


def test_disable_access_token_revokes_it(fake: FakeRealDebrid, api: httpx.Client) -> None:
    assert api.get("/disable_access_token").status_code == 204
    assert api.get("/user").status_code == 401
    assert api.get("/disable_access_token").status_code == 401


def test_x_http_verb_header_overrides_the_method(api: httpx.Client) -> None:
    torrent_id = add(api)
    response = api.post(f"/torrents/delete/{torrent_id}", headers={"X-HTTP-Verb": "DELETE"})
    assert response.status_code == 204
    assert api.get(f"/torrents/info/{torrent_id}").status_code == 404


def test_unknown_method_and_wrong_verb_speak_rd(api: httpx.Client) -> None:
    assert api.get("/nope").json() == {"error": "unknown_method", "error_code": 3}
    wrong = api.get("/torrents/addMagnet")
    assert (wrong.status_code, wrong.json()["error_code"]) == (405, 4)


def test_free_account_is_refused_torrents_with_permission_denied(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    fake.premium_seconds = 0
    assert api.get("/user").json()["type"] == "free"
    response = api.post("/torrents/addMagnet", data={"magnet": MAGNET})
    assert (response.status_code, response.json()["error_code"]) == (403, 9)


def test_locked_account_gets_403_account_locked(fake: FakeRealDebrid, api: httpx.Client) -> None:
    fake.account_locked = True
    response = api.get("/user")
    assert (response.status_code, response.json()["error_code"]) == (403, 14)


# -- torrent lifecycle ----------------------------------------------------------------


def test_add_magnet_answers_201_and_starts_in_magnet_conversion(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    response = api.post("/torrents/addMagnet", data={"magnet": MAGNET})
    assert response.status_code == 201
    body = response.json()
    assert body["uri"] == f"{fake.rest_url}/torrents/info/{body['id']}"
    item = info(api, body["id"])
    assert item["status"] == "magnet_conversion"
    assert item["files"] == [] and item["filename"] == "Magnet"
    assert "seeders" in item


def test_magnet_waits_for_file_selection_after_conversion(
    api: httpx.Client, clock: FakeClock
) -> None:
    torrent_id = add(api)
    clock.advance(1)
    item = info(api, torrent_id)
    assert item["status"] == "waiting_files_selection"
    assert item["filename"] == "Some.Show"
    assert [f["id"] for f in item["files"]] == [1, 2, 3, 4]
    assert all(f["path"].startswith("/") and f["selected"] == 0 for f in item["files"])
    clock.advance(3600)  # nothing moves until selectFiles (rdt-client#92)
    assert info(api, torrent_id)["status"] == "waiting_files_selection"


def test_info_paths_start_at_the_torrent_root_without_the_top_folder(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    fake.set_scenario(hex_hash(1), Scenario(files=(("Pack/a.mkv", 10), ("Pack/Subs/b.srt", 5))))
    fake.set_scenario(hex_hash(2), Scenario(files=(("Film.mkv", 30),)))
    fake.set_scenario(hex_hash(3), Scenario(files=(("a.mkv", 1), ("Extras/b.mkv", 2))))
    pack, film, loose = (add(api, magnet(hex_hash(n))) for n in (1, 2, 3))
    clock.advance(1)
    paths = {tid: [f["path"] for f in info(api, tid)["files"]] for tid in (pack, film, loose)}
    assert paths[pack] == ["/a.mkv", "/Subs/b.srt"]  # "Pack/" is the torrent, not a path
    assert paths[film] == ["/Film.mkv"]  # a single-file torrent: its one file
    assert paths[loose] == ["/a.mkv", "/Extras/b.mkv"]  # no shared folder: nothing dropped
    default = add(api)  # the invented layout sits in a folder named after the torrent
    clock.advance(1)
    assert not any(
        f["path"].startswith("/Some.Show/") for f in info(api, default)["files"]
    )


def test_select_files_answers_204_then_202_action_already_done_when_repeated(
    api: httpx.Client, clock: FakeClock
) -> None:
    torrent_id = add(api)
    clock.advance(1)
    first = api.post(f"/torrents/selectFiles/{torrent_id}", data={"files": "1,3"})
    again = api.post(f"/torrents/selectFiles/{torrent_id}", data={"files": "1,3"})
    assert (first.status_code, again.status_code) == (204, 202)
    assert first.content == b""
    # The repeat carries RD's error body, not a bare 202 ([DOC] 202; code 31, Umbrella).
    assert again.json() == {"error": "action_already_done", "error_code": 31}
    item = info(api, torrent_id)
    assert [f["selected"] for f in item["files"]] == [1, 0, 1, 0]
    assert item["bytes"] == item["files"][0]["bytes"] + item["files"][2]["bytes"]
    assert item["original_bytes"] == sum(f["bytes"] for f in item["files"])


def test_select_files_refuses_empty_unknown_ids_and_early_calls(
    api: httpx.Client, clock: FakeClock
) -> None:
    torrent_id = add(api)
    early = api.post(f"/torrents/selectFiles/{torrent_id}", data={"files": "1"})
    assert early.status_code == 400  # still in magnet_conversion
    clock.advance(1)
    empty = api.post(f"/torrents/selectFiles/{torrent_id}", data={"files": ""})
    assert empty.json() == {
        "error": "parameter_missing",
        "error_details": "{files} is missing",
        "error_code": 1,
    }
    assert api.post(f"/torrents/selectFiles/{torrent_id}", data={"files": "99"}).status_code == 404
    missing = api.post("/torrents/selectFiles/NOPE", data={"files": "1"})
    assert missing.json() == {"error": "unknown_ressource", "error_code": 7}


def test_selected_torrent_queues_downloads_and_finishes_with_one_link_per_file(
    api: httpx.Client, clock: FakeClock
) -> None:
    torrent_id = add(api)
    clock.advance(1)
    api.post(f"/torrents/selectFiles/{torrent_id}", data={"files": "1,2"})
    assert info(api, torrent_id)["status"] == "queued"
    clock.advance(1)
    seen = []
    for _ in range(4):
        item = info(api, torrent_id)
        assert item["status"] == "downloading" and "speed" in item and "seeders" in item
        seen.append(item["progress"])
        clock.advance(1)
    assert seen == [0, 25, 50, 75]
    done = info(api, torrent_id)
    assert done["status"] == "downloaded" and done["progress"] == 100 and "ended" in done
    assert len(done["links"]) == 2
    assert all(link.startswith(LINK_PREFIX) and len(link) == 39 for link in done["links"])


def test_rar_scenario_compresses_then_lists_a_single_link(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(rar=True))
    torrent_id = add(api)
    select_all(api, clock, torrent_id)
    clock.advance(5)
    assert info(api, torrent_id)["status"] == "compressing"
    clock.advance(1)
    done = info(api, torrent_id)
    assert done["status"] == "downloaded" and len(done["links"]) == 1
    unrestricted = api.post("/unrestrict/link", data={"link": done["links"][0]}).json()
    assert unrestricted["filename"].endswith(".rar")


def test_late_links_scenario_lists_one_link_first(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    fake.set_scenario(HASH, Scenario(late_links=30))
    torrent_id = add(api)
    select_all(api, clock, torrent_id)
    clock.advance(5)
    assert len(info(api, torrent_id)["links"]) == 1
    clock.advance(30)
    assert len(info(api, torrent_id)["links"]) == 4


def test_cached_hash_skips_conversion_and_is_downloaded_on_selection(
    clock: FakeClock,
) -> None:
    with (
        FakeRealDebrid(clock=clock, cached=[HASH]) as fake,
        httpx.Client(base_url=fake.rest_url, headers={"Authorization": f"Bearer {TOKEN}"}) as api,
    ):
        torrent_id = add(api)
        assert info(api, torrent_id)["status"] == "waiting_files_selection"
        api.post(f"/torrents/selectFiles/{torrent_id}", data={"files": "all"})
        assert info(api, torrent_id)["status"] == "downloaded"


@pytest.mark.parametrize(
    ("outcome", "after", "status"),
    [
        ("magnet_error", 1, "magnet_error"),
        ("error", 4, "error"),
        ("virus", 6, "virus"),
        ("dead", 4, "dead"),
        ("stalled", 100, "downloading"),
        ("stuck_conversion", 100, "magnet_conversion"),
    ],
)
def test_failure_scenarios_reach_their_status(
    fake: FakeRealDebrid,
    api: httpx.Client,
    clock: FakeClock,
    outcome: Any,
    after: int,
    status: str,
) -> None:
    fake.set_scenario(HASH, Scenario(outcome=outcome))
    torrent_id = add(api)
    if outcome not in ("magnet_error", "stuck_conversion"):
        select_all(api, clock, torrent_id)
    clock.advance(after)
    item = info(api, torrent_id)
    assert item["status"] == status
    if outcome in ("stalled", "stuck_conversion"):
        assert item["seeders"] == 0


def test_add_torrent_takes_raw_bytes_and_knows_the_files_at_once(api: httpx.Client) -> None:
    torrent = bencode(
        {
            "info": {
                "name": "Pack",
                "piece length": 16384,
                "pieces": b"x" * 20,
                "files": [
                    {"length": 10, "path": ["a.mkv"]},
                    {"length": 20, "path": ["sub", "b.srt"]},
                ],
            }
        }
    )
    response = api.put(
        "/torrents/addTorrent",
        content=torrent,
        headers={"Content-Type": "application/x-bittorrent"},
    )
    assert response.status_code == 201
    item = info(api, response.json()["id"])
    assert item["hash"] == torrent_info_hash(torrent)
    assert item["status"] == "waiting_files_selection"
    assert [(f["path"], f["bytes"]) for f in item["files"]] == [
        ("/a.mkv", 10),  # from the torrent root: RD drops the top folder "Pack"
        ("/sub/b.srt", 20),
    ]
    bad = api.put("/torrents/addTorrent", content=b"not bencode")
    assert bad.json() == {"error": "torrent_file_invalid", "error_code": 30}


def test_adding_a_hash_twice_makes_a_second_torrent(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    add(api)
    add(api)
    assert fake.torrents_by_hash()[HASH] == 2
    fake.reject_duplicates = True
    refused = api.post("/torrents/addMagnet", data={"magnet": MAGNET})
    assert refused.json()["error_code"] == 33


def test_delete_answers_204_then_404(api: httpx.Client) -> None:
    torrent_id = add(api)
    assert api.delete(f"/torrents/delete/{torrent_id}").status_code == 204
    again = api.delete(f"/torrents/delete/{torrent_id}")
    assert (again.status_code, again.json()["error"]) == (404, "unknown_ressource")


def test_slot_limit_refuses_with_509_and_active_count_reports_it(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    fake.active_limit = 2
    add(api, magnet(hex_hash(1)))
    add(api, magnet(hex_hash(2)))
    refused = api.post("/torrents/addMagnet", data={"magnet": magnet(hex_hash(3))})
    assert refused.status_code == 509
    assert refused.json() == {"error": "too_many_active_downloads", "error_code": 21}
    assert api.get("/torrents/activeCount").json() == {"nb": 2, "limit": 2}


def test_select_files_past_the_slot_limit_gets_509(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    first, second = add(api, magnet(hex_hash(1))), add(api, magnet(hex_hash(2)))
    clock.advance(1)
    fake.active_limit = 1
    refused = api.post(f"/torrents/selectFiles/{first}", data={"files": "all"})
    assert refused.status_code == 509
    api.delete(f"/torrents/delete/{second}")
    assert api.post(f"/torrents/selectFiles/{first}", data={"files": "all"}).status_code == 204


@pytest.mark.parametrize("status", [451, 403, 503])
def test_infringing_file_comes_with_the_configured_status(
    fake: FakeRealDebrid, api: httpx.Client, status: int
) -> None:
    fake.set_scenario(HASH, Scenario(infringing=True))
    fake.infringing_status = status
    refused = api.post("/torrents/addMagnet", data={"magnet": MAGNET})
    assert refused.status_code == status
    assert refused.json() == {"error": "infringing_file", "error_code": 35}


def test_instant_availability_is_disabled(api: httpx.Client) -> None:
    response = api.get(f"/torrents/instantAvailability/{HASH}/{'b' * 40}")
    assert response.status_code == 403
    assert response.json() == {"error": "disabled_endpoint", "error_code": 37}


def test_maintenance_answers_503_with_a_non_json_page(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    fake.maintenance = True
    response = api.get("/user")
    assert response.status_code == 503
    assert b"Temporarily Down For Maintenance" in response.content
    with pytest.raises(ValueError):
        response.json()


def test_fail_next_scripts_rd_errors_per_route(fake: FakeRealDebrid, api: httpx.Client) -> None:
    fake.fail_next("torrents_add_magnet", "fair_usage_limit", count=2)
    for _ in range(2):
        refused = api.post("/torrents/addMagnet", data={"magnet": MAGNET})
        assert (refused.status_code, refused.json()["error_code"]) == (503, 36)
    assert api.post("/torrents/addMagnet", data={"magnet": MAGNET}).status_code == 201
    fake.fail_next(None, "internal_error", body=b"<html>oops</html>")
    assert api.get("/user").content == b"<html>oops</html>"


# -- lists -----------------------------------------------------------------------------


def test_lists_page_by_offset_or_page_with_total_count(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    ids = [fake.add_torrent(hex_hash(n)) for n in range(7)]
    newest_first = list(reversed(ids))
    first = api.get("/torrents", params={"limit": 3})
    assert first.headers["X-Total-Count"] == "7"
    assert [t["id"] for t in first.json()] == newest_first[:3]
    assert [
        t["id"] for t in api.get("/torrents", params={"limit": 3, "offset": 3}).json()
    ] == newest_first[3:6]
    # page wins over offset ([DOC])
    paged = api.get("/torrents", params={"limit": 3, "page": 3, "offset": 0}).json()
    assert [t["id"] for t in paged] == newest_first[6:]
    assert api.get("/torrents", params={"limit": 3, "page": 9}).json() == []
    assert len(api.get("/torrents").json()) == 7  # default limit 100
    assert api.get("/torrents", params={"limit": 5001}).status_code == 400


def test_list_quirks_204_empty_page_lowercase_total_and_big_account_bug(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    for n in range(3):
        fake.add_torrent(hex_hash(n))
    fake.empty_page_status = 204
    past = api.get("/torrents", params={"offset": 3})
    assert past.status_code == 204
    fake.lowercase_total_header = True
    assert "x-total-count" in api.get("/torrents").headers
    fake.empty_list_threshold = 3
    assert api.get("/torrents").status_code == 204  # no limit given: empty
    assert len(api.get("/torrents", params={"limit": 10}).json()) == 3


def test_filter_active_lists_only_torrents_in_progress(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    fake.add_torrent(hex_hash(1))
    active = add(api, magnet(hex_hash(2)))
    assert [t["id"] for t in api.get("/torrents", params={"filter": "active"}).json()] == [active]


def test_etag_and_if_none_match_give_304_for_an_unchanged_list(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    torrent_id = add(api)
    first = api.get("/torrents")
    etag = first.headers["ETag"]
    again = api.get("/torrents", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    clock.advance(1)  # conversion done: the list changed
    assert api.get("/torrents", headers={"If-None-Match": etag}).status_code == 200
    assert info(api, torrent_id)["status"] == "waiting_files_selection"


# -- rate limit -------------------------------------------------------------------------


def test_250_requests_per_minute_then_429_and_refused_requests_count(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    for _ in range(250):
        assert api.get("/torrents/activeCount").status_code == 200
    refused = api.get("/torrents/activeCount")
    assert refused.status_code == 429
    assert refused.json() == {"error": "too_many_requests", "error_code": 34}
    assert "Retry-After" not in refused.headers  # none seen in the wild (facts section 5)
    clock.advance(30)
    for _ in range(9):  # refused too, and counted
        assert api.get("/torrents/activeCount").status_code == 429
    clock.advance(30.5)  # the first 251 left the window; the 9 refused at t=30 did not
    codes = [api.get("/torrents/activeCount").status_code for _ in range(242)]
    assert codes.count(200) == 241 and codes[-1] == 429


def test_retry_after_header_can_be_switched_on(fake: FakeRealDebrid, api: httpx.Client) -> None:
    fake.retry_after_header = True
    fake.rate.limit = 1
    api.get("/user")
    assert api.get("/user").headers["Retry-After"] == "60"


# -- unrestrict and downloads --------------------------------------------------------------


def test_unrestrict_gives_a_download_url_on_the_fake_with_ranges(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    torrent_id = add(api)
    select_all(api, clock, torrent_id)
    clock.advance(5)
    link = info(api, torrent_id)["links"][0]
    body = api.post("/unrestrict/link", data={"link": link}).json()
    assert body["link"] == link and body["host_icon"]  # extra keys, as the real one sends
    assert body["download"].startswith(f"{fake.url}/d/")
    whole = httpx.get(body["download"], headers={"Range": "bytes=0-99"})
    tail = httpx.get(body["download"], headers={"Range": "bytes=50-99"})
    assert whole.status_code == 206 and tail.content == whole.content[50:]
    assert whole.headers["Content-Range"] == f"bytes 0-99/{body['filesize']}"
    downloads = api.get("/downloads").json()
    assert [d["id"] for d in downloads] == [body["id"]]
    assert api.delete(f"/downloads/delete/{body['id']}").status_code == 204
    assert httpx.get(body["download"]).status_code == 404


def test_unrestrict_of_hoster_links_and_their_failures(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    ok = api.post("/unrestrict/link", data={"link": "https://host.example/dir/My%20File.zip"})
    assert ok.json()["filename"] == "My File.zip"
    assert api.post("/unrestrict/link", data={"link": "ftp://x/y"}).json()["error_code"] == 16
    fake.fail_link("broken.example", "hoster_unavailable")
    broken = api.post("/unrestrict/link", data={"link": "https://broken.example/f"})
    assert (broken.status_code, broken.json()["error_code"]) == (503, 19)
    fake.check_dead_status = 404
    dead = httpx.post(
        f"{fake.rest_url}/unrestrict/check", data={"link": "https://broken.example/f"}
    )
    assert dead.status_code == 404


def test_broken_torrent_links_fail_with_19_or_24(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    torrent_id = add(api)
    select_all(api, clock, torrent_id)
    clock.advance(5)
    link = info(api, torrent_id)["links"][0]
    fake.break_links(torrent_id, "file_unavailable")
    refused = api.post("/unrestrict/link", data={"link": link})
    assert (refused.status_code, refused.json()["error_code"]) == (503, 24)
    api.delete(f"/torrents/delete/{torrent_id}")
    assert api.post("/unrestrict/link", data={"link": link}).json()["error_code"] == 24


def test_torrent_links_with_a_suffix_still_unrestrict(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    fake.link_suffix = "/extra"
    torrent_id = add(api)
    select_all(api, clock, torrent_id)
    clock.advance(5)
    link = info(api, torrent_id)["links"][0]
    assert link.endswith("/extra")
    assert api.post("/unrestrict/link", data={"link": link}).status_code == 200


def test_download_urls_expire_after_their_ttl(
    fake: FakeRealDebrid, api: httpx.Client, clock: FakeClock
) -> None:
    body = api.post("/unrestrict/link", data={"link": "https://h.example/a.bin"}).json()
    assert httpx.head(body["download"]).status_code == 200
    clock.advance(fake.download_ttl + 1)
    assert httpx.get(body["download"]).status_code == 404


# -- OAuth device flow ------------------------------------------------------------------------


def test_device_flow_code_credentials_token_refresh_and_expiry(
    fake: FakeRealDebrid, clock: FakeClock
) -> None:
    with httpx.Client(base_url=fake.oauth_url) as oauth:
        started = oauth.get(
            "/device/code", params={"client_id": "X245A4XAIBGVM", "new_credentials": "yes"}
        ).json()
        assert started["interval"] == 5 and started["expires_in"] == 1800
        assert started["verification_url"] == "https://real-debrid.com/device"
        assert "direct_verification_url" in started
        query = {"client_id": "X245A4XAIBGVM", "code": started["device_code"]}
        pending = oauth.get("/device/credentials", params=query)
        assert pending.status_code == 403 and "error" in pending.json()
        approved = httpx.post(
            f"{fake.url}/__fake__/approve", json={"user_code": started["user_code"]}
        )
        assert approved.json() == {"approved": True}
        pair = oauth.get("/device/credentials", params=query).json()
        grant = {
            "client_id": pair["client_id"],
            "client_secret": pair["client_secret"],
            "grant_type": "http://oauth.net/grant_type/device/1.0",
        }
        tokens = oauth.post("/token", data={**grant, "code": started["device_code"]}).json()
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
        user = httpx.get(
            f"{fake.rest_url}/user", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert user.status_code == 200
        clock.advance(3600)
        expired = httpx.get(
            f"{fake.rest_url}/user", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert expired.json()["error"] == "bad_token"
        renewed = oauth.post("/token", data={**grant, "code": tokens["refresh_token"]}).json()
        assert renewed["refresh_token"] == tokens["refresh_token"]
        assert renewed["access_token"] != tokens["access_token"]
        assert oauth.post("/token", data={**grant, "code": "junk"}).status_code == 400
        late = oauth.get(
            "/device/code", params={"client_id": "X245A4XAIBGVM", "new_credentials": "yes"}
        ).json()
        clock.advance(1800)
        assert not fake.approve_device(late["user_code"])
        gone = oauth.get(
            "/device/credentials",
            params={"client_id": "X245A4XAIBGVM", "code": late["device_code"]},
        )
        assert gone.status_code == 403


def test_fake_lists_its_torrents_for_duplicate_checks(
    fake: FakeRealDebrid, api: httpx.Client
) -> None:
    add(api)
    listed = httpx.get(f"{fake.url}/__fake__/torrents").json()
    assert [t["hash"] for t in listed] == [HASH]
    assert fake.torrents()[0]["hash"] == HASH
