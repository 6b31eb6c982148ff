"""The provider actor's waiting line: calls wait here for rate-limit tokens, never on a thread.

Calls are served by lane (cancels and cleanups, then status polls, then link
fetches, then submissions) and first come, first served within a lane. A call
runs once every bucket it needs holds its cost (at most the bucket's burst). A
call that waits does not hold back calls that need other buckets: within a lane,
calls are grouped by the set of buckets they use, and only buckets some earlier
call already waits for are out of reach for later ones. So a spent TorBox
creation budget holds back submissions only, while polls, links and lookups go on.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from providers import RateLimiter

__all__ = ["LANES", "CallQueue", "Lane", "QueuedCall", "Selection", "Waiting"]

#: A wait shorter than this is float residue, not a wait (a FakeClock would never move for it).
_EPSILON = 1e-6


class Lane(enum.Enum):
    """Classes of service, in the order they are served."""

    CANCEL = "cancel"
    STATUS = "status"
    LINKS = "links"
    SUBMIT = "submit"


LANES = tuple(Lane)
_RANK = {lane: rank for rank, lane in enumerate(LANES)}


@attrs.define(eq=False)
class QueuedCall:
    """One provider call waiting for its turn (``message`` says what to do)."""

    message: Any
    lane: Lane
    #: Tokens per bucket the call is expected to take (only buckets that exist).
    costs: Mapping[str, int]
    seq: int
    job_id: str | None = None
    #: A ``BudgetWait`` went to the job already.
    notified: bool = False
    withdrawn: bool = False

    @property
    def buckets(self) -> frozenset[str]:
        """The buckets this call needs tokens from."""
        return frozenset(self.costs)


@attrs.frozen
class Waiting:
    """A call at the head of its group that waits ``delay`` seconds, longest for ``budget``."""

    call: QueuedCall
    budget: str
    delay: float


@attrs.frozen
class Selection:
    """The call to run now (if any), and the heads seen waiting on the way to it."""

    ready: QueuedCall | None
    waiting: tuple[Waiting, ...]


class CallQueue:
    """Calls by lane and bucket set, with their demand on each bucket (see the module)."""

    def __init__(self, limiters: Mapping[str, RateLimiter]) -> None:
        self._limiters = limiters
        self._groups: dict[Lane, dict[frozenset[str], deque[QueuedCall]]] = {
            lane: {} for lane in LANES
        }
        self._by_job: dict[str, list[QueuedCall]] = {}
        self._live: Counter[Lane] = Counter()
        #: Tokens per bucket wanted by the live calls of each lane.
        self._demand: dict[Lane, Counter[str]] = {lane: Counter() for lane in LANES}
        self._seq = 0
        #: Live calls in all lanes (``len``, as an attribute: the actor reads it per message).
        self.live = 0

    def __len__(self) -> int:
        return self.live

    def __iter__(self) -> Iterator[QueuedCall]:
        for lane in LANES:
            for group in self._groups[lane].values():
                yield from (call for call in group if not call.withdrawn)

    def counts(self) -> dict[str, int]:
        """Live calls per lane, by the lane's name."""
        return {lane.value: self._live[lane] for lane in LANES}

    def push(
        self, message: Any, lane: Lane, costs: Mapping[str, int], job_id: str | None = None
    ) -> QueuedCall:
        """Queue a call at the end of its lane (and of its group)."""
        self._seq += 1
        call = QueuedCall(message, lane, self._known(costs), self._seq, job_id)
        self._groups[lane].setdefault(call.buckets, deque()).append(call)
        if job_id is not None:
            self._by_job.setdefault(job_id, []).append(call)
        self._live[lane] += 1
        self.live += 1
        self._demand[lane].update(call.costs)
        return call

    def run_now(
        self, message: Any, lane: Lane, costs: Mapping[str, int], job_id: str | None = None
    ) -> QueuedCall | None:
        """The call, never queued, when it may run at once: nothing waits in the line
        (so nothing could be served before it) and every bucket it needs holds its
        cost now. None otherwise: ``push`` it. What ``push`` then ``select`` would
        give on an empty line, without the bookkeeping of either."""
        if self.live:
            return None
        known = self._known(costs)
        for name, cost in known.items():
            if self._delay(name, cost) > _EPSILON:
                return None
        return QueuedCall(message, lane, known, 0, job_id)

    def estimate(self, call: QueuedCall) -> tuple[str, float] | None:
        """The bucket ``call`` will wait longest for, and about how long, behind the calls
        that come before it; None when it needs no bucket."""
        worst: tuple[str, float] | None = None
        for name, cost in call.costs.items():
            limiter = self._limiters[name]
            ahead = sum(
                self._demand[lane][name] for lane in LANES if _RANK[lane] <= _RANK[call.lane]
            )
            wait = limiter.eta(ahead - cost + min(cost, limiter.burst))
            if worst is None or wait > worst[1]:
                worst = (name, wait)
        return worst

    def withdraw(self, job_id: str) -> list[QueuedCall]:
        """Take every queued call of ``job_id`` out of the line; returns them."""
        calls = self._by_job.pop(job_id, [])
        for call in calls:
            call.withdrawn = True
            self._forget(call)
        return calls

    def select(self) -> Selection:
        """The first call by lane and age whose buckets are ready and not wanted by an
        earlier waiting call; and the waiting group heads met before it."""
        blocked: set[str] = set()
        waiting: list[Waiting] = []
        for lane in LANES:
            for call in self._heads(lane):
                delays = {name: self._delay(name, cost) for name, cost in call.costs.items()}
                unready = {name for name, delay in delays.items() if delay > _EPSILON}
                if not unready and not call.buckets & blocked:
                    return Selection(call, tuple(waiting))
                if unready:
                    budget = max(sorted(unready), key=lambda name: delays[name])
                    waiting.append(Waiting(call, budget, delays[budget]))
                    blocked |= unready
        return Selection(None, tuple(waiting))

    def pop(self, call: QueuedCall) -> None:
        """Take ``call`` (a group head ``select`` returned) out of the line to run it."""
        group = self._groups[call.lane][call.buckets]
        if group and group[0] is call:
            group.popleft()
        else:
            group.remove(call)
        if not group:
            del self._groups[call.lane][call.buckets]
        if call.job_id is not None:
            calls = self._by_job.get(call.job_id)
            if calls is not None:
                calls.remove(call)
                if not calls:
                    del self._by_job[call.job_id]
        self._forget(call)

    def drain(self) -> list[QueuedCall]:
        """Empty the line; returns the calls still waiting (the actor is stopping)."""
        calls = list(self)
        for groups in self._groups.values():
            groups.clear()
        self._by_job.clear()
        self._live.clear()
        self.live = 0
        for demand in self._demand.values():
            demand.clear()
        return calls

    # -- internals -------------------------------------------------------------
    def _known(self, costs: Mapping[str, int]) -> dict[str, int]:
        return {name: cost for name, cost in costs.items() if cost > 0 and name in self._limiters}

    def _forget(self, call: QueuedCall) -> None:
        self._live[call.lane] -= 1
        self.live -= 1
        self._demand[call.lane].subtract(call.costs)

    def _heads(self, lane: Lane) -> list[QueuedCall]:
        heads = []
        groups = self._groups[lane]
        for key in list(groups):
            group = groups[key]
            while group and group[0].withdrawn:
                group.popleft()
            if group:
                heads.append(group[0])
            else:
                del groups[key]
        heads.sort(key=lambda call: call.seq)
        return heads

    def _delay(self, name: str, cost: int) -> float:
        return self._limiters[name].delay(cost)
