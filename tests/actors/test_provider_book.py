"""ProviderBook.owed_changes: what the store must record and forget to match the owed cleanups."""

from __future__ import annotations

from actors import ProviderBook
from actors._messages import CleanupKind
from actors._provider_book import PendingLookup
from providers import StartJobPayload

DELETE, LOOKUP = CleanupKind.DELETE, CleanupKind.LOOKUP


def test_nothing_owed_nothing_recorded_reports_nothing() -> None:
    assert ProviderBook().owed_changes() is None


def test_changes_are_reported_once_against_what_was_recorded() -> None:
    book = ProviderBook()
    book.deletes["r1"] = 0
    book.lookups["j1"] = PendingLookup(StartJobPayload(url="https://example.com/a"))
    owed, settled = book.owed_changes() or ((), ())
    assert set(owed) == {(DELETE, "r1"), (LOOKUP, "j1")} and settled == ()
    assert book.owed_changes() is None  # reported: recorded from now on
    del book.deletes["r1"]
    book.deletes["r2"] = 0
    assert book.owed_changes() == (((DELETE, "r2"),), ((DELETE, "r1"),))
    book.deletes.clear()
    book.lookups.clear()
    owed, settled = book.owed_changes() or ((), ())
    assert owed == () and set(settled) == {(DELETE, "r2"), (LOOKUP, "j1")}
    assert book.recorded == set()


def test_a_record_the_supervisor_made_is_settled_when_it_was_never_owed() -> None:
    """A cleanup the supervisor recorded whose item another job uses: never in
    ``deletes``, so the store's record is forgotten at the next report."""
    book = ProviderBook()
    book.recorded.add((DELETE, "shared"))
    assert book.owed_changes() == ((), ((DELETE, "shared"),))
