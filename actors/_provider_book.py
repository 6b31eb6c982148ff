"""ProviderBook: what a provider actor knows of its jobs' remote items, kept across restarts.

The supervisor makes one book per provider and hands it to every incarnation of
that provider's actor, so a crash of the actor loses no ownership, no tracking
and no pending cleanup. Only the provider actor reads or writes it (one
incarnation at a time, on its own thread). Every entry goes when its job or its
remote id goes, so a daemon running for months keeps only what is live; the one
exception is the record of released items, which is bounded instead.

Every index is kept both ways (remote id -> jobs, job -> remote ids), so that
forgetting a job or a remote id costs what that job or id has, never a walk
through every tracked item.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from typing import Any, TypeVar

import attrs

from actors._messages import (
    Adopt,
    Cleanup,
    CleanupKey,
    CleanupKind,
    Ref,
    Release,
    Released,
    Track,
    owed_by,
)
from providers import StartJobPayload
from providers._bounded import BoundedDict
from providers._log import get_logger

__all__ = ["RELEASED_KEPT", "PendingLookup", "ProviderBook"]

log = get_logger("debrid.actors.provider")

_V = TypeVar("_V")

#: Remote ids of completed jobs' items remembered, newest first out last.
RELEASED_KEPT = 100_000


class KeyedDebts(dict[str, _V]):
    """A dict that notes which keys came or went since ``take_changed`` last ran.

    The owed deletes and lookups are compared with what the store records after
    every message of the provider actor; noting the keys that changed keeps that
    comparison to what changed, not to every debt (twenty thousand deletes owed
    after a mass cancel would cost milliseconds per message otherwise). Values
    changing under a key (a try counted) are not a change of the debt.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: set[str] = set(self)

    def __setitem__(self, key: str, value: _V) -> None:
        if key not in self:
            self.changed.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.changed.add(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.changed.add(key)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.changed.add(key)
        return super().setdefault(key, default)

    def popitem(self) -> tuple[str, _V]:
        key, value = super().popitem()
        self.changed.add(key)
        return key, value

    def clear(self) -> None:
        self.changed.update(self)
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def take_changed(self) -> set[str]:
        """The keys that came or went since the last call."""
        changed, self.changed = self.changed, set()
        return changed


@attrs.define
class PendingLookup:
    """A finished job whose submission may have landed: look its payload up, delete the find."""

    payload: StartJobPayload
    #: Tries that failed with a retryable error so far.
    attempts: int = 0


@attrs.define
class ProviderBook:
    """Remote ids, their owners and pollers, and the cleanups still to do, for one provider."""

    #: remote id -> {job id: job actor} that want its status from each poll.
    tracked: dict[str, dict[str, Ref]] = attrs.field(factory=dict)
    #: remote id -> the live jobs that own it (none left: it may be deleted).
    owners: dict[str, set[str]] = attrs.field(factory=dict)
    #: job id -> the remote ids it owns.
    jobs: dict[str, set[str]] = attrs.field(factory=dict)
    #: job id -> the remote ids polled for it (``tracked`` the other way round).
    polled: dict[str, set[str]] = attrs.field(factory=dict)
    #: Jobs whose last submission failed in a way that may have created an item.
    unsure: set[str] = attrs.field(factory=set)
    #: remote id -> failed tries so far, for items to delete that nobody owns.
    deletes: KeyedDebts[int] = attrs.field(factory=KeyedDebts, converter=KeyedDebts)
    #: job id -> the lookup its cleanup still owes.
    lookups: KeyedDebts[PendingLookup] = attrs.field(factory=KeyedDebts, converter=KeyedDebts)
    #: remote id -> polls in a row that left it out.
    misses: dict[str, int] = attrs.field(factory=dict)
    #: Items of completed jobs (``Release``), oldest first: no cleanup deletes them,
    #: no lookup finds them.
    #:
    #: A completed job's item stays remote, but nobody owns it any more, so
    #: without this record an unsure cleanup's lookup of the same payload would
    #: find it and delete it, and a job looking for its own lost submission would
    #: take it and leave its own item behind. Bounded (``released_limit``, the
    #: oldest go first, O(1) per release): a lookup runs soon after its job ends,
    #: and the items it could meet are recent ones. Kept in memory only: a
    #: restart of the process forgets it, and the recovery's ``Adopt`` covers
    #: only live jobs, so after a restart lookups are kept off only the items
    #: live jobs own.
    released: BoundedDict[str, None] = attrs.field(init=False)
    #: The owed cleanups (``deletes`` and ``lookups``) the store records, as far as
    #: the provider actor has told the supervisor (``CleanupsChanged``).
    recorded: set[CleanupKey] = attrs.field(factory=set)
    #: What a finished job's ``Cleanup`` owed (the supervisor recorded it) that the
    #: book does not owe (its item is another job's too, say): to forget.
    to_settle: set[CleanupKey] = attrs.field(factory=set)
    #: Since when (clock monotonic, epoch) the account refuses every call, kept
    #: across restarts of the actor so that its jobs' deadline does not move.
    account_since: tuple[float, float] | None = None
    released_limit: int = attrs.field(default=RELEASED_KEPT, kw_only=True)
    #: The provider's name, for the log.
    name: str = attrs.field(default="", kw_only=True)

    def __attrs_post_init__(self) -> None:
        self.released = BoundedDict(self.released_limit)

    # -- owed cleanups, as recorded -----------------------------------------------
    def owed_changes(self) -> tuple[tuple[CleanupKey, ...], tuple[CleanupKey, ...]] | None:
        """What the store must record and forget so that it holds exactly the cleanups
        owed now (``deletes`` and ``lookups``); None when it does already. Taken as
        recorded from now on. Costs what changed since the last call."""
        if not (self.deletes.changed or self.lookups.changed or self.to_settle):
            return None
        owed: list[CleanupKey] = []
        settled: list[CleanupKey] = []
        for kind, debts, changed in (
            (CleanupKind.DELETE, self.deletes, self.deletes.take_changed()),
            (CleanupKind.LOOKUP, self.lookups, self.lookups.take_changed()),
        ):
            for key in changed:
                entry = (kind, key)
                if key in debts:
                    if entry not in self.recorded:
                        owed.append(entry)
                elif entry in self.recorded:
                    settled.append(entry)
        for entry in self.to_settle:
            kind, key = entry
            if key not in (self.deletes if kind is CleanupKind.DELETE else self.lookups):
                settled.append(entry)
        self.to_settle.clear()
        if not owed and not settled:
            return None
        self.recorded.update(owed)
        self.recorded.difference_update(settled)
        return tuple(owed), tuple(settled)

    def resync(self, recorded: Iterable[CleanupKey]) -> None:
        """The store records ``recorded`` (a new supervisor read it): report against that."""
        self.recorded = set(recorded)
        self.deletes.changed.update(self.deletes)
        self.lookups.changed.update(self.lookups)
        for kind, key in self.recorded:
            (self.deletes if kind is CleanupKind.DELETE else self.lookups).changed.add(key)

    # -- what the provider actor's messages say -------------------------------------
    def keep(self, message: Track | Release | Released | Cleanup | Adopt) -> list[CleanupKey]:
        """Write what ``message`` says of owners, tracking and cleanups; returns the
        cleanups it made owed (deletes by remote id, lookups by job id), to queue."""
        fresh: list[CleanupKey] = []
        match message:
            case Track(job_id, remote_id, _, reply_to):
                self.own(job_id, remote_id)
                self.deletes.pop(remote_id, None)  # in use again: never delete it
                self.track(job_id, remote_id, reply_to)
            case Release(job_id, remote_id):
                # Completed: the job uses nothing any more, and its items stay remote
                # (recorded as released, so that no cleanup's lookup deletes them).
                # A Release that comes late, or twice, finds nothing of the job left.
                self.release_job(job_id, remote_id)
            case Released(releases):
                for release in releases:
                    self.release_job(release.job_id, release.remote_id)
            case Adopt(owners, released, deletes, recorded, lookups):
                # What the store holds now (a new supervisor read it): the next
                # report is made against that.
                self.resync(recorded)
                for remote_id in reversed(released):  # oldest first: the newest are kept
                    self.remember_released(remote_id)
                for job_id, remote_id in owners:
                    self.own(job_id, remote_id)
                    self.deletes.pop(remote_id, None)
                for remote_id in deletes:  # owed when the engine last stopped
                    if not self.in_use(remote_id) and remote_id not in self.deletes:
                        self.deletes[remote_id] = 0
                        fresh.append((CleanupKind.DELETE, remote_id))
                for lookup in lookups:  # in the same message: never reported settled
                    fresh += self._ended(
                        lookup, lookup.job_id, lookup.payload, lookup.remote_id, lookup.unsure
                    )
            case Cleanup(job_id, payload, remote_id, unsure):
                fresh = self._ended(message, job_id, payload, remote_id, unsure)
        return fresh

    def _ended(
        self,
        cleanup: Cleanup,
        job_id: str,
        payload: StartJobPayload,
        remote_id: str | None,
        unsure: bool,
    ) -> list[CleanupKey]:
        unsure = unsure or job_id in self.unsure
        if cleanup.unkeep and remote_id is not None:
            self.released.pop(remote_id, None)  # kept by this job alone (see _retry)
        targets = self.forget_job(job_id)
        if remote_id is not None:
            targets.add(remote_id)
        fresh: list[CleanupKey] = []
        for target in sorted(targets):
            if self.in_use(target):
                log.info("remote_kept", job_id=job_id, provider=self.name, remote_id=target)
                continue  # another live job uses it, or a completed one released it
            self.deletes.setdefault(target, 0)
            fresh.append((CleanupKind.DELETE, target))
        if unsure and not targets:
            self.lookups[job_id] = PendingLookup(payload)
            fresh.append((CleanupKind.LOOKUP, job_id))
        # The supervisor recorded what the Cleanup owes with the job's end. Owed
        # here too, the next report records it (again: harmless); owed no more,
        # the report forgets it. Either way the provider's word comes last.
        key = owed_by(cleanup)
        if key is not None:
            kind, name = key
            if name not in (self.deletes if kind is CleanupKind.DELETE else self.lookups):
                self.to_settle.add(key)
            else:
                self.recorded.discard(key)
                (self.deletes if kind is CleanupKind.DELETE else self.lookups).changed.add(name)
        return fresh

    # -- ownership ---------------------------------------------------------------
    def own(self, job_id: str, remote_id: str) -> None:
        """``job_id`` uses ``remote_id`` from now on (an item nobody else may be handed)."""
        owners = self.owners.get(remote_id)
        if owners is None:
            self.owners[remote_id] = {job_id}
        else:
            owners.add(job_id)
        owned = self.jobs.get(job_id)
        if owned is None:
            self.jobs[job_id] = {remote_id}
        else:
            owned.add(remote_id)
        if self.unsure:
            self.unsure.discard(job_id)

    def disown(self, job_id: str, remote_id: str) -> None:
        """``job_id`` no longer uses ``remote_id``."""
        _unlink(self.owners, remote_id, job_id)
        _unlink(self.jobs, job_id, remote_id)

    def owned_by_others(self, job_id: str | None) -> Set[str]:
        """Remote ids never to be handed to ``job_id``: what other live jobs own, what
        waits for deletion, and what completed jobs released (a job looking for its
        own lost submission must not take a finished twin's item instead, leaving
        its own behind). An item ``job_id`` itself owns (shares) it may find again.

        A live view, not a copy: a lookup asks it about a few ids, and copying
        every owned id of a large account for each one would cost more.
        """
        return _Taken(self, job_id)

    def kept_from_cleanups(self) -> Set[str]:
        """Remote ids a cleanup's lookup must not find: every live job's item (any job,
        the one cleaned up included: what its id owns now is a later attempt's), what
        waits for deletion, and the items completed jobs released. A live view."""
        return _Taken(self, None)

    def in_use(self, remote_id: str) -> bool:
        """True when ``remote_id`` may not be deleted: a live job owns it, or a
        completed one released it."""
        return bool(self.owners.get(remote_id)) or remote_id in self.released

    def release_job(self, job_id: str, remote_id: str) -> set[str]:
        """``job_id`` completed on ``remote_id``: forget the job, remember its items as
        released (never to be deleted). Returns the remote ids it still owned.

        A completed job uses nothing any more, so every item it owned goes with it,
        not only the one named: an item that moved under it (its Release may name
        the old id) would otherwise stay owned for ever.
        """
        owned = self.forget_job(job_id)
        single = not owned or (len(owned) == 1 and remote_id in owned)
        items = (remote_id,) if single else sorted({remote_id, *owned})
        for released in items:
            self._remember_released(released)
            if released in self.deletes:
                del self.deletes[released]  # a completed job's item stays remote
        return owned

    def remember_released(self, remote_id: str) -> None:
        """``remote_id`` is a completed job's item (from the store, after a restart)."""
        if remote_id not in self.owners:
            self._remember_released(remote_id)

    def _remember_released(self, remote_id: str) -> None:
        self.released[remote_id] = None  # the newest; the oldest goes past the limit

    # -- tracking ----------------------------------------------------------------
    def track(self, job_id: str, remote_id: str, ref: Ref) -> None:
        """Send ``remote_id``'s polled status to ``ref`` (the actor of ``job_id``)."""
        self.tracked.setdefault(remote_id, {})[job_id] = ref
        self.polled.setdefault(job_id, set()).add(remote_id)

    def untrack(self, job_id: str, remote_id: str) -> None:
        """Stop polling ``remote_id`` for ``job_id``; the id goes when nobody polls it."""
        _unlink(self.polled, job_id, remote_id)
        pollers = self.tracked.get(remote_id)
        if pollers is None:
            return
        pollers.pop(job_id, None)
        if not pollers:
            del self.tracked[remote_id]
            self.misses.pop(remote_id, None)

    def forget_job(self, job_id: str) -> set[str]:
        """Drop every trace of ``job_id``; returns the remote ids it owned.

        Costs what the job has (its polled and owned ids), whatever the book holds.
        """
        for remote_id in self.polled.pop(job_id, ()):
            pollers = self.tracked.get(remote_id)
            if pollers is not None:
                pollers.pop(job_id, None)
                if not pollers:
                    del self.tracked[remote_id]
                    self.misses.pop(remote_id, None)
        owned = self.jobs.pop(job_id, None)
        if owned is None:
            owned = set()
        for remote_id in owned:
            _unlink(self.owners, remote_id, job_id)
        if self.unsure:
            self.unsure.discard(job_id)
        return owned

    def forget_remote(self, remote_id: str) -> None:
        """``remote_id`` is gone remotely: no owner, poller or count of it stays."""
        for job_id in self.tracked.pop(remote_id, {}):
            _unlink(self.polled, job_id, remote_id)
        self.misses.pop(remote_id, None)
        for job_id in self.owners.pop(remote_id, set()):
            _unlink(self.jobs, job_id, remote_id)

    def move(self, old: str, new: str) -> None:
        """The item ``old`` is now known as ``new`` (a queued TorBox item that started)."""
        if old == new:
            return
        pollers = self.tracked.pop(old, None)
        if pollers is not None:
            self.tracked.setdefault(new, {}).update(pollers)
            for job_id in pollers:
                polled = self.polled.setdefault(job_id, set())
                polled.discard(old)
                polled.add(new)
        self.misses.pop(old, None)
        for job_id in self.owners.pop(old, set()):
            self.owners.setdefault(new, set()).add(job_id)
            owned = self.jobs.setdefault(job_id, set())
            owned.discard(old)
            owned.add(new)
        if old in self.deletes:
            self.deletes[new] = self.deletes.pop(old)

    def is_empty(self) -> bool:
        """True when nothing of a live job or a cleanup is kept (every job released or
        cleaned up). The bounded record of released items does not count."""
        return not (
            self.tracked
            or self.owners
            or self.jobs
            or self.polled
            or self.unsure
            or self.deletes
            or self.lookups
            or self.misses
        )


def _unlink(index: dict[str, set[str]], key: str, value: str) -> None:
    """Take ``value`` out of ``index[key]``, and the key out when nothing is left."""
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]


class _Taken(Set[str]):
    """The remote ids ``book`` will not hand to ``job_id``, or with None to a cleanup
    (see ``owned_by_others`` and ``kept_from_cleanups``)."""

    __slots__ = ("_book", "_job_id")

    def __init__(self, book: ProviderBook, job_id: str | None) -> None:
        self._book = book
        self._job_id = job_id

    def __contains__(self, remote_id: object) -> bool:
        if not isinstance(remote_id, str):
            return False
        book = self._book
        if remote_id in book.deletes:
            return True
        owners = book.owners.get(remote_id)
        if owners:
            # Another job's item is taken; one this job shares it may find again.
            # (No job is None: for a cleanup, every owned item is taken.)
            return self._job_id not in owners
        return remote_id in book.released

    def __iter__(self) -> Iterator[str]:
        book = self._book
        yield from book.deletes
        for remote_id in book.owners:
            if remote_id not in book.deletes and remote_id in self:
                yield remote_id
        for remote_id in book.released:
            if remote_id not in book.deletes and remote_id not in book.owners:
                yield remote_id

    def __len__(self) -> int:
        return sum(1 for _ in self)
