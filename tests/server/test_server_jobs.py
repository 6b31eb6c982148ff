"""The job routes over real HTTP: create (JSON and .torrent upload), read, list, act, clear."""

from __future__ import annotations

import base64

import pytest
from server_helpers import Served, magnet

from engine import JobStatus
from providers._torrent import bencode


def torrent_bytes(name: str = "file.bin") -> bytes:
    """A minimal valid .torrent."""
    info = {b"name": name.encode(), b"length": 1024, b"piece length": 16384,
            b"pieces": b"\x00" * 20}
    return bencode({b"announce": b"http://tracker.example/announce", b"info": info})


def test_create_job_from_json_answers_201_with_the_job(served: Served) -> None:
    answer = served.client.post("/api/jobs", json={"provider": "mock", "payload": magnet(1)})
    assert answer.status_code == 201
    job = answer.json()["job"]
    assert job["provider"] == "mock" and job["status"] == "queued"
    assert served.engine.get_job(job["id"]).payload.magnet == magnet(1)["magnet"]


def test_create_job_from_a_torrent_upload_puts_its_bytes_in_the_payload(served: Served) -> None:
    data = torrent_bytes()
    answer = served.client.post(
        "/api/jobs",
        data={"provider": "mock", "payload": '{"priority": 5}'},
        files={"torrent": ("a.torrent", data, "application/x-bittorrent")},
    )
    assert answer.status_code == 201, answer.text
    job = served.engine.get_job(answer.json()["job"]["id"])
    assert job.payload.torrent == data and job.payload.priority == 5
    assert answer.json()["job"]["payload"]["torrent"] == base64.b64encode(data).decode()


