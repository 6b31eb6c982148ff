"""What providers taught, kept across restarts (``save_provider_state``), and status counts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from persistence_helpers import make_job, recorded_sql

from persistence import JobStore
from persistence._database import execute
from providers._errors import ValidationError
from providers._status import JobStatus


def test_saved_slot_limits_read_back_by_provider(store: JobStore) -> None:
    assert store.provider_states() == {}
    store.save_provider_state("torbox", 3)
    store.save_provider_state("realdebrid", None)
    store.save_provider_state("torbox", 10)  # replaces the first
    assert store.provider_states() == {"realdebrid": None, "torbox": 10}


def test_provider_state_records_when_it_changed(store: JobStore) -> None:
    table = store.tables.provider_state
    before = time.time_ns() // 1_000_000
    store.save_provider_state("torbox", 3)
    stamped = table.get(table.name == "torbox").updated_at
    assert before <= stamped <= time.time_ns() // 1_000_000
    store.save_provider_state("torbox", 4, at=1_700_000_000_000)
    assert table.get(table.name == "torbox").updated_at == 1_700_000_000_000


def test_provider_state_survives_a_restart(db_path: Path) -> None:
    with JobStore(db_path) as store:
        store.save_provider_state("torbox", 5)
    with JobStore(db_path) as reopened:
        assert reopened.provider_states() == {"torbox": 5}


def test_prefixed_stores_keep_their_own_provider_state(db_path: Path) -> None:
    with JobStore(db_path) as plain, JobStore(db_path, table_prefix="other_") as other:
        plain.save_provider_state("torbox", 1)
        other.save_provider_state("torbox", 2)
        assert plain.provider_states() == {"torbox": 1}
        assert other.provider_states() == {"torbox": 2}


@pytest.mark.parametrize(
    ("name", "slot_limit", "at", "field"),
    [
        ("", 1, None, "name"),
        (3, 1, None, "name"),
        ("torbox", -1, None, "slot_limit"),
        ("torbox", True, None, "slot_limit"),
        ("torbox", 1.5, None, "slot_limit"),
        ("torbox", 1, "now", "at"),
    ],
)
def test_bad_provider_state_is_refused(
    store: JobStore, name: object, slot_limit: object, at: object, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        store.save_provider_state(name, slot_limit, at=at)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert store.provider_states() == {}


# -- counts_by_status ---------------------------------------------------------------


def test_counts_by_status_has_every_status_and_zero_for_none(store: JobStore) -> None:
    assert store.counts_by_status() == dict.fromkeys(JobStatus, 0)
    assert list(store.counts_by_status()) == list(JobStatus)


def test_counts_by_status_counts_all_or_one_provider(store: JobStore) -> None:
    specs = [
        (JobStatus.QUEUED, "mock"),
        (JobStatus.QUEUED, "mock"),
        (JobStatus.QUEUED, "torbox"),
        (JobStatus.DOWNLOADING, "mock"),
        (JobStatus.COMPLETED, "torbox"),
        (JobStatus.FAILED, "mock"),
    ]
    store.save_batch(
        [(make_job(f"j{n}", status=s, provider=p), ()) for n, (s, p) in enumerate(specs)]
    )
    everyone = dict.fromkeys(JobStatus, 0) | {
        JobStatus.QUEUED: 3,
        JobStatus.DOWNLOADING: 1,
        JobStatus.COMPLETED: 1,
        JobStatus.FAILED: 1,
    }
    assert store.counts_by_status() == everyone
    assert store.counts_by_status("mock") == dict.fromkeys(JobStatus, 0) | {
        JobStatus.QUEUED: 2,
        JobStatus.DOWNLOADING: 1,
        JobStatus.FAILED: 1,
    }
    assert store.counts_by_status("nobody") == dict.fromkeys(JobStatus, 0)


def test_counts_by_status_is_one_query_and_skips_unknown_statuses(sqlite_store: JobStore) -> None:
    sqlite_store.save_batch([(make_job(f"j{n}"), ()) for n in range(3)])
    table = sqlite_store.tables.jobs._meta.table_name
    execute(sqlite_store.database, f"UPDATE \"{table}\" SET status = 'paused' WHERE id = 'j0'")
    with recorded_sql(sqlite_store) as statements:
        counts = sqlite_store.counts_by_status()
    assert counts[JobStatus.QUEUED] == 2
    assert sum(counts.values()) == 2
    assert len(statements) == 1 and "GROUP BY" in statements[0]


def test_owed_cleanups_are_recorded_and_forgotten_with_a_batch(store: JobStore) -> None:
    job = make_job("j1")
    store.save_batch(
        [(job, ())],
        [
            ("mock", "delete", "r1", True),
            ("mock", "lookup", "j1", True),
            ("tb", "delete", "r9", True),
        ],
    )
    store.save_batch([], [("mock", "delete", "r1", True), ("mock", "delete", "r2", True)])
    assert store.get("j1") == job
    assert store.pending_cleanups("mock") == (["r1", "r2"], ["j1"])  # r1 recorded once
    store.save_batch([], [("mock", "delete", "r1", False), ("mock", "lookup", "j1", False)])
    assert store.pending_cleanups("mock") == (["r2"], [])
    assert store.pending_cleanups("tb") == (["r9"], [])  # another provider's stays
    store.save_batch([], [("mock", "delete", "never", False)])  # nothing to forget: no error
    assert store.pending_cleanups("mock") == (["r2"], [])


@pytest.mark.parametrize(
    "change",
    [("mock", "purge", "r1", True), ("", "delete", "r1", True), ("mock", "delete", "", False)],
)
def test_a_malformed_cleanup_is_refused_and_nothing_of_the_batch_written(
    store: JobStore, change: tuple[str, str, str, bool]
) -> None:
    with pytest.raises(ValidationError, match="cleanups"):
        store.save_batch([(make_job("j2"), ())], [("mock", "delete", "ok", True), change])
    assert store.pending_cleanups("mock") == ([], [])
    assert store.count() == 0


def test_a_completed_jobs_item_is_found_by_provider_and_remote_id(store: JobStore) -> None:
    store.save(make_job("done", status=JobStatus.COMPLETED, remote_id="r1"))
    store.save(make_job("failed", status=JobStatus.FAILED, remote_id="r2"))
    store.save(make_job("other", status=JobStatus.COMPLETED, remote_id="r3", provider="tb"))
    assert store.is_completed_item("mock", "r1")
    assert not store.is_completed_item("mock", "r2")  # a failed job's item is no one's files
    assert not store.is_completed_item("mock", "r3")  # another provider's
    assert not store.is_completed_item("mock", "unknown")
