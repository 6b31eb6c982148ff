"""The job state machine: the transition table, forward paths, Job.advance and Job.new_attempt."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import (
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    Job,
    JobErrorInfo,
    JobFile,
    JobStatus,
    StartJobPayload,
    Transition,
    check_transition,
    forward_path,
)

Q, R, D, C, F, X = (
    JobStatus.QUEUED,
    JobStatus.RESOLVING,
    JobStatus.DOWNLOADING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)
ALLOWED = {(Q, R), (R, D), (D, C)} | {(s, t) for s in (Q, R, D) for t in (F, X)}


def make_job(status: JobStatus = Q) -> Job:
    return Job("job-1", "mock", status, StartJobPayload(url="https://example.com/f"), created_at=1)


def test_terminal_states_are_completed_failed_and_cancelled() -> None:
    assert {s for s in JobStatus if s.terminal} == TERMINAL == {C, F, X}


def test_transition_table_is_exactly_the_documented_moves() -> None:
    table = {(s, t) for s, targets in TRANSITIONS.items() for t in targets}
    assert table == ALLOWED


@pytest.mark.parametrize(("from_status", "to_status"), sorted(ALLOWED))
def test_check_transition_allows_every_move_in_the_table(
    from_status: JobStatus, to_status: JobStatus
) -> None:
    check_transition(from_status, to_status)


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [pair for pair in itertools.product(JobStatus, JobStatus) if pair not in ALLOWED],
)
def test_check_transition_refuses_every_other_move(
    from_status: JobStatus, to_status: JobStatus
) -> None:
    with pytest.raises(InvalidTransition) as info:
        check_transition(from_status, to_status, "job-9")
    assert (info.value.from_status, info.value.to_status) == (from_status, to_status)
    assert "job-9" in str(info.value)


def test_forward_path_walks_every_state_in_between() -> None:
    assert forward_path(Q, C) == (R, D, C)
    assert forward_path(Q, D) == (R, D)
    assert forward_path(R, C) == (D, C)


def test_forward_path_reaches_failed_and_cancelled_in_one_step() -> None:
    for start in (Q, R, D):
        assert forward_path(start, F) == (F,)
        assert forward_path(start, X) == (X,)


def test_forward_path_to_the_same_state_is_empty() -> None:
    assert all(forward_path(s, s) == () for s in JobStatus)


@pytest.mark.parametrize(("from_status", "to_status"), [(D, R), (R, Q), (C, F), (F, Q), (X, R)])
def test_forward_path_refuses_backward_moves_and_leaving_a_terminal_state(
    from_status: JobStatus, to_status: JobStatus
) -> None:
    with pytest.raises(InvalidTransition):
        forward_path(from_status, to_status)


def test_advance_records_each_intermediate_step() -> None:
    job, steps = make_job().advance(C, at=50, progress=100.0)
    assert job.status is C
    assert (job.progress, job.updated_at) == (100.0, 50)
    assert steps == [
        Transition("job-1", 1, Q, R, 50),
        Transition("job-1", 1, R, D, 50),
        Transition("job-1", 1, D, C, 50),
    ]


def test_advance_to_the_current_state_records_nothing_but_applies_changes() -> None:
    job, steps = make_job(R).advance(R, at=7, progress=3.0)
    assert steps == []
    assert (job.status, job.progress, job.updated_at) == (R, 3.0, 7)


def test_advance_refuses_an_invalid_move_naming_the_job() -> None:
    with pytest.raises(InvalidTransition, match="job-1") as info:
        make_job(D).advance(R, at=1)
    assert info.value.job_id == "job-1"


def test_new_attempt_starts_over_from_queued_and_clears_the_run() -> None:
    failed = make_job(F).evolve(
        error=JobErrorInfo("DEAD", "dead torrent"),
        progress=40.0,
        remote_id="r1",
        submitted=True,
        files=(JobFile(1, "a"),),
    )
    job, step = failed.new_attempt(at=99)
    assert (job.status, job.attempt, job.updated_at) == (Q, 2, 99)
    assert (job.error, job.remote_id, job.submitted, job.files, job.progress) == (
        None,
        None,
        False,
        (),
        0.0,
    )
    assert step == Transition("job-1", 2, F, Q, 99)
    assert job.created_at == failed.created_at


@pytest.mark.parametrize("status", [Q, R, D, C])
def test_new_attempt_is_refused_unless_failed_or_cancelled(status: JobStatus) -> None:
    with pytest.raises(InvalidTransition):
        make_job(status).new_attempt(at=1)


RETRY = "retry"


@settings(deadline=None)  # the suite shares CPUs with actor tests
@given(st.lists(st.sampled_from([*JobStatus, RETRY]), max_size=30))
def test_random_operations_only_ever_record_legal_chained_history(
    operations: list[JobStatus | str],
) -> None:
    job = make_job()
    history: list[Transition] = []
    for at, op in enumerate(operations, start=2):
        before = job
        try:
            if op == RETRY:
                job, step = job.new_attempt(at)
                history.append(step)
            else:
                assert isinstance(op, JobStatus)
                job, steps = job.advance(op, at)
                history.extend(steps)
        except InvalidTransition:
            assert job is before  # a refused move changes nothing
    previous, attempt = Q, 1
    for step in history:
        assert step.from_status == previous
        if step.attempt == attempt:
            assert step.to_status in TRANSITIONS[step.from_status]
        else:
            # The only move out of a terminal state: a new attempt from QUEUED.
            assert step.attempt == attempt + 1
            assert (step.from_status, step.to_status) in {(F, Q), (X, Q)}
        previous, attempt = step.to_status, step.attempt
    assert job.status == previous
    assert job.attempt == attempt
