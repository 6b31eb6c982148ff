"""``/api/health``, ``/api/providers``, ``/api/providers/{name}/test``, ``/metrics``, OpenAPI."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from server_helpers import Served, ServeFactory


def test_health_is_200_when_ready(served: Served) -> None:
    answer = served.client.get("/api/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["ready"] and body["live"] and body["ok"] and body["store_ok"]
    assert body["providers"]["mock"]["state"] == "ok"
    assert served.client.get("/api/health", params={"live": "1"}).status_code == 200
    bad = served.client.get("/api/health", params={"live": "maybe"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "live"


def test_health_is_503_with_its_body_when_the_store_is_unreachable(
    serve: ServeFactory, faulty: list[Any]
) -> None:
    served = serve()
    faulty[0].fail_next("counts_by_status", 1)
    answer = served.client.get("/api/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["store_ok"] is False and body["ready"] is False and body["live"] is True
    assert "injected store failure" in body["store_error"]
    # Live but not ready: the liveness probe still passes.
    faulty[0].fail_next("counts_by_status", 1)
    assert served.client.get("/api/health", params={"live": "1"}).status_code == 200
    assert served.client.get("/api/health").status_code == 200  # the fault has passed


def test_providers_lists_each_provider_from_health(served: Served) -> None:
    answer = served.client.get("/api/providers")
    assert answer.status_code == 200
    (mock,) = answer.json()["providers"]
    for key in ("name", "state", "alive", "slots_used", "slot_limit", "paused_until",
                "waiting_for", "queued", "account_error"):
        assert key in mock
    assert mock["name"] == "mock" and mock["alive"] is True


def test_provider_test_answers_the_result(served: Served) -> None:
    answer = served.client.post("/api/providers/mock/test")
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert result["provider"] == "mock" and result["ok"] is True
    missing = served.client.post("/api/providers/nope/test")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_provider"


def test_metrics_parse_and_count_jobs(served: Served) -> None:
    served.finish(served.create(1))
    served.create(2)  # stays active: the fake clock no longer moves
    answer = served.client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    jobs = {
        (s.labels["provider"], s.labels["status"]): s.value for s in families["debrid_jobs"].samples
    }
    assert jobs[("mock", "completed")] == 1
    assert sum(jobs.values()) == 2
    for name in ("debrid_provider_requests", "debrid_provider_rate_limited",
                 "debrid_budget_waits", "debrid_bytes_downloaded", "debrid_commit_seconds",
                 "debrid_provider_up", "debrid_ready"):
        assert name in families, name
    assert families["debrid_ready"].samples[0].value == 1
    up = families["debrid_provider_up"].samples[0]
    assert up.labels == {"provider": "mock", "state": "ok"} and up.value == 1
    commits = {s.name: s.value for s in families["debrid_commit_seconds"].samples
               if s.labels.get("le") in (None, "+Inf")}
    assert commits["debrid_commit_seconds_count"] > 0
    assert commits["debrid_commit_seconds_bucket"] == commits["debrid_commit_seconds_count"]


def test_two_apps_in_one_process_have_their_own_metrics(serve: ServeFactory) -> None:
    first = serve()
    first.create(1)
    assert "debrid_jobs" in first.client.get("/metrics").text


def test_the_openapi_document_is_3_1_with_the_error_schema(served: Served) -> None:
    answer = served.client.get("/api/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.1")
    assert "Error" in document["components"]["schemas"]
    listing = document["paths"]["/api/jobs"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "status", "provider", "q", "sort", "order", "limit", "offset"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            if path != "/login":
                assert operation["responses"]["401"]["content"]["application/json"][
                    "schema"] == {"$ref": "#/components/schemas/Error"}


def test_session_gives_the_csrf_token(served: Served) -> None:
    session, csrf = served.login()
    answer = served.anonymous.get("/api/session", headers={"Cookie": f"debrid_session={session}"})
    assert answer.json()["csrf_token"] == csrf and answer.json()["auth"] == "cookie"
    assert served.client.get("/api/session").json()["auth"] == "bearer"


def test_a_refused_key_shows_as_auth_failed_in_the_api_health_and_cli(
    serve: ServeFactory, tmp_path: Any
) -> None:
    """FACES.md: peers' users find a key silently invalid; here the provider says so."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from server_helpers import TOKEN  # noqa: PLC0415

    from engine.testing import FakeTorBox, advance_until  # noqa: PLC0415
    from providers import default_registry  # noqa: PLC0415

    with FakeTorBox(clock=None) as torbox:
        served = serve(
            providers={"torbox": {**torbox.provider_options(api_key="SECRET-wrong-key"),
                                  "poll_interval": 0.5}},
            registry=default_registry(),
        )
        job = served.engine.create_job(
            "torbox", {"magnet": "magnet:?xt=urn:btih:" + "ab" * 20})
        advance_until(served.clock,
                      lambda: served.engine.health().providers["torbox"].state == "auth_failed",
                      step=1.0)
        [provider] = served.client.get("/api/providers").json()["providers"]
        assert (provider["name"], provider["state"]) == ("torbox", "auth_failed")
        assert provider["account_error"]
        health = served.client.get("/api/health")
        assert health.status_code == 503
        assert health.json()["providers"]["torbox"]["state"] == "auth_failed"
        assert served.engine.get_job(job.id).status.value == "queued"  # it waits, not fails
        root = Path(__file__).resolve().parents[2]
        config = tmp_path / "cli.toml"
        config.write_text("[api]\nport = 0\n")
        listed = subprocess.run(
            [sys.executable, "-m", "engine.cli", "--daemon", served.url, "--json",
             "providers", "list"],
            env={**os.environ, "PYTHONPATH": str(root), "DEBRID_CONFIG": str(config),
                 "DEBRID_API_TOKEN": TOKEN},
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert listed.returncode == 0, listed.stderr
        [shown] = json.loads(listed.stdout)["providers"]
        assert shown["state"] == "auth_failed"
        assert "SECRET-wrong-key" not in listed.stdout + health.text + json.dumps(provider)
