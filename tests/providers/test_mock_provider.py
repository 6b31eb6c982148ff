"""The built-in mock provider: bounded memory, a durable remote side, indexed lookups."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from providers import FakeClock, JobStatus, MockProvider, ProviderContext, ProviderError
from providers._mock_remote import MemoryRemote
from providers._validation import parse_start_job_payload
from providers.mock import _FILE_CACHE_SIZE, _PRUNE_BATCH, DEFAULT_RETENTION


def magnet(n: int) -> str:
    return f"magnet:?xt=urn:btih:{n:040x}&dn=job{n}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(clock: FakeClock) -> Iterator[Callable[..., MockProvider]]:
    """Mocks bound to the test's clock; closed afterwards."""
    made: list[MockProvider] = []

    def build(*args: Any, **options: Any) -> MockProvider:
        mock = MockProvider(*args, **options)
        mock.bind(ProviderContext(clock=clock))
        made.append(mock)
        return mock

    yield build
    for mock in made:
        mock.close()


def vm_steps(mock: MockProvider, call: Callable[[], object]) -> int:
    """SQLite virtual-machine instructions that ``call`` ran on the mock's table."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn = mock._remote._connection()
    conn.set_progress_handler(count, 1)
    try:
        call()
    finally:
        conn.set_progress_handler(None, 1)
    return steps


def test_file_lists_are_remade_alike_once_dropped_from_the_bounded_cache() -> None:
    mock = MockProvider(0.0)
    payloads = [
        parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}"})
        for i in range(_FILE_CACHE_SIZE + 50)
    ]
    first = mock.start_job(payloads[0])
    assert first.status is JobStatus.COMPLETED
    links_before = mock.get_file_links(first.remote_id, payloads[0])
    for payload_ in payloads[1:]:
        mock.start_job(payload_)
    assert len(mock._file_cache) == _FILE_CACHE_SIZE
    assert first.remote_id not in mock._file_cache
    again = mock.get_file_links(first.remote_id, payloads[0])
    assert again == links_before
    assert again.files[0].name == "job0/job0.mkv"


# -- find_existing and exclude ------------------------------------------------------


def test_find_existing_skips_excluded_items_and_keeps_looking(
    make: Callable[..., MockProvider],
) -> None:
    mock = make(1.0)
    job = parse_start_job_payload({"magnet": magnet(1)})
    first, second = mock.start_job(job), mock.start_job(job)
    found = mock.find_existing(job)
    assert found is not None and found.remote_id == first.remote_id  # the oldest
    found = mock.find_existing(job, exclude={first.remote_id})
    assert found is not None and found.remote_id == second.remote_id
    found = mock.find_existing(job, exclude=[second.remote_id])  # any collection
    assert found is not None and found.remote_id == first.remote_id
    assert mock.find_existing(job, exclude=frozenset({first.remote_id, second.remote_id})) is None


def test_find_existing_passes_over_cancelled_items(make: Callable[..., MockProvider]) -> None:
    mock = make(1.0)
    job = parse_start_job_payload({"url": "https://h.example/file.zip"})
    first, second = mock.start_job(job), mock.start_job(job)
    mock.cancel(first.remote_id)
    found = mock.find_existing(job)
    assert found is not None and found.remote_id == second.remote_id
    assert mock.find_existing(job, exclude={second.remote_id}) is None


# -- durability -------------------------------------------------------------------


def test_a_new_mock_on_the_same_state_file_sees_every_item_and_its_status(
    make: Callable[..., MockProvider], clock: FakeClock, tmp_path: Path
) -> None:
    state = tmp_path / "remote.sqlite3"
    before = make(1.0, state_file=state)
    jobs = [parse_start_job_payload({"magnet": magnet(n)}) for n in range(3)]
    made = [before.start_job(job) for job in jobs]
    clock.advance(1.5)
    before.cancel(made[2].remote_id)
    late = before.start_job(jobs[0])
    expected = {m.remote_id: before.get_status(m.remote_id) for m in [*made[:2], late]}
    # No close(): every change was committed before its call returned.
    after = make(1.0, state_file=state)
    assert {rid: after.get_status(rid) for rid in expected} == expected
    assert expected[made[0].remote_id].status is JobStatus.RESOLVING
    assert expected[late.remote_id].status is JobStatus.QUEUED
    with pytest.raises(ProviderError) as gone:
        after.get_status(made[2].remote_id)
    assert gone.value.code == "NOT_FOUND"
    assert after.submissions() == before.submissions()
    assert after.submissions()[jobs[0].source_key] == 2
    found = after.find_existing(jobs[1])
    assert found is not None and found.remote_id == made[1].remote_id
    clock.advance(10)
    assert after.get_status(late.remote_id).status is JobStatus.COMPLETED
    links = after.get_file_links(late.remote_id, jobs[0])
    assert links.ready and links.files[0].name == "job0/job0.mkv"


def test_state_file_is_sqlite_in_wal_mode_and_reopens_after_close(
    make: Callable[..., MockProvider], tmp_path: Path
) -> None:
    state = tmp_path / "sub" / "dir" / "remote.sqlite3"  # missing directories are made
    mock = make(1.0, state_file=state)
    first = mock.start_job(parse_start_job_payload({"magnet": magnet(1)}))
    mock.close()  # the engine closes its providers on stop; a restarted one reuses them
    assert mock.get_status(first.remote_id).remote_id == first.remote_id
    assert state.read_bytes()[:16] == b"SQLite format 3\x00"
    with sqlite3.connect(state) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_without_a_state_file_the_items_outlive_close(make: Callable[..., MockProvider]) -> None:
    mock = make(1.0)
    first = mock.start_job(parse_start_job_payload({"magnet": magnet(1)}))
    mock.close()
    assert mock.state_file is None
    assert mock.get_status(first.remote_id).status is JobStatus.QUEUED


def test_an_older_json_state_file_is_migrated_in_place(
    make: Callable[..., MockProvider], clock: FakeClock, tmp_path: Path
) -> None:
    state = tmp_path / "remote.json"
    created = clock.time()
    old = {
        "abc1": {"id": "abc1", "key": f"{1:040x}", "hash": f"{1:040x}", "url": None,
                 "name": "job1", "kind": "magnet", "created": created, "cancelled": False,
                 "fail_at": None, "fail_code": None},
        "abc2": {"id": "abc2", "key": f"{2:040x}", "hash": f"{2:040x}", "url": None,
                 "name": "job2", "kind": "magnet", "created": created, "cancelled": True,
                 "fail_at": None, "fail_code": None},
        "abc3": {"id": "abc3", "key": f"{3:040x}", "hash": f"{3:040x}", "url": None,
                 "name": "job3", "kind": "magnet", "created": created, "cancelled": False,
                 "fail_at": "resolving", "fail_code": "DEAD"},
    }  # fmt: skip
    state.write_text(json.dumps(old))
    mock = make(1.0, state_file=state)
    clock.advance(1.5)
    assert mock.get_status("abc1").status is JobStatus.RESOLVING
    failed = mock.get_status("abc3")
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "DEAD")
    assert mock.list_statuses(["abc1", "abc2"]).keys() == {"abc1"}
    assert sum(mock.submissions().values()) == 3
    assert state.read_bytes()[:16] == b"SQLite format 3\x00"
    assert json.loads((tmp_path / "remote.json.bak").read_text()) == old


def test_a_state_file_that_is_neither_sqlite_nor_json_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "notes.txt"
    state.write_text("not a state file")
    with pytest.raises(ValueError, match=r"state_file: .*notes\.txt.* neither"):
        MockProvider(1.0, state_file=state)
    assert state.read_text() == "not a state file"


def test_reopening_with_another_step_works_out_the_active_items_again(
    make: Callable[..., MockProvider], clock: FakeClock, tmp_path: Path
) -> None:
    state = tmp_path / "remote.sqlite3"
    quick = make(1.0, state_file=state, max_active=1)
    quick.start_job(parse_start_job_payload({"magnet": magnet(1)}))
    clock.advance(5)  # done after 3 s at one second a step
    quick.close()
    slow = make(100.0, state_file=state, max_active=1)
    # At 100 s a step the same item is RESOLVING until 300 s: it holds the slot.
    with pytest.raises(ProviderError, match="1 of 1 slots"):
        slow.start_job(parse_start_job_payload({"magnet": magnet(2)}))


# -- active counting --------------------------------------------------------------


def test_max_active_counts_only_items_still_running_among_many(
    make: Callable[..., MockProvider], clock: FakeClock
) -> None:
    mock = make(10.0, max_active=50)
    serial = iter(range(1_000_000))

    def submit() -> str:
        return mock.start_job(parse_start_job_payload({"magnet": magnet(next(serial))})).remote_id

    for _ in range(100):  # 5,000 items that ran and completed
        for _ in range(50):
            submit()
        clock.advance(30.0)  # exactly three steps: completed, as get_status says
    cancelled = [submit() for _ in range(50)]
    for remote_id in cancelled:
        mock.cancel(remote_id)
    mock.inject("remote_fail", at=JobStatus.RESOLVING, count=20)
    failing = [submit() for _ in range(20)]
    clock.advance(10.0)  # the 20 fail on reaching RESOLVING
    assert mock.get_status(failing[0]).status is JobStatus.FAILED
    running = [submit() for _ in range(50)]
    with pytest.raises(ProviderError) as refused:
        submit()
    assert refused.value.code == "ACTIVE_LIMIT" and mock.refused_active == 1
    assert mock.peak_active == 50
    clock.advance(30.0)
    assert mock.get_status(running[0]).status is JobStatus.COMPLETED
    submit()  # the slots are free again at the very moment the items completed
    assert sum(mock.submissions().values()) == 5_000 + 50 + 20 + 50 + 1


def test_with_step_zero_nothing_stays_active(make: Callable[..., MockProvider]) -> None:
    mock = make(0.0, max_active=1)
    for n in range(5):
        assert mock.start_job(parse_start_job_payload({"magnet": magnet(n)})).status is (
            JobStatus.COMPLETED
        )
    assert mock.refused_active == 0


def test_a_submit_at_20000_cancelled_items_does_not_read_them(
    make: Callable[..., MockProvider], tmp_path: Path
) -> None:
    job = parse_start_job_payload({"magnet": magnet(0)})
    other = parse_start_job_payload({"magnet": magnet(1)})
    empty = make(100.0, max_active=10, state_file=tmp_path / "empty.sqlite3")
    full = make(100.0, max_active=10, state_file=tmp_path / "full.sqlite3")
    for _ in range(20_000):  # all under the same key, to load find_existing too
        full.cancel(full.start_job(job).remote_id)
    assert sum(full.submissions().values()) == 20_000
    for mock in (empty, full):  # warm up: the same statements, prepared
        mock.cancel(mock.start_job(other).remote_id)
    submit_empty = vm_steps(empty, lambda: empty.start_job(other))
    submit_full = vm_steps(full, lambda: full.start_job(other))
    find_empty = vm_steps(empty, lambda: empty.find_existing(job))
    find_full = vm_steps(full, lambda: full.find_existing(job))
    assert full.find_existing(job) is None
    # Reading 20,000 rows would cost hundreds of thousands of instructions.
    assert submit_full <= submit_empty + 50, (submit_empty, submit_full)
    assert find_full <= find_empty + 50, (find_empty, find_full)
    conn = full._remote._connection()
    plans = {
        "count": "SELECT COUNT(*) FROM items WHERE ends > 0 AND cancelled = 0",
        "find": "SELECT id FROM items WHERE key = 'k' AND cancelled = 0 ORDER BY seq",
        "prune": "SELECT seq FROM items WHERE cancelled = 1 AND ends <= 0 ORDER BY ends LIMIT 9",
        "prune live": "SELECT seq FROM items WHERE cancelled = 0 AND ends <= 0 ORDER BY ends",
        "next due": "SELECT MIN(ends) FROM items WHERE cancelled = 1",
    }
    for name, query in plans.items():
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
        assert "USING" in plan and "INDEX" in plan and "SCAN" not in plan, (name, plan)


# -- retention ---------------------------------------------------------------------


def test_terminal_items_are_forgotten_after_the_retention(
    make: Callable[..., MockProvider], clock: FakeClock
) -> None:
    assert DEFAULT_RETENTION == 7 * 86400
    mock = make(10.0, retention_seconds=100.0)
    done = mock.start_job(parse_start_job_payload({"magnet": magnet(1)}))  # completes at 30
    cancelled = mock.start_job(parse_start_job_payload({"magnet": magnet(2)}))
    clock.advance(1.0)
    mock.cancel(cancelled.remote_id)  # ended at 1
    clock.advance(99.5)  # 100.5: the cancelled one ended 99.5 s ago
    running = mock.start_job(parse_start_job_payload({"magnet": magnet(3)}))
    assert mock.pruned == 0
    clock.advance(1.0)  # 101.5
    mock.get_status(running.remote_id)
    assert mock.pruned == 1
    assert mock.get_status(done.remote_id).status is JobStatus.COMPLETED
    clock.advance(30.0)  # 131.5: the completed one ended 101.5 s ago
    mock.list_statuses([running.remote_id])
    assert mock.pruned == 2
    with pytest.raises(ProviderError) as gone:
        mock.get_status(done.remote_id)
    assert gone.value.code == "NOT_FOUND"
    assert mock.find_existing(parse_start_job_payload({"magnet": magnet(1)})) is None
    assert list(mock.submissions()) == [f"{3:040x}"]
    clock.advance(10_000.0)  # the running one completed long ago: it goes too
    mock.find_existing(parse_start_job_payload({"magnet": magnet(3)}))
    assert mock.remote_items() == []


def test_pruning_goes_in_small_batches_on_ordinary_calls(
    make: Callable[..., MockProvider], clock: FakeClock, tmp_path: Path
) -> None:
    mock = make(0.0, retention_seconds=60.0, state_file=tmp_path / "remote.sqlite3")
    total = 2 * _PRUNE_BATCH + 50
    for n in range(total):
        mock.start_job(parse_start_job_payload({"magnet": magnet(n)}))
    clock.advance(61.0)
    left = []
    for _ in range(4):
        mock.list_statuses([])
        left.append(len(mock.remote_items()))
    assert left == [total - _PRUNE_BATCH, total - 2 * _PRUNE_BATCH, 0, 0]
    assert mock.pruned == total
    # The file holds what is left, not the history.
    with sqlite3.connect(tmp_path / "remote.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0


def test_an_idle_mock_does_not_look_for_items_to_forget_on_every_call(
    make: Callable[..., MockProvider], clock: FakeClock, tmp_path: Path
) -> None:
    mock = make(1.0, retention_seconds=1000.0, state_file=tmp_path / "mock.sqlite3")
    first = mock.start_job(parse_start_job_payload({"magnet": magnet(1)}))
    mock.get_status(first.remote_id)  # the first look found nothing due before 1003
    clock.advance(500.0)
    steps = vm_steps(mock, lambda: mock.list_statuses([]))
    assert steps == 0  # no query at all: nothing can be due yet
    clock.advance(504.0)
    mock.list_statuses([])
    assert mock.pruned == 1


def test_in_memory_a_submit_at_20000_cancelled_items_does_not_read_them(
    make: Callable[..., MockProvider], clock: FakeClock
) -> None:
    # Without a file the mock keeps plain dictionaries (no SQLite statement, no
    # GIL handoff per call): its indexes hold only live items.
    job = parse_start_job_payload({"magnet": magnet(0)})
    mock = make(100.0, max_active=10)
    for _ in range(20_000):
        mock.cancel(mock.start_job(job).remote_id)
    remote = mock._remote
    assert isinstance(remote, MemoryRemote)
    assert mock.find_existing(job) is None
    assert remote._by_key == {} and remote._active == {}
    kept = mock.start_job(job)
    assert mock.find_existing(job) == mock.get_status(kept.remote_id)
    clock.advance(8 * 86400.0)  # past the retention: the cancelled ones are forgotten
    for _ in range(250):
        mock.list_statuses([])
    assert len(remote.all_items()) < 20_001
