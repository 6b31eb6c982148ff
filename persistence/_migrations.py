"""Versioned schema migrations: the only way the schema of a job store changes.

``MIGRATIONS`` is an ordered list of steps; step N turns a version N-1 database
into a version N one. ``migrate`` applies every pending step, in order, in one
transaction: a database is either fully migrated or untouched. A database whose
version is newer than ``SCHEMA_VERSION`` is refused (``StoreError``), never
downgraded: an older engine would not know what the newer columns mean.

A step never drops data, and never uses the current models in ``_models``: those
follow the latest version, while a step must build the same schema forever. Step
1 therefore creates its tables from its own frozen copies of the version-1
models.

Versions:

1. ``jobs`` and ``job_transitions``.
2. Two partial indexes on the unfinished jobs, in resume order
   (``jobs_resume_remote``, ``jobs_resume_local``): ``JobStore.non_terminal_page``
   and ``live_remote_ids`` read them.
3. ``provider_state``: what each provider taught about its slot limit.
4. An index of completed jobs' remote items.
5. ``pending_cleanups``: remote deletes and lookups owed.
6. ``jobs.search``: the folded text a search finds a job by, filled for the jobs
   already stored.
7. ``client_items`` and ``client_categories``: the download-client face's
   (qBittorrent API) items and categories.

To add version N: append ``Migration(N, "what it does", _vN)`` where ``_vN``
alters tables with plain DDL (or ``playhouse.migrate``), update the models in
``_models`` to match, and keep ``test_migrated_schema_matches_models`` green.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import attrs
import peewee

from persistence._database import (
    describe_database,
    describe_error,
    execute,
    write_transaction,
)
from persistence._models import TABLE_NAMES, SchemaVersionRow
from persistence._search import fold, search_text
from providers._errors import StoreError

__all__ = [
    "LIVE_JOBS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "MigrationContext",
    "migrate",
]


@attrs.frozen
class MigrationContext:
    """What a step works on: the database, and the prefix of its table names."""

    database: peewee.Database
    prefix: str = ""

    def table(self, name: str) -> str:
        """The real name of table ``name`` (``"jobs"`` -> ``prefix + "jobs"``)."""
        return self.prefix + name


@attrs.frozen
class Migration:
    """One step: ``apply`` turns a version ``version - 1`` schema into version ``version``."""

    version: int
    description: str
    apply: Callable[[MigrationContext], None]


def _v1_create_tables(ctx: MigrationContext) -> None:
    # Frozen copies of the version-1 tables; see the module docstring for why.
    class Jobs(peewee.Model):
        id = peewee.TextField(primary_key=True)
        provider = peewee.TextField(index=True)
        status = peewee.TextField(index=True)
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

        class Meta:
            database = ctx.database
            table_name = ctx.table("jobs")
            # Index names from the table name ("other_jobs_status"), not the
            # class name: prefixed stores in one database need distinct ones.
            legacy_table_names = False

    class JobTransitions(peewee.Model):
        id = peewee.BigAutoField()
        job_id = peewee.TextField(index=True)
        attempt = peewee.IntegerField()
        from_status = peewee.TextField(null=True)
        to_status = peewee.TextField()
        at = peewee.BigIntegerField()

        class Meta:
            database = ctx.database
            table_name = ctx.table("job_transitions")
            legacy_table_names = False

    ctx.database.create_tables([Jobs, JobTransitions], safe=False)


#: The jobs the resume indexes of step 2 hold: those not finished. The store's
#: paging queries repeat it word for word, because SQLite uses a partial index
#: only for a query whose WHERE repeats the index's terms with the same literals
#: (a bound parameter never matches). ORs rather than ``status IN (...)``: SQLite
#: evaluates this at every write of a job, and an IN list made updates of live
#: jobs 80% slower where these ORs cost 20%. Frozen with step 2, like its indexes.
LIVE_JOBS = "(status = 'queued' OR status = 'resolving' OR status = 'downloading')"


def _v2_index_live_jobs(ctx: MigrationContext) -> None:
    # Two partial indexes in the resume order (priority DESC, created_at, id),
    # one for the jobs that are at their provider and one for the jobs that are
    # not, so that a page of either kind is read straight off its index however
    # many jobs of the other kind come before it. A job is in at most one of them,
    # and finished jobs (the bulk of a large store) in neither. ``remote_id``
    # and ``status`` close the first one's key, so that listing live remote
    # ids reads the index alone (SQLite wants every column the query names in it).
    jobs = ctx.table("jobs")
    execute(
        ctx.database,
        f'CREATE INDEX "{jobs}_resume_remote" ON "{jobs}" '
        "(provider, priority DESC, created_at, id, remote_id, status) "
        f"WHERE {LIVE_JOBS} AND remote_id IS NOT NULL",
    )
    execute(
        ctx.database,
        f'CREATE INDEX "{jobs}_resume_local" ON "{jobs}" '
        "(provider, priority DESC, created_at, id) "
        f"WHERE {LIVE_JOBS} AND remote_id IS NULL",
    )


def _v3_create_provider_state(ctx: MigrationContext) -> None:
    # A frozen copy, as in step 1.
    class ProviderState(peewee.Model):
        name = peewee.TextField(primary_key=True)
        slot_limit = peewee.IntegerField(null=True)
        updated_at = peewee.BigIntegerField()

        class Meta:
            database = ctx.database
            table_name = ctx.table("provider_state")
            legacy_table_names = False

    ctx.database.create_tables([ProviderState], safe=False)


def _v4_index_completed_items(ctx: MigrationContext) -> None:
    # A start hands the provider actors the items of the most recently completed
    # jobs (``completed_remote_ids``); without this the query sorts every
    # completed job of a store that has run for months.
    jobs = ctx.table("jobs")
    execute(
        ctx.database,
        f'CREATE INDEX "{jobs}_completed_items" ON "{jobs}" '
        "(provider, updated_at DESC, remote_id) "
        "WHERE status = 'completed' AND remote_id IS NOT NULL",
    )


def _v5_create_pending_cleanups(ctx: MigrationContext) -> None:
    # A frozen copy, as in step 1.
    class PendingCleanup(peewee.Model):
        provider = peewee.TextField()
        kind = peewee.TextField()
        key = peewee.TextField()

        class Meta:
            database = ctx.database
            table_name = ctx.table("pending_cleanups")
            legacy_table_names = False
            primary_key = peewee.CompositeKey("provider", "kind", "key")

    ctx.database.create_tables([PendingCleanup], safe=False)


def _v6_add_search_text(ctx: MigrationContext) -> None:
    jobs = ctx.table("jobs")
    execute(ctx.database, f'ALTER TABLE "{jobs}" ADD COLUMN search TEXT NOT NULL DEFAULT \'\'')
    mark = ctx.database.param
    # The table name is ours (a prefix and a fixed name); the values are bound.
    rows = execute(ctx.database, f'SELECT id, payload, files FROM "{jobs}"').fetchall()  # noqa: S608
    update = f'UPDATE "{jobs}" SET search = {mark} WHERE id = {mark}'  # noqa: S608
    for job_id, payload, files in rows:
        execute(ctx.database, update, (_v6_text(job_id, payload, files), job_id))


def _v6_text(job_id: str, payload_json: str, files_json: str) -> str:
    """The search text of a stored row, read from its JSON as version 5 wrote it."""
    try:
        payload = json.loads(payload_json)
        files = json.loads(files_json)
    except ValueError:
        return fold(job_id)
    payload = payload if isinstance(payload, dict) else {}
    names = [f["name"] for f in files if isinstance(f, dict) and isinstance(f.get("name"), str)] \
        if isinstance(files, list) else []

    def text(key: str) -> str | None:
        value = payload.get(key)
        return value if isinstance(value, str) else None

    return search_text(job_id, text("url"), text("magnet"), text("download_dir"), names)


def _v7_create_client_tables(ctx: MigrationContext) -> None:
    # Frozen copies, as in step 1.
    class ClientItem(peewee.Model):
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

        class Meta:
            database = ctx.database
            table_name = ctx.table("client_items")
            legacy_table_names = False

    class ClientCategory(peewee.Model):
        name = peewee.TextField(primary_key=True)
        save_path = peewee.TextField()
        created_at = peewee.BigIntegerField()

        class Meta:
            database = ctx.database
            table_name = ctx.table("client_categories")
            legacy_table_names = False

    ctx.database.create_tables([ClientItem, ClientCategory], safe=False)


#: Every schema version, oldest first. Append only; never edit a released step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create jobs and job_transitions", _v1_create_tables),
    Migration(2, "index unfinished jobs in resume order", _v2_index_live_jobs),
    Migration(3, "create provider_state", _v3_create_provider_state),
    Migration(4, "index completed jobs' remote items", _v4_index_completed_items),
    Migration(5, "create pending_cleanups", _v5_create_pending_cleanups),
    Migration(6, "add jobs.search, filled for stored jobs", _v6_add_search_text),
    Migration(7, "create client_items and client_categories", _v7_create_client_tables),
)

#: The schema version this code reads and writes.
SCHEMA_VERSION = MIGRATIONS[-1].version


def migrate(
    database: peewee.Database, prefix: str = "", migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the schema up to the last of ``migrations``; return the version it is now at.

    Raises ``StoreError`` for a database newer than the last step, and for any
    database error (the transaction is then rolled back: nothing changes).
    """
    latest = _check_steps(migrations)
    ctx = MigrationContext(database, prefix)
    where = describe_database(database)
    try:
        current = _read_version(ctx)
        _refuse_newer(current, latest, where)
        if current == latest:
            return current
        with write_transaction(database), _migration_lock(ctx):
            # Read again under the lock: another process may have migrated
            # between the first read and now.
            _ensure_version_table(ctx)
            current = _read_version(ctx)
            _refuse_newer(current, latest, where)
            for step in migrations:
                if step.version > current:
                    step.apply(ctx)
                    _write_version(ctx, step.version)
    except StoreError:
        raise
    except peewee.PeeweeException as exc:
        raise StoreError(
            f"cannot migrate job store {where!r} to schema version {latest}: {describe_error(exc)}"
        ) from exc
    return latest


