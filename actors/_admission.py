"""Admission: which waiting job gets an actor next, within slot limits, pauses and the global cap.

Jobs that hold a remote slot already (recovered with a remote id) come first,
then by payload priority, then by age. The line is not all in memory: after a
restart the store may hold a backlog of any size, which is read a page at a
time (``page_size`` jobs, only their ids kept) as the line in memory runs dry,
so start-up costs one page whatever the backlog. A job queued while a backlog
is open goes into memory only if it sorts before the last job read from the
store; otherwise the store already holds it and a later page brings it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping

import attrs

from persistence import JobStore
from providers import Clock, Job

__all__ = ["Admission", "order_key"]

#: The order of the waiting line, without the "holds a slot" class: priority, age, id.
OrderKey = tuple[int, int, str]
#: (0 holds a slot / 1 does not, order key, sequence); the id is the key's last part.
_Entry = tuple[int, int, int, int, str]


def order_key(job: Job) -> OrderKey:
    """Where ``job`` stands in its class: higher priority first, then older first."""
    return (-job.payload.priority, job.created_at, job.id)


@attrs.define
class _Backlog:
    """Jobs of one class still in the store after ``last`` (None: none read yet)."""

    open: bool = True
    last: OrderKey | None = None
    store_key: tuple[int, int, str] | None = None


class Admission:
    """The waiting line and the slots of every provider."""

    def __init__(
        self,
        store: JobStore,
        providers: Iterable[str],
        clock: Clock,
        *,
        max_job_actors: int | None,
        page_size: int = 256,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_job_actors = max_job_actors
        self.page_size = page_size
        names = list(providers)
        self.waiting: dict[str, list[_Entry]] = {name: [] for name in names}
        self.waiting_ids: set[str] = set()
        #: Jobs holding a slot (an actor, or one about to start), per provider.
        self.active: dict[str, set[str]] = {name: set() for name in names}
        self.holders = 0
        self.slot_limits: dict[str, int | None] = dict.fromkeys(names)
        #: Until when (clock monotonic) a provider gets no new submission.
        self.paused: dict[str, float] = {}
        self._backlogs: dict[tuple[str, bool], _Backlog] = {}
        self._seq = itertools.count()

    # -- the backlog in the store -------------------------------------------------
    def open_backlog(self, provider: str) -> None:
        """After a restart: every unfinished job of ``provider`` is still in the store."""
        for holds_slot in (True, False):
            self._backlogs[(provider, holds_slot)] = _Backlog()

    def backlog_open(self, provider: str) -> bool:
        """True while the store may hold waiting jobs of ``provider`` not read yet."""
        if not self._backlogs:
            return False  # every backlog read (a closed one leaves the dict)
        for holds_slot in (True, False):
            backlog = self._backlogs.get((provider, holds_slot))
            if backlog is not None and backlog.open:
                return True
        return False

    def refill(self, provider: str) -> None:
        """Read pages of ``provider``'s backlog until the line in memory has a head.

        Jobs holding a slot are read before the others. Each page is read first
        and the line changed after, so a failed read (``StoreError``) changes nothing.
        """
        for holds_slot in (True, False):
            backlog = self._backlogs.get((provider, holds_slot))
            while backlog is not None and backlog.open:
                head = self.head(provider)
                if head is not None and (head[1] or not holds_slot):
                    return  # what is in memory comes first
                jobs = self.store.non_terminal_page(
                    provider,
                    after=backlog.store_key,
                    limit=self.page_size,
                    with_remote_id=holds_slot,
                )
                if len(jobs) < self.page_size:
                    backlog.open = False
                    del self._backlogs[(provider, holds_slot)]
                if jobs:
                    backlog.last = order_key(jobs[-1])
                    backlog.store_key = JobStore.resume_key(jobs[-1])
                for job in jobs:
                    if job.id not in self.waiting_ids and not self.holds(job.id, provider):
                        self._push(job, front=False)

    # -- the line -----------------------------------------------------------------
    def enqueue(self, job: Job, *, front: bool = False) -> None:
        """Put ``job`` in line (``front``: ahead of its class, after a slot refusal)."""
        if job.id in self.waiting_ids:
            return  # already in line; a second entry would admit it twice
        backlog = self._backlogs.get((job.provider, job.remote_id is not None))
        if not front and backlog is not None and backlog.open:
            last = backlog.last
            if last is None or order_key(job) > last:
                return  # the store has it, and a later page brings it
        self._push(job, front=front)

    def _push(self, job: Job, *, front: bool) -> None:
        priority, created, _ = order_key(job)
        age = -next(self._seq) if front else created
        entry = (0 if job.remote_id is not None else 1, priority, age, next(self._seq), job.id)
        heapq.heappush(self.waiting.setdefault(job.provider, []), entry)
        self.waiting_ids.add(job.id)

    def discard(self, job_id: str) -> None:
        """``job_id`` leaves the line (its entry is skipped when it comes up)."""
        self.waiting_ids.discard(job_id)

    def head(self, provider: str) -> tuple[str, bool] | None:
        """The next job in line and whether it holds a slot, without taking it."""
        line = self.waiting.get(provider)
        while line:
            holds, _, _, _, job_id = line[0]
            if job_id in self.waiting_ids and not self.holds(job_id, provider):
                return job_id, holds == 0
            heapq.heappop(line)  # a stale entry: cancelled, or already given an actor
        return None

    def pop(self, provider: str) -> None:
        """Take the head of the line (after ``head`` named it)."""
        _, _, _, _, job_id = heapq.heappop(self.waiting[provider])
        self.waiting_ids.discard(job_id)

    def waiting_count(self, provider: str) -> int:
        """Entries in memory for ``provider`` (stale ones included until they come up)."""
        return len(self.waiting.get(provider, ()))

    def idle(self, provider: str) -> bool:
        """True when nothing of ``provider`` can be in line: no entry in memory (not
        even a stale one) and no backlog left to read. What ``head`` and ``refill``
        would find out, for the cost of two lookups."""
        return not self.waiting.get(provider) and (
            not self._backlogs or not self.backlog_open(provider)
        )

    def is_waiting(self, provider: str) -> bool:
        """True when ``provider`` has jobs in line (in memory or in the store)."""
        return self.head(provider) is not None or self.backlog_open(provider)

    def take_if_free(self, job_id: str, provider: str) -> bool:
        """Give a new job of ``provider`` a slot at once if nobody is in line before
        it and there is room (``is_waiting``, ``has_room``, ``take_slot`` in one step:
        done for every job created). False: it must wait in line."""
        if not self.idle(provider) and self.is_waiting(provider):
            return False
        if not self.has_room(provider):
            return False
        self.take_slot(job_id, provider)
        return True

    # -- slots ---------------------------------------------------------------------
    def has_room(self, provider: str, *, holds_slot: bool = False) -> bool:
        """May another job of ``provider`` get an actor now?"""
        cap = self.max_job_actors
        if cap is not None and self.holders >= cap:
            return False
        if holds_slot:
            return True  # it adds nothing to the account's load
        if self.paused.get(provider, 0.0) > self.clock.monotonic():
            return False
        limit = self.slot_limits.get(provider)
        return limit is None or len(self.active.setdefault(provider, set())) < limit

    def take_slot(self, job_id: str, provider: str) -> None:
        """``job_id`` holds a slot of ``provider`` from now on."""
        slots = self.active.setdefault(provider, set())
        if job_id not in slots:
            slots.add(job_id)
            self.holders += 1

    def release(self, job_id: str, provider: str) -> None:
        """``job_id`` gave its slot back (finished, refused, crashed)."""
        slots = self.active.get(provider)
        if slots is not None and job_id in slots:
            slots.discard(job_id)
            self.holders -= 1

    def holds(self, job_id: str, provider: str) -> bool:
        """True while ``job_id`` holds a slot of ``provider``."""
        return job_id in self.active.get(provider, ())

    def in_use(self, provider: str) -> int:
        """Slots of ``provider`` held now."""
        return len(self.active.get(provider, ()))

    def others_waiting(self, provider: str) -> list[str]:
        """Providers other than ``provider`` with jobs in line and room for one."""
        return [
            name
            for name in self.waiting
            if name != provider and self.is_waiting(name) and self.has_room(name)
        ]

    def limits(self) -> Mapping[str, int | None]:
        """The slot limit in force per provider."""
        return dict(self.slot_limits)
