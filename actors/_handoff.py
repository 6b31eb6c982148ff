"""What the supervisor hands the provider actors: cleanups, releases, and what waits for them.

A finished job's ``Cleanup`` and the ``Released`` of committed completions go
to the provider's actor; while that actor is down they wait as leftovers (in a
dict the Engine owns, so they outlive a supervisor restart) and go to its next
actor first, in the order they came. At start the owed cleanups the store
records are read back for each provider; at a clean stop the whole record is
written once more from the books (with the leftovers that still wait).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pykka

from actors._handle import ProviderHandle
from actors._messages import Cleanup, CleanupKey, CleanupKind, Ref, Release, Released
from actors._provider_book import ProviderBook
from persistence import JobStore
from providers import Job, JobStatus, StoreError
from providers._log import get_logger

__all__ = ["OWED_SAVE_TRIES", "Handoff", "OwedAtStart"]

log = get_logger("debrid.actors.supervisor")

#: Tries, at stop, of the write of the cleanups still owed: one failure of a store
#: that fails for a moment (a lock held) must not cost the record.
OWED_SAVE_TRIES = 3

#: Deletes (remote ids) and lookups to hand over, and every key the store records.
OwedAtStart = tuple[list[str], list[Cleanup], tuple[CleanupKey, ...]]


class Handoff:
    """Messages for provider actors, kept while their actor is down (see the module)."""

    def __init__(
        self,
        store: JobStore,
        books: Mapping[str, ProviderBook],
        handles: Mapping[str, ProviderHandle],
        leftovers: dict[str, list[Cleanup | Released]],
    ) -> None:
        self.store = store
        self.books = books
        self.handles = handles
        self.leftovers = leftovers
        #: Completions waiting for their commit, then released to their provider.
        self.releases: dict[str, list[Release]] = {}

    def hand(self, name: str, message: Cleanup | Released) -> None:
        """Give ``message`` to ``name``'s actor, or keep it for the next one."""
        handle = self.handles.get(name)
        try:
            if handle is None:
                raise pykka.ActorDeadError(name)
            handle.tell(message)
        except pykka.ActorDeadError:
            self.leftovers.setdefault(name, []).append(message)

    def tell(self, name: str, message: Any) -> None:
        """Give ``message`` to ``name``'s actor if it is up (logged when not)."""
        handle = self.handles.get(name)
        if handle is not None:
            try:
                handle.tell(message)
            except pykka.ActorDeadError:
                log.warning("provider_down", provider=name, message=type(message).__name__)

    def deliver_leftovers(self, name: str, ref: Ref) -> None:
        """Give a new actor of ``name`` what waited for it, in order."""
        kept = self.leftovers.pop(name, [])
        for index, leftover in enumerate(kept):
            try:
                ref.tell(leftover)
            except pykka.ActorDeadError:
                # Died already: the rest waits for the next one.
                self.leftovers.setdefault(name, []).extend(kept[index:])
                return

    # -- releases ------------------------------------------------------------------
    def completed(self, job: Job, *, keep_failed: bool = False) -> None:
        """``job`` finished: if it completed on a remote item (or failed on one that is
        to be kept, ``keep_failed``), release it after the commit."""
        kept = job.status is JobStatus.COMPLETED or (keep_failed and job.status is JobStatus.FAILED)
        if kept and job.remote_id is not None:
            self.releases.setdefault(job.provider, []).append(Release(job.id, job.remote_id))

    def release_committed(self, dropped: Mapping[str, BaseException]) -> None:
        """A commit wrote every completion noted so far, but those of ``dropped``."""
        releases, self.releases = self.releases, {}
        for name, items in releases.items():
            kept = tuple([r for r in items if r.job_id not in dropped]) if dropped else tuple(items)
            if kept:
                self.hand(name, Released(kept))

    # -- the record of owed cleanups ---------------------------------------------------
    def owed_at_start(self, name: str) -> OwedAtStart:
        """The deletes and lookups ``name`` owes as the store records them, and every
        recorded key (a lookup of a job not finished any more, or gone, is recorded
        but not owed: the provider actor reports it settled). Reads only."""
        deletes, lookup_ids = self.store.pending_cleanups(name)
        jobs = self.store.get_many(lookup_ids) if lookup_ids else {}
        lookups = [
            Cleanup(job.id, job.payload, None, True) for job in jobs.values() if job.terminal
        ]
        recorded = tuple(
            [(CleanupKind.DELETE, remote_id) for remote_id in deletes]
            + [(CleanupKind.LOOKUP, job_id) for job_id in lookup_ids]
        )
        return deletes, lookups, recorded

    def save_owed(self) -> None:
        """Write the whole record of owed cleanups from the books and the leftovers.

        For a clean stop, once the provider actors have stopped (nothing else
        writes the books then). A delete owed for an item gone meanwhile costs one
        request and counts as done.
        """
        for name, book in self.books.items():
            deletes = list(book.deletes)
            lookups = list(book.lookups)
            for leftover in self.leftovers.get(name, []):
                if isinstance(leftover, Cleanup):
                    if leftover.remote_id is not None:
                        deletes.append(leftover.remote_id)
                    elif leftover.unsure:
                        lookups.append(leftover.job_id)
            for tries in range(1, OWED_SAVE_TRIES + 1):
                try:
                    self.store.replace_pending_cleanups(name, deletes, lookups)
                except StoreError as error:
                    if tries < OWED_SAVE_TRIES:
                        log.warning("pending_cleanups_retry", provider=name, error=str(error))
                        continue
                    log.error("pending_cleanups_unsaved", provider=name, error=str(error))
                break
