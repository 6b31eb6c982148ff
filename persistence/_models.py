"""The tables of a job store, as peewee models bound to one database at runtime.

The classes here are unbound templates. ``bind_tables`` makes subclasses bound
to one database (and table-name prefix), so that several stores on different
files, or different prefixes in one PostgreSQL database, coexist in one
process: a model class bound globally (``Meta.database``, or ``Model.bind``)
could point at only one of them at a time.

Times are epoch milliseconds, which do not fit a 32-bit integer: hence
``BigIntegerField`` (PostgreSQL's INTEGER is 32 bits; SQLite does not care).
"""

from __future__ import annotations

from typing import Any

import attrs
import peewee

__all__ = [
    "ClientCategoryRow",
    "ClientItemRow",
    "JobRow",
    "ProviderStateRow",
    "SchemaVersionRow",
    "Tables",
    "TransitionRow",
    "bind_tables",
]


class JobRow(peewee.Model):
    """One job (table ``jobs``): the current state of its latest attempt."""

    id = peewee.TextField(primary_key=True)
    provider = peewee.TextField(index=True)
    status = peewee.TextField(index=True)
    # Copied out of the payload so that resuming can ORDER BY it on an index.
    priority = peewee.BigIntegerField(index=True, default=0)
    progress = peewee.FloatField(default=0.0)
    payload = peewee.TextField()
    files = peewee.TextField()
    metadata = peewee.TextField()
    error_code = peewee.TextField(null=True)
    error_message = peewee.TextField(null=True)
    attempt = peewee.IntegerField(default=1)
    remote_id = peewee.TextField(null=True, index=True)
    submitted = peewee.BooleanField(default=False)
    created_at = peewee.BigIntegerField(index=True)
    updated_at = peewee.BigIntegerField(index=True)
    #: What a search finds the job by (see ``persistence._search``).
    search = peewee.TextField(default="")
    # Also indexed, by migration 2 alone (tables are only ever made by the
    # migrations): ``jobs_resume_remote`` and ``jobs_resume_local``, partial
    # indexes of the unfinished jobs in resume order (see ``_resume``).


class TransitionRow(peewee.Model):
    """One recorded state change (table ``job_transitions``), in insertion order."""

    id = peewee.BigAutoField()
    job_id = peewee.TextField(index=True)
    attempt = peewee.IntegerField()
    from_status = peewee.TextField(null=True)
    to_status = peewee.TextField()
    at = peewee.BigIntegerField()


class ProviderStateRow(peewee.Model):
    """What one provider taught about itself (table ``provider_state``), kept across restarts."""

    name = peewee.TextField(primary_key=True)
    # None: no limit known (the provider states none, or has not said yet).
    slot_limit = peewee.IntegerField(null=True)
    updated_at = peewee.BigIntegerField()


class PendingCleanupRow(peewee.Model):
    """A remote delete or lookup a provider still owed when the engine stopped.

    (table ``pending_cleanups``; ``kind`` is ``delete``, keyed by remote id, or
    ``lookup``, keyed by the job id whose payload is looked up.)
    """

    provider = peewee.TextField()
    kind = peewee.TextField()
    key = peewee.TextField()

    class Meta:
        primary_key = peewee.CompositeKey("provider", "kind", "key")


class ClientItemRow(peewee.Model):
    """One item of the download-client face (table ``client_items``), by info-hash.

    The qBittorrent-compatible API's own record of what it added: the job it
    became (None while an add made paused waits: ``held`` is then its payload as
    JSON), its category, tags, name and folder, and which failed attempt was
    reported to the *arr app.
    """

    hash = peewee.TextField(primary_key=True)
    job_id = peewee.TextField(null=True, index=True)
    provider = peewee.TextField()
    category = peewee.TextField(default="", index=True)
    tags = peewee.TextField(default="[]")
    name = peewee.TextField()
    save_path = peewee.TextField()
    folder = peewee.TextField()
    held = peewee.TextField(null=True)
    reported_attempt = peewee.IntegerField(null=True)
    added_on = peewee.BigIntegerField()
    updated_at = peewee.BigIntegerField()


class ClientCategoryRow(peewee.Model):
    """A category of the download-client face (table ``client_categories``)."""

    name = peewee.TextField(primary_key=True)
    save_path = peewee.TextField()
    created_at = peewee.BigIntegerField()


class SchemaVersionRow(peewee.Model):
    """The single row of table ``schema_version``: which migrations have run."""

    version = peewee.IntegerField()

    class Meta:
        primary_key = False


#: Table names without prefix, by template.
TABLE_NAMES: dict[type[peewee.Model], str] = {
    JobRow: "jobs",
    TransitionRow: "job_transitions",
    SchemaVersionRow: "schema_version",
    ProviderStateRow: "provider_state",
    PendingCleanupRow: "pending_cleanups",
    ClientItemRow: "client_items",
    ClientCategoryRow: "client_categories",
}


@attrs.frozen
class Tables:
    """The models of one store, bound to its database and prefix."""

    jobs: type[JobRow]
    transitions: type[TransitionRow]
    schema_version: type[SchemaVersionRow]
    provider_state: type[ProviderStateRow]
    pending_cleanups: type[PendingCleanupRow]
    client_items: type[ClientItemRow]
    client_categories: type[ClientCategoryRow]
    prefix: str = ""

    @property
    def all(self) -> tuple[type[peewee.Model], ...]:
        """Every model, parents before children (the order to create tables in)."""
        return (
            self.schema_version,
            self.jobs,
            self.transitions,
            self.provider_state,
            self.pending_cleanups,
            self.client_items,
            self.client_categories,
        )


def bind_tables(database: peewee.Database, prefix: str = "") -> Tables:
    """Subclasses of the templates bound to ``database``, their tables named ``prefix + name``."""
    return Tables(
        jobs=_bound(JobRow, database, prefix),
        transitions=_bound(TransitionRow, database, prefix),
        schema_version=_bound(SchemaVersionRow, database, prefix),
        provider_state=_bound(ProviderStateRow, database, prefix),
        pending_cleanups=_bound(PendingCleanupRow, database, prefix),
        client_items=_bound(ClientItemRow, database, prefix),
        client_categories=_bound(ClientCategoryRow, database, prefix),
        prefix=prefix,
    )


def _bound(template: type[Any], database: peewee.Database, prefix: str) -> Any:
    meta = type(
        "Meta",
        (),
        {
            "database": database,
            "table_name": prefix + TABLE_NAMES[template],
            # Index names follow the (prefixed) table name, as the migrations make them.
            "legacy_table_names": False,
        },
    )
    return type(template.__name__, (template,), {"Meta": meta, "__module__": __name__})
