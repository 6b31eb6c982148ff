"""Jobs as plain JSON-ready data and back, and errors that survive pickling."""

from __future__ import annotations

import base64
import copy
import json
import pickle

import pytest

from providers import (
    DuplicateProvider,
    EngineError,
    EngineNotRunning,
    FileSelection,
    FileTransfer,
    InvalidTransition,
    Job,
    JobErrorInfo,
    JobFile,
    JobNotFound,
    JobStatus,
    ProviderError,
    StartJobPayload,
    StoreError,
    UnknownProvider,
    ValidationError,
    WaitTimeout,
    converter,
)
from providers._torrent import bencode

TORRENT = bencode({"info": {"name": "x", "length": 1, "piece length": 16384, "pieces": b"\0" * 20}})


def full_job() -> Job:
    payload = StartJobPayload(
        torrent=TORRENT,
        select=FileSelection(ids=(1,), globs=("*.mkv",), min_size=5, largest_only=True),
        download_dir="/downloads",
        connections=4,
        only_if_cached=True,
        priority=-3,
    )
    return Job(
        id="job-1",
        provider="mock",
        status=JobStatus.FAILED,
        payload=payload,
        progress=42.5,
        files=(
            JobFile(1, "a/b.mkv", size=10, link="https://l/1", local_path="/downloads/b.mkv",
                    transfer=FileTransfer(10, '"e1"', None, ((0, 4), (6, 8)))),
            JobFile(2, "c.nfo", size=1, selected=False, bytes_done=1, md5="0" * 32),
        ),
        metadata={"hash": "abc", "nested": {"list": [1, 2.5, None, "x"]}},
        error=JobErrorInfo("DEAD", "torrent is dead"),
        attempt=3,
        remote_id="R1",
        submitted=True,
        created_at=1_700_000_000_000,
        updated_at=1_700_000_000_500,
    )


def test_to_dict_is_json_serialisable() -> None:
    data = full_job().to_dict()
    assert json.loads(json.dumps(data)) == data


def test_to_dict_writes_torrent_bytes_as_base64_text() -> None:
    data = full_job().to_dict()
    assert data["payload"]["torrent"] == base64.b64encode(TORRENT).decode("ascii")


def test_to_dict_writes_status_as_text_and_files_as_dicts() -> None:
    data = full_job().to_dict()
    assert data["status"] == "failed"
    assert data["files"][1] == {
        "id": 2,
        "name": "c.nfo",
        "size": 1,
        "link": None,
        "selected": False,
        "local_path": None,
        "bytes_done": 1,
        "md5": "0" * 32,
        "transfer": None,
        "verified": None,
    }
    assert data["error"] == {"code": "DEAD", "message": "torrent is dead"}


def test_structure_of_to_dict_gives_back_the_same_job() -> None:
    job = full_job()
    assert converter.structure(job.to_dict(), Job) == job


def test_structure_after_a_json_round_trip_gives_back_the_same_job() -> None:
    job = full_job()
    assert converter.structure(json.loads(json.dumps(job.to_dict())), Job) == job


def test_a_minimal_url_job_round_trips() -> None:
    job = Job("j", "mock", JobStatus.QUEUED, StartJobPayload(url="https://example.com/f"))
    data = job.to_dict()
    assert data["payload"]["torrent"] is None
    assert converter.structure(data, Job) == job


def test_provider_error_pickles_with_every_field() -> None:
    error = ProviderError("slow down", "rd", "RATE_LIMITED", 429, retryable=True, retry_after=7.5)
    copied = pickle.loads(pickle.dumps(error))
    assert type(copied) is ProviderError
    assert (
        copied.message,
        copied.provider,
        copied.code,
        copied.http_status,
        copied.retryable,
        copied.retry_after,
    ) == ("slow down", "rd", "RATE_LIMITED", 429, True, 7.5)
    assert str(copied) == str(error)


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("select.min_size", "is out of range", value=-1, expected="an integer"),
        InvalidTransition(JobStatus.COMPLETED, JobStatus.QUEUED, "job-1"),
        JobNotFound("job-1"),
        UnknownProvider("x", ("mock",)),
        DuplicateProvider("mock"),
        StoreError("locked"),
        EngineNotRunning("stopped"),
        WaitTimeout("too slow"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_engine_error_survives_pickle_and_copy(error: EngineError) -> None:
    for copied in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(copied) is type(error)
        assert str(copied) == str(error)
        assert vars(copied) == vars(error)
