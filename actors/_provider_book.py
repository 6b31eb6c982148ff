"""ProviderBook: what a provider actor knows of its jobs' remote items, kept across restarts.

The supervisor makes one book per provider and hands it to every incarnation of
that provider's actor, so a crash of the actor loses no ownership, no tracking
and no pending cleanup. Only the provider actor reads or writes it (one
incarnation at a time, on its own thread). Every entry goes when its job or its
remote id goes, so a daemon running for months keeps only what is live.
"""

from __future__ import annotations

from collections.abc import Iterator, Set

import attrs

from actors._messages import Ref
from providers import StartJobPayload

__all__ = ["PendingLookup", "ProviderBook"]


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
    #: Jobs whose last submission failed in a way that may have created an item.
    unsure: set[str] = attrs.field(factory=set)
    #: remote id -> failed tries so far, for items to delete that nobody owns.
    deletes: dict[str, int] = attrs.field(factory=dict)
    #: job id -> the lookup its cleanup still owes.
    lookups: dict[str, PendingLookup] = attrs.field(factory=dict)
    #: remote id -> polls in a row that left it out.
    misses: dict[str, int] = attrs.field(factory=dict)

    # -- ownership ---------------------------------------------------------------
    def own(self, job_id: str, remote_id: str) -> None:
        """``job_id`` uses ``remote_id`` from now on (an item nobody else may be handed)."""
        self.owners.setdefault(remote_id, set()).add(job_id)
        self.jobs.setdefault(job_id, set()).add(remote_id)
        self.unsure.discard(job_id)

    def disown(self, job_id: str, remote_id: str) -> None:
        """``job_id`` no longer uses ``remote_id``."""
        owners = self.owners.get(remote_id)
        if owners is not None:
            owners.discard(job_id)
            if not owners:
                del self.owners[remote_id]
        owned = self.jobs.get(job_id)
        if owned is not None:
            owned.discard(remote_id)
            if not owned:
                del self.jobs[job_id]

    def owned_by_others(self, job_id: str | None) -> Set[str]:
        """Remote ids live jobs own (``job_id`` not among them), or that wait for deletion.

        Never to be handed to ``job_id``; an item it shares with another job it may find.

        A live view, not a copy: a lookup asks it about a few ids, and copying
        every owned id of a large account for each one would cost more.
        """
        return _Taken(self, job_id)

    # -- tracking ----------------------------------------------------------------
    def track(self, job_id: str, remote_id: str, ref: Ref) -> None:
        """Send ``remote_id``'s polled status to ``ref`` (the actor of ``job_id``)."""
        self.tracked.setdefault(remote_id, {})[job_id] = ref

    def untrack(self, job_id: str, remote_id: str) -> None:
        """Stop polling ``remote_id`` for ``job_id``; the id goes when nobody polls it."""
        pollers = self.tracked.get(remote_id)
        if pollers is None:
            return
        pollers.pop(job_id, None)
        if not pollers:
            del self.tracked[remote_id]
            self.misses.pop(remote_id, None)

    def forget_job(self, job_id: str) -> set[str]:
        """Drop every trace of ``job_id``; returns the remote ids it owned."""
        for remote_id in [rid for rid, pollers in self.tracked.items() if job_id in pollers]:
            self.untrack(job_id, remote_id)
        owned = self.jobs.pop(job_id, set())
        for remote_id in owned:
            owners = self.owners.get(remote_id)
            if owners is not None:
                owners.discard(job_id)
                if not owners:
                    del self.owners[remote_id]
        self.unsure.discard(job_id)
        return owned

    def forget_remote(self, remote_id: str) -> None:
        """``remote_id`` is gone remotely: no owner, poller or count of it stays."""
        self.tracked.pop(remote_id, None)
        self.misses.pop(remote_id, None)
        for job_id in self.owners.pop(remote_id, set()):
            owned = self.jobs.get(job_id)
            if owned is not None:
                owned.discard(remote_id)
                if not owned:
                    del self.jobs[job_id]

    def move(self, old: str, new: str) -> None:
        """The item ``old`` is now known as ``new`` (a queued TorBox item that started)."""
        pollers = self.tracked.pop(old, None)
        if pollers is not None:
            self.tracked.setdefault(new, {}).update(pollers)
        self.misses.pop(old, None)
        for job_id in self.owners.pop(old, set()):
            self.owners.setdefault(new, set()).add(job_id)
            owned = self.jobs.setdefault(job_id, set())
            owned.discard(old)
            owned.add(new)
        if old in self.deletes:
            self.deletes[new] = self.deletes.pop(old)

    def is_empty(self) -> bool:
        """True when nothing at all is kept (every job released or cleaned up)."""
        return not (
            self.tracked
            or self.owners
            or self.jobs
            or self.unsure
            or self.deletes
            or self.lookups
            or self.misses
        )


class _Taken(Set[str]):
    """The remote ids ``book`` will not hand to ``job_id`` (see ``owned_by_others``)."""

    __slots__ = ("_book", "_job_id")

    def __init__(self, book: ProviderBook, job_id: str | None) -> None:
        self._book = book
        self._job_id = job_id

    def __contains__(self, remote_id: object) -> bool:
        if not isinstance(remote_id, str):
            return False
        if remote_id in self._book.deletes:
            return True
        owners = self._book.owners.get(remote_id)
        # Another job's item is taken; one this job shares may be found again.
        return owners is not None and bool(owners) and self._job_id not in owners

    def __iter__(self) -> Iterator[str]:
        yield from self._book.deletes
        for remote_id in self._book.owners:
            if remote_id not in self._book.deletes and remote_id in self:
                yield remote_id

    def __len__(self) -> int:
        return sum(1 for _ in self)
