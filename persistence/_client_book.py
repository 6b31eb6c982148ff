"""``ClientBook``: what the download-client face (the qBittorrent API) keeps of its own.

The engine's jobs know nothing of categories, tags or the folder an *arr app
imports from; the face keeps them here, one ``ClientItem`` per info-hash, beside
the jobs in the same database (tables ``client_items`` and
``client_categories``, made by migration 7). Only the face writes them, each
change in one transaction serialised with the job store's own writes; the job
rows stay the supervisor's alone. Every failure is a ``StoreError``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import peewee

from providers._errors import StoreError

if TYPE_CHECKING:
    from persistence._store import JobStore

__all__ = ["ClientBook", "ClientCategory", "ClientItem"]

#: Hashes per ``IN (...)``: well under SQLite's bound-parameter limit.
_CHUNK = 500


@attrs.frozen
class ClientItem:
    """One item of the face: an info-hash, the job it became, and the face's labels.

    ``job_id`` is None while an add made paused waits to be started; ``held``
    is then the job's payload (plain data, as ``create_job`` takes it).
    ``folder`` is the item's own directory (its files land there; a delete with
    files removes it); ``save_path`` is the category's directory it sits in.
    ``reported_attempt`` is the last failed attempt reported to the *arr app.
    """

    hash: str
    provider: str
    name: str
    save_path: str
    folder: str
    added_on: int
    updated_at: int
    job_id: str | None = None
    category: str = ""
    tags: tuple[str, ...] = ()
    held: Mapping[str, Any] | None = None
    reported_attempt: int | None = None


@attrs.frozen
class ClientCategory:
    """A category: its name and the directory its items land in."""

    name: str
    save_path: str
    created_at: int = 0


class ClientBook:
    """The face's items and categories, in the database of ``store``."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._items = store.tables.client_items
        self._categories = store.tables.client_categories

    # -- items ---------------------------------------------------------------
    def items(self, category: str | None = None) -> builtins.list[ClientItem]:
        """Every item (of ``category`` when given), oldest first."""
        rows = self._items
        query = rows.select().order_by(rows.added_on, rows.hash)
        if category is not None:
            query = query.where(rows.category == category)
        with self._store.reading("read client items"):
            return [_item(row) for row in _dicts(query)]

    def get(self, hashes: Iterable[str]) -> dict[str, ClientItem]:
        """The items of ``hashes`` that exist, by hash."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, ClientItem] = {}
        rows = self._items
        with self._store.reading("read client items"):
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                for row in _dicts(rows.select().where(rows.hash.in_(chunk))):
                    item = _item(row)
                    found[item.hash] = item
        return found

    def by_job(self, job_id: str) -> ClientItem | None:
        """The item whose job is ``job_id``, if any."""
        rows = self._items
        with self._store.reading("read client items"):
            found = _dicts(rows.select().where(rows.job_id == job_id).limit(1))
        return _item(found[0]) if found else None

    def put(self, items: Iterable[ClientItem]) -> None:
        """Write ``items`` (new or changed), in one transaction."""
        values = [_row(item) for item in items]
        if not values:
            return
        rows = self._items
        with self._store.writing("write client items"):
            for start in range(0, len(values), _CHUNK):
                chunk = values[start : start + _CHUNK]
                rows.insert_many(chunk).on_conflict(
                    conflict_target=[rows.hash],
                    update={
                        getattr(rows, name): peewee.EXCLUDED[name]
                        for name in chunk[0]
                        if name != "hash"
                    },
                ).execute()

    def mark_reported(self, hash_: str, job_id: str, attempt: int) -> bool:
        """Record that ``attempt`` of ``job_id`` was reported failed, changing nothing
        else of the row, and only while the item of ``hash_`` is still that job's.
        Returns whether it was."""
        rows = self._items
        with self._store.writing("mark a client item reported"):
            changed: int = rows.update(reported_attempt=attempt).where(
                (rows.hash == hash_) & (rows.job_id == job_id)
            ).execute()
        return changed > 0

    def release_held(self, pairs: Iterable[tuple[str, str]], updated_at: int) -> None:
        """Drop the held payload of each ``(hash, job_id)`` whose job now exists (only
        while the item is still that job's), in one transaction."""
        rows = self._items
        with self._store.writing("release held client items"):
            for hash_, job_id in pairs:
                rows.update(held=None, updated_at=updated_at).where(
                    (rows.hash == hash_) & (rows.job_id == job_id)
                ).execute()

    def remove(self, hashes: Iterable[str]) -> int:
        """Forget the items of ``hashes``; returns how many there were."""
        wanted = list(dict.fromkeys(hashes))
        rows = self._items
        removed = 0
        with self._store.writing("remove client items"):
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                removed += rows.delete().where(rows.hash.in_(chunk)).execute()
        return removed

    # -- categories ------------------------------------------------------------
    def categories(self) -> builtins.list[ClientCategory]:
        """Every category made through the face, by name."""
        rows = self._categories
        with self._store.reading("read client categories"):
            return [
                ClientCategory(str(r["name"]), str(r["save_path"]), int(r["created_at"]))
                for r in _dicts(rows.select().order_by(rows.name))
            ]

    def put_category(self, category: ClientCategory) -> None:
        """Make or change a category."""
        rows = self._categories
        with self._store.writing("write a client category"):
            rows.insert(
                name=category.name, save_path=category.save_path, created_at=category.created_at
            ).on_conflict(
                conflict_target=[rows.name], update={rows.save_path: category.save_path}
            ).execute()

    def remove_categories(self, names: Iterable[str]) -> int:
        """Drop the categories ``names`` and clear them from their items, in one transaction."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return 0
        rows, items = self._categories, self._items
        with self._store.writing("remove client categories"):
            removed: int = rows.delete().where(rows.name.in_(wanted)).execute()
            items.update(category="").where(items.category.in_(wanted)).execute()
        return removed


def _dicts(query: Any) -> builtins.list[Mapping[str, Any]]:
    rows: builtins.list[Mapping[str, Any]] = list(query.dicts())
    return rows


def _row(item: ClientItem) -> dict[str, Any]:
    return {
        "hash": item.hash,
        "job_id": item.job_id,
        "provider": item.provider,
        "category": item.category,
        "tags": orjson.dumps(list(item.tags)).decode(),
        "name": item.name,
        "save_path": item.save_path,
        "folder": item.folder,
        "held": orjson.dumps(dict(item.held)).decode() if item.held is not None else None,
        "reported_attempt": item.reported_attempt,
        "added_on": item.added_on,
        "updated_at": item.updated_at,
    }


def _item(row: Mapping[str, Any]) -> ClientItem:
    try:
        tags = orjson.loads(row["tags"] or "[]")
        held = orjson.loads(row["held"]) if row["held"] is not None else None
    except orjson.JSONDecodeError as exc:
        raise StoreError(f"client item {row['hash']!r} holds unreadable JSON: {exc}") from exc
    return ClientItem(
        hash=str(row["hash"]),
        job_id=row["job_id"],
        provider=str(row["provider"]),
        category=str(row["category"] or ""),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        name=str(row["name"]),
        save_path=str(row["save_path"]),
        folder=str(row["folder"]),
        held=held if isinstance(held, dict) else None,
        reported_attempt=row["reported_attempt"],
        added_on=int(row["added_on"]),
        updated_at=int(row["updated_at"]),
    )
