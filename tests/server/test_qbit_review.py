"""Regressions from the review of the qBittorrent face: each test failed before its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from server_helpers import Served, ServeFactory

from engine.server.qbittorrent import QbitOptions
from persistence import ClientItem
from providers import WaitTimeout

USER, PASSWORD = "arr", "qbit-pass-0123"


@pytest.fixture
def qbit(serve: ServeFactory) -> Served:
    return serve(qbittorrent=QbitOptions(username=USER, password=PASSWORD,
                                         session_timeout=10**9))


def client(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.url, timeout=30, auth=(USER, PASSWORD))


def add(served: Served, **form: str) -> str:
    with client(served) as http:
        return http.post("/api/v2/torrents/add", data=form).text


def items(served: Served) -> list[ClientItem]:
    return served.engine.client_book().items()


def test_a_hostile_name_never_leaves_the_save_path(qbit: Served, tmp_path: Path) -> None:
    save = qbit.roots[0]
    assert add(qbit, urls="magnet:?xt=urn:btih:" + "1" * 40 + "&dn=..%2F..%2Fescaped") == "Ok."
    assert add(qbit, urls="magnet:?xt=urn:btih:" + "2" * 40 + "&dn=%2Ftmp%2Fabs") == "Ok."
    assert add(qbit, urls="magnet:?xt=urn:btih:" + "3" * 40, rename="..\\..\\up") == "Ok."
    folders = [Path(i.folder) for i in items(qbit)]
    assert len(folders) == 3
    assert all(f.parent == save for f in folders), folders
    for job in qbit.engine.list_jobs():
        assert Path(job.payload.download_dir or "").parent == save


def test_two_items_of_one_add_with_the_same_name_get_two_folders(qbit: Served) -> None:
    urls = "\n".join(f"magnet:?xt=urn:btih:{n:040x}&dn=Same.Name" for n in (4, 5))
    assert add(qbit, urls=urls) == "Ok."
    folders = {i.folder for i in items(qbit)}
    assert len(folders) == 2


def test_an_add_left_for_a_provider_now_gone_does_not_block_the_next(qbit: Served) -> None:
    stuck = ClientItem(hash="6" * 40, provider="gone", name="Stuck", save_path=str(qbit.roots[0]),
                       folder=str(qbit.roots[0] / "Stuck"), added_on=0, updated_at=0,
                       job_id="stuckjob", held={"magnet": "magnet:?xt=urn:btih:" + "6" * 40})
    qbit.engine.client_book().put([stuck])
    assert add(qbit, urls="magnet:?xt=urn:btih:" + "7" * 40 + "&dn=Next") == "Ok."
    assert {i.hash for i in items(qbit)} == {"7" * 40}  # the stuck one was refused
    reasons = [r["reason"] for r in qbit.daemon.app.state.qbit_face.refusals]
    assert any("refused by the engine" in r for r in reasons)


def test_an_engine_refusal_answers_fails(qbit: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from providers import ValidationError  # noqa: PLC0415

    def refuse(*_: Any, **__: Any) -> Any:
        raise ValidationError("payload", "no")

    monkeypatch.setattr(qbit.engine, "create_jobs", refuse)
    assert add(qbit, urls="magnet:?xt=urn:btih:" + "8" * 40) == "Fails."
    assert items(qbit) == []


def test_an_indexer_key_in_a_url_is_never_shown(qbit: Served) -> None:
    url = "http://127.0.0.1:9/download?apikey=INDEXER-SECRET-KEY&link=abc"
    assert add(qbit, urls=url) == "Fails."
    answer = qbit.client.get("/api/client/refusals").json()
    assert answer["refusals"] and "INDEXER-SECRET-KEY" not in str(answer)
    assert answer["refusals"][0]["source"] == "http://127.0.0.1:9/download?…"


def test_junk_gets_an_answer_not_a_500(qbit: Served) -> None:
    assert add(qbit, urls="http://[::1") == "Fails."
    add(qbit, urls="magnet:?xt=urn:btih:" + "9" * 40)
    with client(qbit) as http:
        answer = http.get("/api/v2/torrents/files", params={"hash": "9" * 40, "indexes": "²"})
    assert answer.status_code == 200 and answer.json() == []


def test_a_locked_out_address_keeps_its_session(qbit: Served) -> None:
    with httpx.Client(base_url=qbit.url, timeout=30) as http:
        assert http.post("/api/v2/auth/login",
                         data={"username": USER, "password": PASSWORD}).text == "Ok."
        for _ in range(12):
            http.post("/api/v2/auth/login", data={"username": USER, "password": "bad"})
        # Sonarr sends Basic and the cookie: a wrong Basic does not hide the session.
        answer = http.get("/api/v2/torrents/info", auth=(USER, "bad"))
        assert answer.status_code == 200
        bearer = {"Authorization": f"Bearer {qbit.daemon.options.token}"}
        assert httpx.get(f"{qbit.url}/api/v2/torrents/info", headers=bearer).status_code == 200


def test_an_add_the_engine_did_not_confirm_is_not_made_twice(
    qbit: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = qbit.engine
    real = engine.create_jobs

    def late(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # the job is made, but the answer is lost
        raise WaitTimeout("no answer in time")

    monkeypatch.setattr(engine, "create_jobs", late)
    assert add(qbit, urls="magnet:?xt=urn:btih:" + "a" * 40 + "&dn=Late") == "Ok."
    monkeypatch.setattr(engine, "create_jobs", real)
    made = [j.id for j in engine.list_jobs()]
    assert len(made) == 1
    [held] = items(qbit)
    assert held.job_id == made[0] and held.held is not None
    face = qbit.daemon.app.state.qbit_face
    face.recover()  # the job exists: its item is released, nothing is made again
    assert [j.id for j in engine.list_jobs()] == made
    assert items(qbit)[0].held is None


def test_an_unconfirmed_add_whose_job_never_came_is_made_after_the_grace(
    qbit: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = qbit.engine
    real = engine.create_jobs

    def lost(*_: Any, **__: Any) -> Any:
        raise WaitTimeout("no answer in time")

    monkeypatch.setattr(engine, "create_jobs", lost)
    assert add(qbit, urls="magnet:?xt=urn:btih:" + "b" * 40 + "&dn=Lost") == "Ok."
    monkeypatch.setattr(engine, "create_jobs", real)
    face = qbit.daemon.app.state.qbit_face
    assert face.recover() == 0 and engine.list_jobs() == []  # may still come: left alone
    qbit.clock.advance(301)
    assert face.recover() == 1
    [job] = engine.list_jobs()
    assert job.id == items(qbit)[0].job_id
    assert attrs.evolve(items(qbit)[0]).held is None
