"""``DatabaseOwner``: one engine per SQLite database, and a dead owner's lock is free at once."""

from __future__ import annotations

import datetime
import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from persistence_helpers import POSTGRES_URL, make_job, needs_postgres

from persistence import DatabaseOwner, JobStore
from providers._errors import StoreError

ROOT = Path(__file__).resolve().parents[2]
# Generous: only a machine that has stalled waits this long; progress is signalled.
ANSWER_TIMEOUT = 60.0


@pytest.fixture
def owner(db_path: Path) -> Iterator[DatabaseOwner]:
    """This process's claim on the test's database."""
    with DatabaseOwner.claim(db_path) as claimed:
        yield claimed


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python process running ``code`` (with ``sys.argv[1:] == args``), talking through pipes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_line(stream: IO[str] | None, timeout: float = ANSWER_TIMEOUT) -> str:
    """The next line a subprocess writes, waiting at most ``timeout`` seconds for it."""
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the subprocess said nothing in time"
    return stream.readline().strip()


CLAIM_AND_WAIT = """
    import sys
    from persistence import DatabaseOwner
    owner = DatabaseOwner.claim(sys.argv[1])
    print("claimed", owner.holds_lock, flush=True)
    sys.stdin.read()  # holds the lock until the test closes stdin, or kills us
"""


