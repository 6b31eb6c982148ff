"""TorBox's two tables and its parsing, without a server (narrow MockTransport tests at the end)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers import JobStatus, ProviderError
from providers.torbox import STATES, RemoteRef, TorBoxProvider, lookup_state, parse_remote_id
from providers.torbox._items import as_int, is_ready, item_status, parse_date

R, D, F = JobStatus.RESOLVING, JobStatus.DOWNLOADING, JobStatus.FAILED


@pytest.mark.parametrize(
    ("native", "status"),
    [
        # TorBox's own list (PYSDK; POSTMAN)
        ("downloading", D),
        ("uploading", D),
        ("stalled (no seeds)", D),
        ("paused", D),
        ("completed", D),
        ("cached", D),
        ("metaDL", R),
        ("checkingResumeData", R),
        ("incomplete", D),
        # qBittorrent states passed through
        ("error", F),
        ("missingFiles", F),
        ("pausedUP", D),
        ("queuedUP", D),
        ("stalledUP", D),
        ("checkingUP", D),
        ("forcedUP", D),
        ("allocating", R),
        ("pausedDL", D),
        ("queuedDL", R),
        ("stalledDL", D),
        ("checkingDL", R),
        ("forcedDL", D),
        ("moving", D),
        ("unknown", D),
        ("stoppedUP", D),
        ("stoppedDL", D),
        # variants clients handle
        ("uploading (no peers)", D),
        ("stalled", D),
        ("processing", R),
        ("checking", R),
        ("failed (par2 repair failed)", F),
        ("repairing", D),
        ("Downloading", D),
    ],
)
def test_every_documented_state_has_a_status(native: str, status: JobStatus) -> None:
    entry = lookup_state(native)
    assert entry is not None and entry.status is status
    assert (entry.error_code is not None) == (status is F)


def test_no_state_string_alone_means_completed_or_queued() -> None:
    assert {e.status for e in STATES.values()} == {R, D, F}


def item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": 5, "hash": "ab" * 20, "download_state": "downloading"}
    return base | fields


def status_of(data: dict[str, Any], kind: Any = "torrent") -> Any:
    unknown: list[str] = []
    answer = item_status(data, kind, "https://api.torbox.app", unknown.append)
    return answer, unknown


@given(
    state=st.text(max_size=30),
    finished=st.booleans(),
    present=st.booleans(),
)
def test_completed_exactly_when_finished_and_present(
    state: str, finished: bool, present: bool
) -> None:
    answer, _ = status_of(
        item(download_state=state, download_finished=finished, download_present=present)
    )
    assert (answer.status is JobStatus.COMPLETED) == (finished and present)
    assert answer.status is not JobStatus.QUEUED


def test_unknown_state_is_downloading_and_reported() -> None:
    answer, unknown = status_of(item(download_state="teleporting", progress=0.25))
    assert (answer.status, answer.progress, unknown) == (D, 25.0, ["teleporting"])


@pytest.mark.parametrize(
    ("raw", "percent"), [(0.5, 50.0), (1, 100.0), (1.7, 100.0), (-1, 0.0), ("x", 0.0), (None, 0.0)]
)
def test_progress_is_the_fraction_times_100_clamped(raw: Any, percent: float) -> None:
    assert status_of(item(progress=raw))[0].progress == percent


def test_web_download_error_text_fails_it() -> None:
    answer, _ = status_of(item(download_state="downloading", error="Link offline"), "webdl")
    assert (answer.status, answer.error_code, answer.error_message) == (
        F,
        "DOWNLOAD_ERROR",
        "Link offline",
    )
    assert answer.remote_id == "webdl:5" and answer.info_hash is None


def test_files_keep_md5_names_and_accept_string_ids() -> None:
    data = item(files=[{"id": "3", "name": "F/a.mkv", "size": "10", "md5": "d" * 32}, {"x": 1}])
    answer, _ = status_of(data)
    assert [(f.id, f.name, f.size, f.md5, f.link) for f in answer.files] == [
        (3, "F/a.mkv", 10, "d" * 32, None)
    ]


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2024-01-02T03:04:05Z", 1704164645.0),
        ("2023-12-22T22:12:34.78989+00:00", 1703283154.78989),
        ("2024-01-02T03:04:05", 1704164645.0),
        ("yesterday", None),
        (None, None),
    ],
)
def test_both_date_styles_parse(text: Any, epoch: float | None) -> None:
    assert parse_date(text) == (pytest.approx(epoch) if epoch else None)


@pytest.mark.parametrize(
    ("raw", "value"), [(7, 7), ("7", 7), (" 8 ", 8), (True, None), ("x", None)]
)
def test_ids_come_as_numbers_or_strings(raw: Any, value: int | None) -> None:
    assert as_int(raw) == value


@given(
    kind=st.sampled_from(["torrent", "webdl"]),
    number=st.integers(min_value=0, max_value=10**12),
    queued=st.booleans(),
    digest=st.text(alphabet="0123456789abcdef", min_size=32, max_size=40),
)
def test_remote_ids_round_trip(kind: Any, number: int, queued: bool, digest: str) -> None:
    ref = RemoteRef(kind, number, queued=queued, hash=digest if queued else None)
    assert parse_remote_id(str(ref)) == ref


@pytest.mark.parametrize("text", ["", "torrent:", "torrent:-1", "queued:torrent:1", "usenet:3"])
def test_foreign_remote_ids_are_not_ours(text: str) -> None:
    assert parse_remote_id(text) is None


# -- narrow parsing tests: answers the fake never gives --------------------------


def provider_answering(handler: Callable[[httpx.Request], httpx.Response]) -> TorBoxProvider:
    return TorBoxProvider("k", transport=httpx.MockTransport(handler))


def test_fastapi_default_401_without_envelope_is_bad_token() -> None:
    provider = provider_answering(
        lambda r: httpx.Response(401, json={"detail": "Not authenticated"})
    )
    with pytest.raises(ProviderError) as caught:
        provider.get_status("torrent:1")
    assert (caught.value.code, caught.value.retryable) == ("BAD_TOKEN", False)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(502, text="<html>Bad gateway</html>"),
        httpx.Response(200, json={"success": True, "data": "not a url"}),
    ],
)
def test_answers_that_are_not_torboxs_are_retryable(response: httpx.Response) -> None:
    provider = provider_answering(lambda r: response)
    with pytest.raises(ProviderError) as caught:
        provider.api.request_link("torrent", 1, 0)
    assert (caught.value.code, caught.value.retryable) == ("PROVIDER_UNAVAILABLE", True)


@pytest.mark.parametrize(
    ("data", "hit"),
    [
        (None, False),  # POSTMAN: no hit is null
        ({}, False),  # decypharr's fake
        ({"ab" * 20: {"name": "x"}}, True),
        ([{"hash": "AB" * 20, "name": "x"}], True),  # format=list
    ],
)
def test_cache_answers_in_every_documented_shape(data: Any, hit: bool) -> None:
    body = json.dumps({"success": True, "error": None, "detail": "", "data": data})
    provider = provider_answering(lambda r: httpx.Response(200, content=body.encode()))
    assert (("ab" * 20) in provider.api.cached_hashes("torrent", ["ab" * 20])) is hit


@pytest.mark.parametrize(
    ("fields", "ready"),
    [
        ({"download_finished": True, "download_present": True}, True),
        ({"download_state": "cached", "download_present": True, "progress": 1}, True),
        ({"download_state": "completed", "download_present": True, "progress": 1.0}, True),
        ({"download_state": "uploading (seeding)", "download_present": True, "progress": 1}, True),
        ({"download_state": "cached", "download_present": True, "progress": 0.5}, False),
        ({"download_state": "cached", "download_present": False, "progress": 1}, False),
        ({"download_state": "completed", "download_finished": True, "progress": 1}, False),
        ({"download_state": "downloading", "download_present": True, "progress": 1}, False),
        ({"download_state": "cached", "download_present": True, "progress": True}, False),
        ({"download_state": None, "download_present": True, "progress": 1}, False),
    ],
)
def test_ready_is_present_and_finished_by_flag_or_by_a_done_state_at_progress_1(
    fields: dict[str, object], ready: bool
) -> None:
    assert is_ready(dict(fields)) is ready
