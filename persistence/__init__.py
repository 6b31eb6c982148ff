"""Durable storage of jobs: peewee over SQLite (the default) or PostgreSQL.

``JobStore`` keeps every job's current row and its full transition history;
``ClientBook`` keeps the download-client face's items and categories beside them;
``DatabaseOwner`` makes one engine the only one on a SQLite store;
``open_database`` turns a path or URL into a checked peewee database;
``SCHEMA_VERSION`` is the schema this code reads and writes (see
``persistence._migrations`` for how it changes). Every failure is a
``StoreError``.
"""

from persistence._client_book import ClientBook, ClientCategory, ClientItem
from persistence._database import open_database
from persistence._migrations import SCHEMA_VERSION
from persistence._owner import DatabaseOwner
from persistence._store import JobStore

__all__ = [
    "SCHEMA_VERSION",
    "ClientBook",
    "ClientCategory",
    "ClientItem",
    "DatabaseOwner",
    "JobStore",
    "open_database",
]
