"""Shared bits of the engine tests (importable, unlike conftest)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import engine._engine as engine_module
from engine import Engine, EngineConfig, Job, JobStatus
from engine.testing import ClockDriver, advance_until
from persistence import JobStore
from providers import FakeClock, ProviderRegistry, RetryPolicy

MakeEngine = Callable[..., Engine]


def magnet(i: int) -> dict[str, str]:
    """A valid magnet payload, unique per ``i``."""
    return {"magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}"}


def crash_after_submit(base: type[Any], times: int) -> type[Any]:
    """A subclass of provider ``base`` whose first ``times`` submissions crash right
    after the remote job was made, before the engine hears of it (``.crashes`` counts)."""

    class CrashAfterSubmit(base):  # type: ignore[misc, valid-type]
        crashes = 0

        def start_job(self, payload: Any) -> Any:
            response = super().start_job(payload)
            if CrashAfterSubmit.crashes < times:
                CrashAfterSubmit.crashes += 1
                raise RuntimeError("crash between the submission and its answer")
            return response

    return CrashAfterSubmit


def stored_bytes(directory: Path) -> bytes:
    """Everything the SQLite store wrote under ``directory`` (database, WAL, shared memory)."""
    return b"".join(path.read_bytes() for path in directory.glob("jobs.db*"))


def restart_in_phase(
    new_engine: Callable[[], Engine],
    provider: str,
    payloads: list[dict[str, Any]],
    *,
    phase: JobStatus,
    clock: FakeClock,
    remote_made: Callable[[], bool],
    step: float,
) -> list[Job]:
    """Stop a first engine once its first job reaches ``phase`` (QUEUED: once the
    first remote item exists), then finish every job with a second engine on the
    same database (``new_engine`` makes each); returns the jobs as they ended."""
    first = new_engine().start()
    try:
        jobs = first.create_jobs(provider, payloads)
        if phase is JobStatus.QUEUED:
            advance_until(clock, remote_made, step=0.2)
        else:
            with ClockDriver(clock, step=0.5):
                first.wait(jobs[0].id, timeout=60, statuses=[phase])
    finally:
        first.stop()
    with new_engine() as second, ClockDriver(clock, step=step):
        return [second.wait(j.id, timeout=120) for j in jobs]


def finish_with_crashing_submissions(
    provider_class: type[Any],
    provider: str,
    options: dict[str, Any],
    payloads: list[dict[str, Any]],
    *,
    clock: FakeClock,
    database: Path,
    retry: RetryPolicy,
    step: float,
) -> tuple[type[Any], list[Job]]:
    """Run ``payloads`` to their end on a provider whose first two submissions crash
    after the remote item was made (``crash_after_submit``); returns that provider
    class (``.crashes``) and the jobs as they ended."""
    registry = ProviderRegistry()
    crashing = crash_after_submit(provider_class, times=2)
    registry.register_provider(provider, crashing)
    config = EngineConfig(
        database=database,
        clock=clock,
        registry=registry,
        retry=retry,
        providers={provider: {**options, "poll_interval": 5.0}},
    )
    with Engine(config) as engine:
        jobs = engine.create_jobs(provider, payloads)
        with ClockDriver(clock, step=step):
            return crashing, [engine.wait(j.id, timeout=120) for j in jobs]


# -- checks shared by the fault simulation and its regression tests -------------------


def history_problems(store: Any, job_id: str) -> list[str]:
    """What is wrong with ``job_id``'s stored history (empty: it is a legal path).

    Each step starts where the one before ended; an attempt starts at QUEUED,
    from nothing (attempt 1) or from FAILED/CANCELLED (a retry, attempt + 1);
    every other step is in ``TRANSITIONS`` and keeps the attempt.
    """
    from providers._status import TRANSITIONS  # noqa: PLC0415

    problems: list[str] = []
    previous: JobStatus | None = None
    attempt = 0
    for index, step in enumerate(store.transitions(job_id)):
        where = f"job {job_id} step {index} ({step.from_status} -> {step.to_status})"
        if step.from_status != previous:
            problems.append(f"{where}: starts from {step.from_status}, not from {previous}")
        if previous is None or previous in (JobStatus.FAILED, JobStatus.CANCELLED):
            if step.to_status is not JobStatus.QUEUED:
                problems.append(f"{where}: an attempt must start at QUEUED")
            if step.attempt != attempt + 1:
                problems.append(f"{where}: attempt {step.attempt}, expected {attempt + 1}")
            attempt = step.attempt
        elif step.to_status not in TRANSITIONS[previous]:
            problems.append(f"{where}: not an allowed move")
        elif step.attempt != attempt:
            problems.append(f"{where}: attempt {step.attempt} within attempt {attempt}")
        previous = step.to_status
    return problems


def live_job_actors() -> dict[str, int]:
    """Job id -> how many job actors are registered (alive) for it.

    A finished actor (``done``) counts until it has stopped: a successor started
    while it is still registered is a second actor all the same.
    """
    import pykka  # noqa: PLC0415

    from actors import JobActor  # noqa: PLC0415

    counts: dict[str, int] = {}
    for ref in pykka.ActorRegistry.get_by_class(JobActor):
        actor = ref._actor_weakref()
        if actor is None:
            continue
        counts[actor.job.id] = counts.get(actor.job.id, 0) + 1
    return counts


def remote_problems(
    jobs: list[Job], items: list[Any], submissions: dict[str, int], *, foreign: str = ""
) -> list[str]:
    """What is wrong with the mock's remote side once every job has ended.

    ``items`` is ``MockProvider.remote_items()``, ``submissions`` its
    ``submissions()``; items whose key starts with ``foreign`` (another client of
    the account) are nobody's business here. The rules:

    - every job is terminal;
    - every live (not cancelled) item is the remote item of a COMPLETED job: none
      is left over by a CANCELLED or FAILED job, none belongs to no job;
    - every COMPLETED job's item is still there (its files stay);
    - an item shared by jobs is known to each of them (``remote_id``), and they
      have its source;
    - a source is submitted at most once per attempt of the jobs that have it:
      an attempt submits at most once (a lookup comes before every second try),
      and a retry is a new attempt, so ``submissions[key] <= sum(job.attempt)``.
    """
    problems = [f"job {j.id} still {j.status.value}" for j in jobs if not j.terminal]
    by_key: dict[str, list[Job]] = {}
    for job in jobs:
        by_key.setdefault(job.payload.source_key, []).append(job)
    items_by_id = {item.id: item for item in items}
    completed_by_remote: dict[str, list[Job]] = {}
    for job in jobs:
        if job.status is JobStatus.COMPLETED and job.remote_id is not None:
            completed_by_remote.setdefault(job.remote_id, []).append(job)

    def describe(key: str) -> str:
        return ", ".join(
            f"{j.id[:8]}:{j.status.value}/attempt {j.attempt}/remote {j.remote_id}"
            for j in by_key.get(key, [])
        )

    for item in items:
        if foreign and item.key.startswith(foreign):
            continue
        if not item.cancelled and item.id not in completed_by_remote:
            holders = [j for j in jobs if j.remote_id == item.id]
            what = (
                f"the remote item of {', '.join(f'{j.id[:8]} ({j.status.value})' for j in holders)}"
                if holders
                else "known to no job"
            )
            problems.append(
                f"live remote item {item.id} (key {item.key}) is {what}; "
                f"jobs with its source: {describe(item.key)}"
            )
    for remote_id, owners in completed_by_remote.items():
        found = items_by_id.get(remote_id)
        if found is None or found.cancelled:
            state = "gone" if found is None else "cancelled"
            problems.append(
                f"remote item {remote_id} of COMPLETED job(s) "
                f"{', '.join(j.id[:8] for j in owners)} is {state}"
            )
        elif any(j.payload.source_key != found.key for j in owners):
            problems.append(f"remote item {remote_id} is shared by jobs of another source")
    for job in jobs:
        if job.status is JobStatus.COMPLETED and job.remote_id is None:
            problems.append(f"COMPLETED job {job.id} has no remote id")
    for key, count in submissions.items():
        if foreign and key.startswith(foreign):
            continue
        attempts = sum(j.attempt for j in by_key.get(key, []))
        if count > attempts:
            problems.append(
                f"source {key} submitted {count} times for {attempts} attempt(s): {describe(key)}"
            )
    return problems


def wrap_stores(monkeypatch: Any, wrapper: type[Any]) -> list[Any]:
    """From now on every engine opens its store wrapped in ``wrapper``; returns them all."""
    made: list[Any] = []

    def open_store(target: Any, **options: Any) -> Any:
        made.append(wrapper(JobStore(target, **options)))
        return made[-1]

    monkeypatch.setattr(engine_module, "JobStore", open_store)
    return made


def cancel_while_its_delete_fails(
    engine: Engine, mock: Any, clock: FakeClock, payload: dict[str, Any]
) -> Job:
    """Create a job of ``payload`` on ``mock``, let it make its remote item, then cancel
    it while the item's delete fails once (a transient fault on ``cancel``): the delete
    waits for its retry, 5 fake seconds away (the clock does not move here). Returns
    the job as it was cancelled (CANCELLED, its remote id kept)."""
    job = engine.create_job("mock", payload)
    advance_until(clock, lambda: engine.get_job(job.id).remote_id is not None, step=0)
    mock.inject("transient", op="cancel")
    engine.cancel_job(job.id)
    advance_until(clock, lambda: mock.calls["cancel"] >= 1, step=0)  # failed; retried in 5 s
    cancelled = engine.get_job(job.id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.remote_id is not None
    return cancelled


def kill_when_ready(args: list[str], stderr_path: Path, *, timeout: float = 60) -> tuple[str, int]:
    """Run ``python args...`` from the checkout, SIGKILL it once it prints its first
    line (or after ``timeout``), and return that line and the exit code. A child
    that was not ready has failed: its stderr (in ``stderr_path``) says why."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    with stderr_path.open("w") as stderr:
        child = subprocess.Popen([sys.executable, *args], cwd=root, env=env,
                                 stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            assert child.stdout is not None
            line = _first_line(child.stdout, timeout)
            os.kill(child.pid, signal.SIGKILL)
            returncode = child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
            if child.stdout is not None:
                child.stdout.close()
    return line, returncode


def _first_line(stream: IO[str], timeout: float) -> str:
    """The first line ``stream`` gives within ``timeout`` seconds ('' at EOF)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return "(no line within the timeout)"