def test_a_torrent_upload_that_is_not_bencoded_is_422_on_payload_torrent(served: Served) -> None:
    answer = served.client.post(
        "/api/jobs", data={"provider": "mock"},
        files={"torrent": ("a.torrent", b"not a torrent", "application/x-bittorrent")},
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "payload.torrent"
    assert served.engine.count_jobs() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "mock"}, "payload"),
        ({"payload": magnet(1)}, "provider"),
        ({"provider": "mock", "payload": "magnet"}, "payload"),
        ({"provider": "mock", "payload": magnet(1), "extra": 1}, "extra"),
        ({"provider": "mock", "payload": {}}, "payload"),
        ({"provider": "mock", "payload": {"url": "https://e.x/a", "connections": 99}},
         "payload.connections"),
        ({"provider": "mock", "payload": {**magnet(1), "select": {"min_size": -1}}},
         "payload.select.min_size"),
        ([1, 2], "body"),
    ],
)
def test_a_bad_body_is_422_naming_the_field_and_writes_nothing(
    served: Served, body: object, field: str
) -> None:
    answer = served.client.post("/api/jobs", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation" and error["field"] == field
    assert served.engine.count_jobs() == 0


def test_a_body_that_is_not_json_is_422_on_body(served: Served) -> None:
    answer = served.client.post(
        "/api/jobs", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "body"


def test_an_unknown_provider_is_404_unknown_provider(served: Served) -> None:
    answer = served.client.post("/api/jobs", json={"provider": "nope", "payload": magnet(1)})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_provider"


def test_get_job_and_sync(served: Served) -> None:
    job = served.create(1)
    answer = served.client.get(f"/api/jobs/{job.id}")
    assert answer.status_code == 200 and answer.json()["job"]["id"] == job.id
    synced = served.client.get(f"/api/jobs/{job.id}", params={"sync": "true"})
    assert synced.status_code == 200 and synced.json()["job"]["id"] == job.id
    bad = served.client.get(f"/api/jobs/{job.id}", params={"sync": "maybe"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "sync"


def test_unknown_job_is_404_not_found_on_every_job_route(served: Served) -> None:
    for method, path in [("GET", "/api/jobs/nope"), ("POST", "/api/jobs/nope/cancel"),
                         ("POST", "/api/jobs/nope/retry")]:
        answer = served.client.request(method, path)
        assert answer.status_code == 404, (method, path)
        assert answer.json() == {"error": {"code": "not_found",
                                           "message": "no job with id 'nope'", "field": None}}


def test_cancel_then_cancel_again_is_409_and_retry_starts_a_new_attempt(served: Served) -> None:
    job = served.create(1)
    answer = served.client.post(f"/api/jobs/{job.id}/cancel")
    assert answer.status_code == 200 and answer.json()["job"]["status"] == "cancelled"
    again = served.client.post(f"/api/jobs/{job.id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    retried = served.client.post(f"/api/jobs/{job.id}/retry")
    assert retried.status_code == 200
    assert retried.json()["job"]["status"] == "queued" and retried.json()["job"]["attempt"] == 2
    active = served.client.post(f"/api/jobs/{job.id}/retry")
    assert active.status_code == 409


def test_list_filters_sorts_and_pages(served: Served) -> None:
    jobs = [served.create(i) for i in range(5)]
    served.engine.cancel_job(jobs[0].id)
    page = served.client.get("/api/jobs", params={"limit": 2}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 0
    newest_first = [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]
    assert [j["id"] for j in page["jobs"]] == newest_first[:2]
    rest = served.client.get("/api/jobs", params={"limit": 10, "offset": 2}).json()
    assert [j["id"] for j in rest["jobs"]] == newest_first[2:]
    asc = served.client.get("/api/jobs", params={"order": "asc", "sort": "created_at"}).json()
    assert [j["id"] for j in asc["jobs"]] == newest_first[::-1]
    cancelled = served.client.get("/api/jobs", params={"status": "cancelled,failed"}).json()
    assert [j["id"] for j in cancelled["jobs"]] == [jobs[0].id] and cancelled["total"] == 1
    found = served.client.get("/api/jobs", params={"q": "job3"}).json()
    assert [j["id"] for j in found["jobs"]] == [jobs[3].id]
    other = served.client.get("/api/jobs", params={"provider": "other"}).json()
    assert other["jobs"] == [] and other["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"sort": "name"}, "sort"),
        ({"order": "up"}, "order"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-3"}, "offset"),
        ({"q": "x" * 501}, "q"),
    ],
)
def test_a_bad_list_parameter_is_422_naming_it(
    served: Served, params: dict[str, str], field: str
) -> None:
    answer = served.client.get("/api/jobs", params=params)
    assert answer.status_code == 422
    assert answer.json()["error"] == {**answer.json()["error"], "code": "validation",
                                      "field": field}


def test_bulk_cancel_retry_delete_answer_per_id(served: Served) -> None:
    first, second = served.create(1), served.create(2)
    cancel = served.client.post(
        "/api/jobs/bulk", json={"action": "cancel", "ids": [first.id, "nope"]}
    ).json()["results"]
    assert cancel[first.id]["ok"] and cancel[first.id]["job"]["status"] == "cancelled"
    assert cancel["nope"] == {"ok": False, "error": {
        "code": "not_found", "message": "no job with id 'nope'", "field": None}}
    delete = served.client.post(
        "/api/jobs/bulk", json={"action": "delete", "ids": [first.id, second.id]}
    ).json()["results"]
    assert delete[first.id] == {"ok": True, "job": None}
    assert delete[second.id]["ok"] is False
    assert delete[second.id]["error"]["code"] == "invalid_transition"
    assert served.engine.count_jobs() == 1
    retry = served.client.post(
        "/api/jobs/bulk", json={"action": "retry", "ids": [second.id]}
    ).json()["results"]
    assert retry[second.id]["error"]["code"] == "invalid_transition"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode", "ids": []}, "action"),
        ({"action": "cancel", "ids": "abc"}, "ids"),
        ({"action": "cancel", "ids": [1]}, "ids"),
        ({"action": "cancel", "ids": ["a"] * 1001}, "ids"),
        ({"action": "cancel", "ids": [], "force": True}, "force"),
    ],
)
def test_a_bad_bulk_body_is_422(served: Served, body: object, field: str) -> None:
    answer = served.client.post("/api/jobs/bulk", json=body)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == field


def test_delete_completed_removes_only_completed_jobs(served: Served) -> None:
    done = served.finish(served.create(1))
    assert done.status is JobStatus.COMPLETED
    served.create(2)
    refused = served.client.delete("/api/jobs", params={"status": "failed"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "status"
    assert served.client.delete("/api/jobs").status_code == 422
    answer = served.client.delete("/api/jobs", params={"status": "completed"})
    assert answer.status_code == 200 and answer.json() == {"deleted": 1}
    assert served.engine.count_jobs() == 1


def test_an_unknown_route_is_a_json_404(served: Served) -> None:
    answer = served.client.get("/api/nothing-here")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    wrong = served.client.put("/api/jobs")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_a_stopped_engine_answers_503_not_running(served: Served) -> None:
    served.engine.stop()
    answer = served.client.get("/api/jobs")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "not_running"
    health = served.client.get("/api/health")
    assert health.status_code == 503 and health.json()["supervisor"] == "stopped"
