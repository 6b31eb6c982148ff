"""ProviderBook.owed_changes: what the store must record and forget to match the owed cleanups."""

from __future__ import annotations

from actors import ProviderBook
from actors._messages import Adopt, Cleanup, CleanupKind, Release, Released
from actors._provider_book import PendingLookup
from providers import StartJobPayload

DELETE, LOOKUP = CleanupKind.DELETE, CleanupKind.LOOKUP
PAYLOAD = StartJobPayload(url="https://example.com/b")


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
    book.keep(Adopt((("a", "shared"), ("b", "shared")), ()))
    assert book.keep(Cleanup("a", PAYLOAD, "shared", False)) == []
    assert book.owed_changes() == ((), ((DELETE, "shared"),))
    assert book.owed_changes() is None


def test_a_settle_in_flight_never_has_the_last_word_on_a_debt_owed_again() -> None:
    """Review finding: two jobs share X and are cancelled together. The supervisor
    records X owed for each; the provider settles it for the first (kept: the second
    owns it), and that settle may be written after the second's record. The
    provider's next report, once the second's Cleanup makes X owed, records X again."""
    book = ProviderBook()
    book.keep(Adopt((("a", "X"), ("b", "X")), ()))
    book.keep(Cleanup("a", PAYLOAD, "X", False))
    assert book.owed_changes() == ((), ((DELETE, "X"),))
    assert book.keep(Cleanup("b", PAYLOAD, "X", False)) == [(DELETE, "X")]
    assert book.owed_changes() == (((DELETE, "X"),), ())


def test_lookups_handed_back_at_start_are_never_reported_settled_first() -> None:
    """Review finding: the lookups the store records came after the Adopt that reset
    the record, so the report in between forgot them while still owed."""
    book = ProviderBook()
    fresh = book.keep(
        Adopt((), (), (), ((LOOKUP, "j"),), (Cleanup("j", PAYLOAD, None, True),))
    )
    assert fresh == [(LOOKUP, "j")]
    # Recorded again (the store ignores a second record), never forgotten first.
    assert book.owed_changes() == (((LOOKUP, "j"),), ())
    assert set(book.lookups) == {"j"}


def test_a_new_supervisor_s_record_is_reported_against_in_full() -> None:
    book = ProviderBook()
    book.deletes["r1"] = 0
    book.owed_changes()
    book.keep(Adopt((), (), (), ((DELETE, "stale"),)))  # the store lost r1, holds a stale one
    owed, settled = book.owed_changes() or ((), ())
    assert owed == ((DELETE, "r1"),) and settled == ((DELETE, "stale"),)


def test_a_try_counted_is_not_a_change_of_the_debt() -> None:
    book = ProviderBook()
    book.deletes["r1"] = 0
    book.owed_changes()
    book.deletes["r1"] += 1
    assert book.owed_changes() is None



def test_keep_a_cleanup_deletes_only_what_no_other_job_uses() -> None:
    book = ProviderBook(name="mock")
    book.keep(Adopt((("a", "shared"), ("b", "shared"), ("a", "own")), ()))
    fresh = book.keep(Cleanup("a", PAYLOAD, "own", False))
    assert fresh == [(DELETE, "own")]  # "shared" is b's too: kept
    assert book.deletes == {"own": 0}
    assert book.owners == {"shared": {"b"}}
    assert book.owed_changes() == (((DELETE, "own"),), ())
    # b cancelled too: now nobody uses it.
    assert book.keep(Cleanup("b", PAYLOAD, "shared", False)) == [(DELETE, "shared")]


def test_keep_an_unsure_cleanup_with_nothing_known_owes_a_lookup() -> None:
    book = ProviderBook()
    assert book.keep(Cleanup("c", PAYLOAD, None, True)) == [(LOOKUP, "c")]
    assert set(book.lookups) == {"c"}
    assert book.owed_changes() == (((LOOKUP, "c"),), ())
    assert book.keep(Cleanup("d", PAYLOAD, None, False)) == []  # nothing made: nothing owed


def test_keep_released_items_are_never_deleted_and_adopt_resets_the_record() -> None:
    book = ProviderBook()
    book.keep(Adopt((("a", "r1"),), ()))
    book.keep(Released((Release("a", "r1"),)))
    assert book.owners == {} and "r1" in book.released
    assert book.keep(Adopt((), (), ("r1", "r2"), ((DELETE, "r2"), (LOOKUP, "gone")))) == [
        (DELETE, "r2")
    ]
    assert book.deletes == {"r2": 0}  # r1 is a completed job's: not deleted
    assert book.recorded == {(DELETE, "r2"), (LOOKUP, "gone")}
    assert book.owed_changes() == ((), ((LOOKUP, "gone"),))
