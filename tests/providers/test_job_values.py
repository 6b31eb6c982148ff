"""Job values: copies with changes, and the checks on them."""

from __future__ import annotations

import attrs
import pytest

from providers import Job, JobErrorInfo, JobFile, JobStatus, StartJobPayload


def base_job() -> Job:
    return Job(
        id="j1",
        provider="mock",
        status=JobStatus.QUEUED,
        payload=StartJobPayload(url="https://example.com/a.zip"),
        created_at=1,
        updated_at=1,
    )


CHANGES: dict[str, object] = {
    "id": "j2",
    "provider": "other",
    "status": JobStatus.DOWNLOADING,
    "payload": StartJobPayload(magnet="magnet:?xt=urn:btih:" + "b" * 40),
    "progress": 12.5,
    "files": (JobFile(0, "a.bin", 5),),
    "metadata": {"k": "v"},
    "error": JobErrorInfo("X", "y"),
    "attempt": 2,
    "remote_id": "R",
    "submitted": True,
    "created_at": 7,
    "updated_at": 8,
}


def test_changes_cover_every_field() -> None:
    assert set(CHANGES) == {field.name for field in attrs.fields(Job)}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_evolve_changes_one_field_like_attrs_evolve(name: str) -> None:
    job = base_job()
    changed = job.evolve(**{name: CHANGES[name]})
    assert changed == attrs.evolve(job, **{name: CHANGES[name]})
    assert getattr(changed, name) == CHANGES[name]
    assert job == base_job()  # the original is untouched


def test_evolve_with_every_field_at_once() -> None:
    assert base_job().evolve(**CHANGES) == Job(**CHANGES)  # type: ignore[arg-type]


def test_evolve_refuses_a_field_the_job_does_not_have() -> None:
    with pytest.raises(TypeError, match="colour, size"):
        base_job().evolve(size=1, colour="red")


def test_advance_walks_through_the_states_in_between() -> None:
    job, steps = base_job().advance(JobStatus.COMPLETED, 99, remote_id="R", progress=100.0)
    assert (job.status, job.updated_at, job.remote_id, job.progress) == (
        JobStatus.COMPLETED,
        99,
        "R",
        100.0,
    )
    assert [(s.from_status, s.to_status, s.at) for s in steps] == [
        (JobStatus.QUEUED, JobStatus.RESOLVING, 99),
        (JobStatus.RESOLVING, JobStatus.DOWNLOADING, 99),
        (JobStatus.DOWNLOADING, JobStatus.COMPLETED, 99),
    ]


def test_with_status_keeps_every_other_field() -> None:
    job = Job(**CHANGES)  # type: ignore[arg-type]
    assert job.with_status(JobStatus.COMPLETED) == attrs.evolve(job, status=JobStatus.COMPLETED)
