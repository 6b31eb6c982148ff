"""The supervisor's writer: every change of a mailbox drain in one transaction, then announced.

Changes are added as they arrive; ``flush`` writes them all in one transaction
and only then publishes their events and answers the replies that waited for
them, so nothing announced is ever lost by a crash. A failed write keeps every
change for the next flush (losing one is worse than waiting); when the batch
keeps failing while the store is reachable, the changes are written one by one
so that one change the database refuses (``UnstorableValue``: a lone surrogate,
a NUL) is dropped (and its replies failed) instead of blocking the engine; a
store that is merely failing (down, locked, full) never costs a change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import attrs

from actors._events import JobEvent, Publish
from actors._messages import CleanupKey, Ref, Reply
from actors._replies import answer, fail
from persistence import JobStore
from providers import (
    Job,
    StoreError,
    Telemetry,
    Transition,
    UnstorableValue,
    ValidationError,
)
from providers._log import get_logger

__all__ = ["EventBacklog", "FlushOutcome", "Writer"]

log = get_logger("debrid.actors.writer")

#: Failed batch writes in a row before changes are written one by one.
ISOLATE_AFTER = 3


@attrs.define
class _Pending:
    job: Job
    transitions: tuple[Transition, ...]
    replies: tuple[Reply, ...]
    created: bool = False


@attrs.frozen
class FlushOutcome:
    """What a flush did: ``committed`` False means changes wait for the next try."""

    committed: bool
    written: int = 0
    #: Changes that could not be stored at all, by job id, with why: dropped.
    dropped: dict[str, BaseException] = attrs.field(factory=dict)


class EventBacklog:
    """How many published events the bus has not delivered yet (shared with the bus).

    A subscriber slower than the engine would otherwise grow the bus's inbox
    without bound. Past ``soft`` undelivered events, progress-only events
    (``updated``) are not published; past ``hard``, none are, and the drop is
    counted and logged. Subscribers that must not miss a state read the store.
    """

    def __init__(self, soft: int = 50_000, hard: int = 200_000) -> None:
        self._lock = threading.Lock()
        self.pending = 0
        self.soft = soft
        self.hard = hard
        self.dropped = 0

    def admit(self, events: list[JobEvent]) -> list[JobEvent]:
        """The events to publish now (all of them unless the bus lags)."""
        with self._lock:
            if self.pending >= self.hard:
                kept: list[JobEvent] = []
            elif self.pending >= self.soft:
                kept = [e for e in events if e.kind != "updated"]
            else:
                kept = events
            self.dropped += len(events) - len(kept)
            self.pending += len(kept)
        if len(kept) < len(events):
            log.warning("events_dropped", count=len(events) - len(kept), backlog=self.pending)
        return kept

    def delivered(self, count: int) -> None:
        """The bus handed ``count`` events to the subscribers."""
        with self._lock:
            self.pending = max(0, self.pending - count)


class Writer:
    """Pending changes and the replies that wait for their commit."""

    def __init__(
        self,
        store: JobStore,
        bus: Ref,
        backlog: EventBacklog | None = None,
        *,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.store = store
        self.telemetry = telemetry
        self.bus = bus
        self.backlog = backlog or EventBacklog()
        self.pending: list[_Pending] = []
        self.pending_ids: set[str] = set()
        #: Answers that wait for the next commit, with what they answer and the
        #: jobs whose changes they announce.
        self.replies: list[tuple[Reply, Any, tuple[str, ...]]] = []
        self._dropped: dict[str, BaseException] = {}
        #: Owed remote cleanups to record (True) or forget (False), the last word
        #: on each (provider, kind, key) kept; written with the next commit.
        self.cleanups: dict[tuple[str, str, str], bool] = {}
        self.failures = 0
        self.commits = 0

    def add(
        self,
        job: Job,
        transitions: tuple[Transition, ...] = (),
        replies: tuple[Reply, ...] = (),
        *,
        created: bool = False,
    ) -> None:
        """Queue a change of ``job`` (its replies get the job once committed)."""
        self.pending.append(_Pending(job, transitions, replies, created))
        self.pending_ids.add(job.id)

    def note_cleanups(
        self,
        provider: str,
        owed: Iterable[CleanupKey] = (),
        settled: Iterable[CleanupKey] = (),
    ) -> None:
        """Record ``owed`` cleanups of ``provider`` and forget ``settled`` ones, with the
        next commit (a later word on the same cleanup replaces an earlier one)."""
        for kind, key in owed:
            self.cleanups[(provider, kind.value, key)] = True
        for kind, key in settled:
            self.cleanups[(provider, kind.value, key)] = False

    def reply_after_commit(self, reply: Reply, value: Any, jobs: tuple[str, ...] = ()) -> None:
        """Answer ``reply`` with ``value`` once everything queued so far is committed.

        If a change of one of ``jobs`` cannot be stored at all, ``reply`` gets that
        error instead: a create is never reported for a row that was not written.
        """
        self.replies.append((reply, value, jobs))

    def latest(self, job_id: str) -> Job | None:
        """The newest version of ``job_id`` not written yet, if any."""
        if job_id not in self.pending_ids:
            return None
        for item in reversed(self.pending):
            if item.job.id == job_id:
                return item.job
        return None

    def has_pending(self, job_id: str | None = None) -> bool:
        """Anything (or anything of ``job_id``) not written yet."""
        return bool(self.pending) if job_id is None else job_id in self.pending_ids

    def flush(self) -> FlushOutcome:
        """Write everything pending in one transaction, then announce it."""
        if not self.pending and not self.cleanups:
            self._answer_waiting()
            return FlushOutcome(True)
        self._dropped = {}
        batch = self.pending
        began = time.perf_counter()
        try:
            self.store.save_batch([(p.job, p.transitions) for p in batch], self._cleanup_rows())
            if self.telemetry is not None:
                self.telemetry.commit(time.perf_counter() - began)
        except (StoreError, ValidationError) as error:
            self.failures += 1
            log.error(
                "store_write_failed", error=str(error), pending=len(batch), attempt=self.failures
            )
            if self.failures < ISOLATE_AFTER:
                return FlushOutcome(False)
            # Still failing: perhaps one change cannot be stored at all. Write them
            # one by one so that it alone is left out, not the whole engine.
            batch, left = self._isolate(batch)
            if left or self.cleanups:
                # The store went down half-way: the rest waits for the next flush.
                self.pending = left
                self.pending_ids = {p.job.id for p in left}
                return FlushOutcome(False, len(batch))
        self.failures = 0
        self.pending = []
        self.pending_ids.clear()
        self.cleanups = {}
        self.commits += 1
        self._announce(batch)
        dropped, self._dropped = self._dropped, {}
        self._answer_waiting(dropped)
        return FlushOutcome(True, len(batch), dropped)

    def fail_all(self, error: BaseException) -> None:
        """Fail every reply still waiting (the supervisor is going down); drop the changes."""
        for item in self.pending:
            for reply in item.replies:
                fail(reply, error)
        for reply, _, _ in self.replies:
            fail(reply, error)
        self.pending, self.replies = [], []
        self.pending_ids.clear()

    # -- internals -------------------------------------------------------------
    def _answer_waiting(self, dropped: dict[str, BaseException] | None = None) -> None:
        replies, self.replies = self.replies, []
        for reply, value, jobs in replies:
            lost = next((dropped[j] for j in jobs if j in dropped), None) if dropped else None
            if lost is not None:
                fail(reply, lost)
            else:
                answer(reply, value)

    def _isolate(self, batch: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
        """Write each change alone; drop (and report) those that fail by themselves.

        Returns what was written (already announced) and what is left when the
        store itself went down half-way. What was written is never written again.
        """
        written: list[_Pending] = []
        if self.cleanups and not self._isolate_cleanups():
            return written, batch
        for index, item in enumerate(batch):
            try:
                self.store.save_batch([(item.job, item.transitions)])
            except (ValidationError, UnstorableValue) as error:
                self._drop(item, error)
                continue
            except StoreError:
                # The store itself is failing (down, locked, full): a change that
                # may well be storable is never dropped for it. Keep what is left.
                self._announce(written)
                return written, batch[index:]
            written.append(item)
        return written, []

    def _isolate_cleanups(self) -> bool:
        """Write the owed cleanups one by one, dropping (and logging) only those the
        store refuses; False (all kept) when the store itself is failing."""
        for entry, owed in list(self.cleanups.items()):
            try:
                self.store.save_batch([], [(*entry, owed)])
            except (ValidationError, UnstorableValue) as error:
                provider, kind, key = entry
                log.error(
                    "owed_cleanup_unstorable",
                    provider=provider,
                    kind=kind,
                    key=key.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"),
                    error=str(error),
                )
            except StoreError:
                return False
            del self.cleanups[entry]
        return True

    def _cleanup_rows(self) -> list[tuple[str, str, str, bool]]:
        return [(p, kind, key, owed) for (p, kind, key), owed in self.cleanups.items()]

    def _drop(self, item: _Pending, error: Exception) -> None:
        self._dropped[item.job.id] = error
        job = item.job
        log.error("job_change_unstorable", job_id=job.id, provider=job.provider, error=str(error))
        for reply in item.replies:
            fail(reply, error)

    def _announce(self, written: list[_Pending]) -> None:
        if written:
            events = self.backlog.admit(events_of(written))
            if events:
                self.bus.tell(Publish(events))
        for item in written:
            for reply in item.replies:
                answer(reply, item.job)


def events_of(batch: list[_Pending]) -> list[JobEvent]:
    """The events a committed batch announces, in order."""
    events: list[JobEvent] = []
    for item in batch:
        if item.created:
            events.append(JobEvent("created", item.job, None))
            continue
        if item.transitions:
            last = len(item.transitions) - 1
            for index, step in enumerate(item.transitions):
                # A walk through several states announces each one with the job as
                # it stood at that step; the last one is the stored row itself.
                at_step = item.job if index == last else item.job.with_status(step.to_status)
                events.append(JobEvent("transition", at_step, step.from_status))
        else:
            events.append(JobEvent("updated", item.job, item.job.status))
    return events