def _check_steps(migrations: Sequence[Migration]) -> int:
    versions = [step.version for step in migrations]
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must run 1, 2, 3... without gaps, got {versions}")
    return versions[-1]


def _refuse_newer(current: int, latest: int, where: str) -> None:
    if current > latest:
        raise StoreError(
            f"job store {where!r} has schema version {current}, newer than this "
            f"debrid-engine knows ({latest}); upgrade debrid-engine to use it "
            "(the store is never downgraded)"
        )


def _version_model(ctx: MigrationContext) -> type[SchemaVersionRow]:
    meta = type(
        "Meta",
        (),
        {"database": ctx.database, "table_name": ctx.table(TABLE_NAMES[SchemaVersionRow])},
    )
    model: type[SchemaVersionRow] = type("SchemaVersion", (SchemaVersionRow,), {"Meta": meta})
    return model


def _read_version(ctx: MigrationContext) -> int:
    """The stored version; 0 for a database that has never been migrated."""
    model = _version_model(ctx)
    if not ctx.database.table_exists(model._meta.table_name):
        return 0
    row = model.select(peewee.fn.MAX(model.version)).scalar()
    return int(row) if row is not None else 0


def _ensure_version_table(ctx: MigrationContext) -> None:
    ctx.database.create_tables([_version_model(ctx)], safe=True)


def _write_version(ctx: MigrationContext, version: int) -> None:
    model = _version_model(ctx)
    # One row, always: replace whatever is there.
    model.delete().execute()
    model.insert(version=version).execute()


@contextmanager
def _migration_lock(ctx: MigrationContext) -> Iterator[None]:
    """Keep two processes from migrating the same store at once.

    SQLite needs nothing more: ``BEGIN IMMEDIATE`` holds the file's write lock.
    PostgreSQL gets a transaction-scoped advisory lock, taken before any DDL
    (two concurrent ``CREATE TABLE IF NOT EXISTS`` can otherwise collide).
    """
    if isinstance(ctx.database, peewee.PostgresqlDatabase):
        execute(
            ctx.database,
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"debrid-engine:migrate:{ctx.prefix}",),
        )
    yield