@pytest.fixture
def other_owner(db_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that has claimed the test's database and holds it."""
    proc = spawn(CLAIM_AND_WAIT, str(db_path))
    try:
        assert read_line(proc.stdout) == "claimed True", proc.stderr
        yield proc
    finally:
        proc.kill()
        proc.communicate(timeout=ANSWER_TIMEOUT)


def test_claim_locks_a_file_beside_the_database_and_records_the_owner(
    owner: DatabaseOwner, db_path: Path
) -> None:
    assert owner.holds_lock
    assert owner.location == str(db_path)
    assert owner.lock_path == f"{db_path}.owner"
    record = json.loads(Path(f"{db_path}.owner").read_text())
    assert record["pid"] == os.getpid()
    assert record["hostname"] == socket.gethostname()
    started = datetime.datetime.fromisoformat(record["started_at"])
    assert abs(datetime.datetime.now(datetime.UTC) - started) < datetime.timedelta(minutes=5)
    assert not db_path.exists()  # the database itself is neither opened nor created


def test_a_second_claim_in_the_same_process_is_refused(owner: DatabaseOwner, db_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        DatabaseOwner.claim(db_path)
    message = str(caught.value)
    assert str(db_path) in message
    assert f"in use by process {os.getpid()} on host {socket.gethostname()} (since " in message
    assert message.count("; this process)") == 1
    assert "one engine per SQLite database" in message
    assert owner.holds_lock  # the failed claim took nothing from the first


def test_a_claim_held_by_another_process_names_it(
    other_owner: subprocess.Popen[str], db_path: Path
) -> None:
    with pytest.raises(StoreError) as caught:
        DatabaseOwner.claim(db_path)
    message = str(caught.value)
    assert f"job store {str(db_path)!r} is in use by process {other_owner.pid}" in message
    assert f"on host {socket.gethostname()} (since " in message
    assert "this process" not in message
    assert "use PostgreSQL to share a store" in message


def test_the_lock_of_a_killed_process_is_taken_over_at_once(
    other_owner: subprocess.Popen[str], db_path: Path
) -> None:
    with pytest.raises(StoreError):
        DatabaseOwner.claim(db_path)
    other_owner.kill()  # SIGKILL: no cleanup of any kind runs
    assert other_owner.wait(timeout=ANSWER_TIMEOUT) == -signal.SIGKILL
    with DatabaseOwner.claim(db_path) as mine:
        assert mine.holds_lock
        assert json.loads(Path(f"{db_path}.owner").read_text())["pid"] == os.getpid()


def test_a_process_that_kills_itself_holding_the_lock_leaves_it_free(db_path: Path) -> None:
    proc = spawn(
        """
        import os, signal, sys
        from persistence import DatabaseOwner
        owner = DatabaseOwner.claim(sys.argv[1])
        print("claimed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        str(db_path),
    )
    _, errors = proc.communicate(timeout=ANSWER_TIMEOUT)
    assert proc.returncode == -signal.SIGKILL, errors
    assert DatabaseOwner.claim(db_path).holds_lock


def test_a_forked_child_does_not_keep_its_parents_lock(db_path: Path) -> None:
    # The parent claims, forks a child that lives on, and dies: the lock must
    # be free although the child inherited the locked file.
    proc = spawn(
        """
        import os, signal, sys
        from persistence import DatabaseOwner
        owner = DatabaseOwner.claim(sys.argv[1])
        if os.fork() == 0:
            print("child", os.getpid(), owner.holds_lock, flush=True)
            sys.stdin.read()  # alive until the test closes stdin
            os._exit(0)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        str(db_path),
    )
    assert proc.wait(timeout=ANSWER_TIMEOUT) == -signal.SIGKILL
    try:
        assert read_line(proc.stdout).split()[::2] == ["child", "False"]
        with DatabaseOwner.claim(db_path) as mine:
            assert mine.holds_lock
    finally:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.close()  # the child reads the end of its input and exits
        assert read_line(proc.stdout) == ""  # end of file: the child is gone
        proc.stdout.close()
        proc.stderr.close()


def test_release_frees_the_lock_and_is_idempotent(db_path: Path) -> None:
    first = DatabaseOwner.claim(db_path)
    first.release()
    first.release()
    assert not first.holds_lock
    assert Path(f"{db_path}.owner").read_text() == ""  # no record of an owner that is gone
    with DatabaseOwner.claim(db_path) as second:
        assert second.holds_lock
    assert "holding nothing" in repr(second)  # the with block released it
    DatabaseOwner.claim(db_path).release()
    assert Path(f"{db_path}.owner").exists()  # never deleted (see _owner's docstring)


def test_every_sqlite_form_of_one_file_shares_one_lock(
    owner: DatabaseOwner, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(db_path.parent)
    link = tmp_path / "link.db"
    link.symlink_to(db_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for form in (
        str(db_path),
        f"sqlite:///{db_path}",
        f"sqlite:///{db_path.name}",
        db_path.name,
        f"~/{db_path.relative_to(tmp_path)}",
        link,
    ):
        with pytest.raises(
            StoreError, match=rf"in use by process {os.getpid()} .*; this process\)"
        ):
            DatabaseOwner.claim(form)


@pytest.mark.parametrize(
    "target",
    [
        ":memory:",
        "sqlite:///:memory:",
        "postgresql://someone:hunter2@127.0.0.1:1/nowhere",
        "postgres://127.0.0.1:1/nowhere",
    ],
)
def test_memory_and_postgresql_claims_hold_nothing(target: str) -> None:
    # Not even a connection: the PostgreSQL URLs above lead nowhere.
    first, second = DatabaseOwner.claim(target), DatabaseOwner.claim(target)
    for claimed in (first, second):
        assert not claimed.holds_lock
        assert claimed.lock_path is None
        assert "hunter2" not in claimed.location
        assert "hunter2" not in repr(claimed)
        claimed.release()


def test_a_missing_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "jobs.db"
    with DatabaseOwner.claim(target) as claimed:
        assert claimed.holds_lock
    assert Path(f"{target}.owner").is_file()


def test_a_lock_file_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(StoreError) as caught:
        DatabaseOwner.claim(blocker / "jobs.db")
    assert f"cannot claim job store {str(blocker / 'jobs.db')!r}" in str(caught.value)


@pytest.mark.parametrize(
    ("location", "match"),
    [
        ("mysql://user@host/db", "unsupported scheme"),
        ("sqlite://x.db", "three slashes"),
        ("", "empty"),
    ],
)
def test_locations_open_database_refuses_are_refused(location: str, match: str) -> None:
    with pytest.raises(StoreError, match=match):
        DatabaseOwner.claim(location)


def test_an_unreadable_owner_record_still_refuses_the_claim(
    other_owner: subprocess.Popen[str], db_path: Path
) -> None:
    Path(f"{db_path}.owner").write_text("not json")  # edited by hand while held
    with pytest.raises(StoreError, match="in use by another process"):
        DatabaseOwner.claim(db_path)


def test_readers_open_a_claimed_store_without_the_lock(
    other_owner: subprocess.Popen[str], db_path: Path
) -> None:
    with JobStore(db_path) as store:
        store.save(make_job("read-me"))
        assert store.get("read-me") == make_job("read-me")


@needs_postgres
@pytest.mark.postgres
def test_a_postgresql_claim_connects_to_nothing() -> None:
    with DatabaseOwner.claim(POSTGRES_URL) as claimed:
        assert not claimed.holds_lock
        assert claimed.location.startswith("postgresql://")
