"""Handoff on its own: leftovers kept and delivered in order, releases after commit,
the record of owed cleanups read at start and written at stop."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors._handle import ProviderHandle
from actors._handoff import OWED_SAVE_TRIES, Handoff
from actors._messages import Cleanup, CleanupKind, Release, Released
from actors._provider_book import PendingLookup, ProviderBook
from persistence import JobStore
from providers import Job, JobStatus, StartJobPayload

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from faulty_store import FaultyStore


class Inbox:
    """Stands in for an actor ref: records what it is told; ``dead_after`` tells, it is gone."""

    def __init__(self, dead_after: int | None = None) -> None:
        self.told: list[Any] = []
        self.dead_after = dead_after

    def tell(self, message: Any) -> None:
        if self.dead_after is not None and len(self.told) >= self.dead_after:
            raise pykka.ActorDeadError("gone")
        self.told.append(message)


PAYLOAD = StartJobPayload(url="https://example.com/a")


def job(job_id: str, status: JobStatus, remote_id: str | None = None) -> Job:
    return Job(
        id=job_id,
        provider="mock",
        status=status,
        payload=PAYLOAD,
        created_at=1,
        updated_at=1,
        remote_id=remote_id,
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with JobStore(tmp_path / "jobs.db") as real:
        yield FaultyStore(real)


def make(store: Any, handle: ProviderHandle | None = None) -> Handoff:
    handles = {"mock": handle} if handle is not None else {}
    return Handoff(store, {"mock": ProviderBook()}, handles, {})


def test_what_finds_its_provider_down_waits_and_goes_to_the_next_actor_in_order(
    store: Any,
) -> None:
    handle = ProviderHandle(None)
    handoff = make(store, handle)
    first = Cleanup("a", PAYLOAD, "r1", False)
    second = Released((Release("b", "r2"),))
    handoff.hand("mock", first)
    handoff.hand("mock", second)
    handoff.tell("mock", "a poll")  # not kept: only what must not be lost is
    assert handoff.leftovers == {"mock": [first, second]}
    dying = Inbox(dead_after=1)
    handoff.deliver_leftovers("mock", dying)  # type: ignore[arg-type]
    assert dying.told == [first]
    assert handoff.leftovers == {"mock": [second]}  # the rest waits for the next one
    live = Inbox()
    handle.point_at(live)  # type: ignore[arg-type]
    handoff.deliver_leftovers("mock", live)  # type: ignore[arg-type]
    handoff.hand("mock", first)
    assert live.told == [second, first]
    assert handoff.leftovers == {}


def test_completions_are_released_once_committed_one_message_per_provider(store: Any) -> None:
    live = Inbox()
    handoff = make(store, ProviderHandle(live))  # type: ignore[arg-type]
    handoff.completed(job("a", JobStatus.COMPLETED, "r1"))
    handoff.completed(job("b", JobStatus.COMPLETED, "r2"))
    handoff.completed(job("c", JobStatus.COMPLETED))  # no remote item: nothing to release
    handoff.completed(job("d", JobStatus.CANCELLED, "r4"))  # a cleanup's business
    assert live.told == []  # nothing before the commit
    handoff.release_committed({"b": ValueError("unstorable")})
    assert live.told == [Released((Release("a", "r1"),))]
    handoff.release_committed({})
    assert len(live.told) == 1  # released once


def test_the_record_is_read_back_at_start_with_every_recorded_key(store: Any) -> None:
    store.save(job("done", JobStatus.CANCELLED))
    store.save(job("again", JobStatus.QUEUED))  # retried since: owes no lookup any more
    store.replace_pending_cleanups("mock", ["r1"], ["done", "again", "gone"])
    deletes, lookups, recorded = make(store).owed_at_start("mock")
    assert deletes == ["r1"]
    assert lookups == [Cleanup("done", PAYLOAD, None, True)]
    assert set(recorded) == {
        (CleanupKind.DELETE, "r1"),
        (CleanupKind.LOOKUP, "done"),
        (CleanupKind.LOOKUP, "again"),
        (CleanupKind.LOOKUP, "gone"),
    }


def test_the_record_written_at_stop_holds_the_books_and_the_leftovers(store: Any) -> None:
    handoff = make(store)
    book = handoff.books["mock"]
    book.deletes["r1"] = 2
    book.lookups["j1"] = PendingLookup(PAYLOAD)
    handoff.hand("mock", Cleanup("j2", PAYLOAD, "r2", False))
    handoff.hand("mock", Cleanup("j3", PAYLOAD, None, True))
    handoff.hand("mock", Released((Release("j4", "r4"),)))  # not a debt
    store.fail_next("replace_pending_cleanups", OWED_SAVE_TRIES - 1)
    handoff.save_owed()
    assert store.pending_cleanups("mock") == (["r1", "r2"], ["j1", "j3"])


def test_a_store_down_through_the_stop_costs_the_record_written_last(store: Any) -> None:
    store.replace_pending_cleanups("mock", ["old"], [])
    handoff = make(store)
    handoff.books["mock"].deletes["r1"] = 0
    store.fail_next("replace_pending_cleanups", OWED_SAVE_TRIES)
    handoff.save_owed()  # logged, never raised
    assert store.raised["replace_pending_cleanups"] == OWED_SAVE_TRIES
    assert store.pending_cleanups("mock") == (["old"], [])
