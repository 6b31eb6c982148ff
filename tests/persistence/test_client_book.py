"""ClientBook: the qBittorrent face's rows, on SQLite and PostgreSQL, beside the jobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from persistence_helpers import POSTGRES_URL

from persistence import ClientBook, ClientCategory, ClientItem, JobStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        with JobStore(tmp_path / "jobs.db") as opened:
            yield opened
        return
    if not POSTGRES_URL:
        pytest.skip("DEBRID_TEST_POSTGRES_URL is not set")
    prefix = request.getfixturevalue("postgres_prefix")
    with JobStore(POSTGRES_URL, table_prefix=prefix) as opened:
        yield opened


def item(n: int, **changes: object) -> ClientItem:
    fields: dict[str, object] = dict(hash=f"{n:040x}", provider="mock", name=f"Item {n}",
                                     save_path="/dl/tv", folder=f"/dl/tv/Item {n}",
                                     added_on=n, updated_at=n, job_id=f"job{n}")
    fields.update(changes)
    return ClientItem(**fields)  # type: ignore[arg-type]


def test_items_round_trip_and_upsert(store: JobStore) -> None:
    book = ClientBook(store)
    first = item(1, category="tv", tags=("a", "b"), held={"magnet": "m", "download_dir": "/x"})
    book.put([first, item(2)])
    assert book.get([first.hash]) == {first.hash: first}
    assert [i.hash for i in book.items()] == [first.hash, item(2).hash]  # oldest first
    assert [i.hash for i in book.items("tv")] == [first.hash]
    changed = attrs.evolve(first, held=None, reported_attempt=2, category="movies")
    book.put([changed])
    assert book.get([first.hash])[first.hash] == changed
    assert book.by_job("job1") == changed
    assert book.by_job("nope") is None
    assert book.remove([first.hash, "missing"]) == 1
    assert [i.hash for i in book.items()] == [item(2).hash]


def test_many_items_in_chunks(store: JobStore) -> None:
    book = ClientBook(store)
    book.put(item(n) for n in range(1200))
    assert len(book.get(item(n).hash for n in range(1200))) == 1200
    assert book.remove(item(n).hash for n in range(1200)) == 1200


def test_categories_and_their_removal_clear_items(store: JobStore) -> None:
    book = ClientBook(store)
    book.put_category(ClientCategory("tv", "/dl/tv", 5))
    book.put_category(ClientCategory("tv", "/dl/series", 9))  # an edit keeps created_at
    assert book.categories() == [ClientCategory("tv", "/dl/series", 5)]
    book.put([item(1, category="tv")])
    assert book.remove_categories(["tv"]) == 1
    assert book.categories() == []
    assert book.get([item(1).hash])[item(1).hash].category == ""


def test_the_rows_live_beside_the_jobs_and_survive_a_reopen(tmp_path: Path) -> None:
    with JobStore(tmp_path / "jobs.db") as opened:
        ClientBook(opened).put([item(3)])
    with JobStore(tmp_path / "jobs.db") as reopened:
        assert ClientBook(reopened).get([item(3).hash])[item(3).hash] == item(3)
