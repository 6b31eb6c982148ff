"""The supervisor's writer: one transaction per drain, announced after commit, never twice."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors import EventBacklog, JobEvent, OnceReply, Publish, Writer
from actors._messages import CleanupKind
from actors._replies import answer, fail, is_answered
from persistence import JobStore
from providers import Job, JobStatus, StartJobPayload, StoreError, Transition

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from faulty_store import FaultyStore


class Bus:
    """Stands in for the event bus: records what is published."""

    def __init__(self) -> None:
        self.published: list[JobEvent] = []

    def tell(self, message: Any) -> None:
        assert isinstance(message, Publish)
        self.published.extend(message.events)


def new_job(n: int) -> Job:
    return Job(
        id=f"job-{n}",
        provider="mock",
        status=JobStatus.QUEUED,
        payload=StartJobPayload(url=f"https://example.com/{n}"),
        created_at=1000 + n,
        updated_at=1000 + n,
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with JobStore(tmp_path / "jobs.db") as real:
        yield FaultyStore(real)


def test_changes_are_announced_only_after_their_commit(store: Any) -> None:
    bus = Bus()
    writer = Writer(store, bus)  # type: ignore[arg-type]
    job = new_job(1)
    reply = OnceReply()
    writer.add(job, (Transition(job.id, 1, None, JobStatus.QUEUED, 1),), (reply,), created=True)
    assert bus.published == [] and not is_answered(reply)
    assert writer.flush().committed
    assert [e.kind for e in bus.published] == ["created"]
    assert reply.get(timeout=0).id == job.id
    assert store.get(job.id).status is JobStatus.QUEUED


def test_a_failed_write_keeps_every_change_and_answers_nothing(store: Any) -> None:
    bus = Bus()
    writer = Writer(store, bus)  # type: ignore[arg-type]
    job = new_job(2)
    reply = OnceReply()
    writer.add(job, (Transition(job.id, 1, None, JobStatus.QUEUED, 1),), (reply,))
    store.fail_next("save_batch")
    assert not writer.flush().committed
    assert not is_answered(reply) and bus.published == []
    assert writer.latest(job.id) == job
    assert writer.flush().committed
    assert reply.get(timeout=0).id == job.id
    assert len(store.transitions(job.id)) == 1  # written once, not twice


def test_an_unstorable_change_is_dropped_alone_after_repeated_failures(store: Any) -> None:
    bus = Bus()
    writer = Writer(store, bus)  # type: ignore[arg-type]
    good, bad = new_job(3), new_job(4)
    bad_reply, good_reply = OnceReply(), OnceReply()
    writer.add(good, (), (good_reply,))
    # A transition of another job: refused by the store whatever the state of the database.
    writer.add(bad, (Transition("other", 1, None, JobStatus.QUEUED, 1),), (bad_reply,))
    for _ in range(3):
        outcome = writer.flush()
    assert outcome.committed
    assert good_reply.get(timeout=0).id == good.id
    with pytest.raises(Exception, match="transition"):
        bad_reply.get(timeout=0)


def test_fail_all_answers_every_waiting_reply_once(store: Any) -> None:
    writer = Writer(store, Bus())  # type: ignore[arg-type]
    change, after = OnceReply(), OnceReply()
    writer.add(new_job(5), (), (change,))
    writer.reply_after_commit(after, [])
    writer.fail_all(RuntimeError("going down"))
    writer.fail_all(RuntimeError("again"))  # nothing left: no second answer
    for reply in (change, after):
        with pytest.raises(RuntimeError, match="going down"):
            reply.get(timeout=0)


def test_a_second_answer_is_a_logged_no_op() -> None:
    reply = OnceReply()
    reply.set(1)
    reply.set(2)
    reply.set_exception(exc_info=(ValueError, ValueError("late"), None))
    assert reply.get(timeout=0) == 1
    plain: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    answer(plain, "first")
    answer(plain, "second")
    fail(plain, ValueError("third"))
    assert plain.get(timeout=0) == "first"


def test_the_event_backlog_drops_progress_first_then_everything() -> None:
    job = new_job(6)
    backlog = EventBacklog(soft=2, hard=4)
    update, move = JobEvent("updated", job, job.status), JobEvent("transition", job, None)
    assert backlog.admit([update, move]) == [update, move]
    assert backlog.admit([update, move]) == [move]  # past soft: progress goes
    assert backlog.admit([update, move]) == [move]
    assert backlog.admit([move]) == []  # past hard: nothing
    assert backlog.dropped == 3
    backlog.delivered(4)
    assert backlog.admit([update]) == [update]


def test_changes_written_one_by_one_are_never_written_again(store: Any) -> None:
    # Regression: after the one-by-one pass the whole batch stayed pending, so the
    # next flush appended every good change's transitions a second time.
    writer = Writer(store, Bus())  # type: ignore[arg-type]
    good = new_job(7)
    writer.add(good, (Transition(good.id, 1, None, JobStatus.QUEUED, 1),))
    writer.add(new_job(8), (Transition("other", 1, None, JobStatus.QUEUED, 1),))
    while not writer.flush().committed:
        pass
    assert writer.flush().committed and not writer.has_pending()
    assert len(store.transitions(good.id)) == 1


def test_a_store_that_goes_down_half_way_keeps_the_rest(store: Any) -> None:
    bus = Bus()
    writer = Writer(store, bus)  # type: ignore[arg-type]
    first, second = new_job(9), new_job(10)
    writer.add(first, (Transition(first.id, 1, None, JobStatus.QUEUED, 1),))
    writer.add(second, (Transition(second.id, 1, None, JobStatus.QUEUED, 1),))
    store.fail_next("save_batch", 3)  # three batch failures: the one-by-one pass begins
    for _ in range(2):
        assert not writer.flush().committed
    # The third batch write fails, then the first single write passes, the second
    # fails with the store unreachable (count fails too).
    store.fail_next("count")
    original = store._store.save_batch
    calls = {"n": 0}

    def flaky(changes: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreError("down again")
        original(changes)

    store._store.save_batch = flaky
    assert not writer.flush().committed
    assert writer.latest(second.id) == second and writer.latest(first.id) is None
    assert [e.job.id for e in bus.published] == [first.id]
    store._store.save_batch = original
    assert writer.flush().committed
    assert [e.job.id for e in bus.published] == [first.id, second.id]
    assert len(store.transitions(first.id)) == 1


def test_owed_cleanups_go_with_the_next_commit_the_last_word_kept(store: Any) -> None:
    writer = Writer(store, Bus())  # type: ignore[arg-type]
    job = new_job(7)
    writer.add(job, (Transition(job.id, 1, None, JobStatus.QUEUED, 1),))
    writer.note_cleanups("mock", owed=[(CleanupKind.DELETE, "r1"), (CleanupKind.LOOKUP, job.id)])
    writer.note_cleanups("mock", settled=[(CleanupKind.LOOKUP, job.id)])  # done at once
    store.fail_next("save_batch")
    assert not writer.flush().committed
    assert store.pending_cleanups("mock") == ([], [])  # kept for the next try, not lost
    assert writer.flush().committed
    assert store.pending_cleanups("mock") == (["r1"], [])
    assert store.get(job.id) == job
    # Alone (no job change), a settled cleanup is a commit of its own.
    writer.note_cleanups("mock", settled=[(CleanupKind.DELETE, "r1")])
    assert writer.flush().committed
    assert store.pending_cleanups("mock") == ([], [])
    assert writer.cleanups == {}


def test_owed_cleanups_wait_while_the_store_is_down_even_when_written_one_by_one(
    store: Any,
) -> None:
    writer = Writer(store, Bus())  # type: ignore[arg-type]
    writer.note_cleanups("mock", owed=[(CleanupKind.DELETE, "r2")])
    store.fail_next("save_batch", 4)  # the batch three times, then the one-by-one write
    for _ in range(3):
        assert not writer.flush().committed
    assert writer.cleanups == {("mock", "delete", "r2"): True}
    assert writer.flush().committed
    assert store.pending_cleanups("mock") == (["r2"], [])


def test_one_unstorable_owed_cleanup_is_dropped_alone(store: Any) -> None:
    """Review finding: one remote id the database refuses (a lone surrogate) dropped
    every owed cleanup of the drain once the writes were isolated."""
    writer = Writer(store, Bus())  # type: ignore[arg-type]
    writer.note_cleanups("mock", owed=[(CleanupKind.DELETE, "good-item")])
    writer.note_cleanups("mock", owed=[(CleanupKind.DELETE, "bad-\ud800")])
    writer.note_cleanups("other", owed=[(CleanupKind.LOOKUP, "job-1")])
    outcomes = [writer.flush() for _ in range(3)]
    assert [o.committed for o in outcomes] == [False, False, True]
    assert store.pending_cleanups("mock") == (["good-item"], [])
    assert store.pending_cleanups("other") == ([], ["job-1"])
    assert writer.cleanups == {}
