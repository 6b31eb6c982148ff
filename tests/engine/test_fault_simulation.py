"""A deterministic fault simulation of the whole engine (issue 9).

A hypothesis ``RuleBasedStateMachine`` drives the REAL engine: real actors, a
real SQLite file in a temporary directory (its store wrapped in a
``FaultyStore``), the ``MockProvider`` with two slots and 2 s steps, its remote
side in a SQLite file beside the jobs, and a ``FakeClock`` that only the test
moves. Nothing sleeps on wall time: the test waits on the engine's own replies
(``health()`` round trips through the supervisor's and the provider's
mailboxes) and on futures, always with a timeout.

The rules: create one job or several at once (a magnet or a link, sometimes
the source of a job that exists already); cancel, retry (a FAILED or CANCELLED
job) or sync a job; move the clock a few seconds in small steps; crash a job
actor, the provider actor or the supervisor (the root restarts it); fail the
next store read or write on the supervisor's thread; queue provider faults (a
429 with a Retry-After, a transient error, a fatal one, a crash inside a call,
a remote failure, a slot refusal), let another client of the account take a
slot; stop the engine and start a new one on the same database, with the same
mock or with a new mock on the same state file.

A call may fail with an ``EngineError`` that says why (``StoreError``,
``InvalidTransition``, ``JobNotFound``, ``EngineNotRunning``, ``WaitTimeout``,
a ``ProviderError`` for a sync): that is an answer. Anything else (a bare
``EngineError`` saying the engine failed to handle a message, ``pykka.Timeout``,
``queue.Full``, a ``KeyError``...) fails the run, and so does a call that does
not return within its timeout. A call that waits on clock time (a write
retried a fake second later, a bucket paused by a Retry-After) gets the clock
nudged while it waits, a bounded number of times.

After every step (``@invariant``):

- the engine runs and its supervisor is ``running`` or ``restarting``
  (``max_restarts`` is generous, so the root never gives up);
- every stored history is a legal path (``history_problems``), and each job's
  row agrees with its last step;
- no job has two live job actors;
- nothing was logged that only a bug logs (``supervisor_message_failed``,
  ``reply_answered_twice``, ``unexpected_message``, ...).

At the end (``teardown``): faults stop, the clock runs (1 s at a time, at most
600 fake seconds) until every job has ended and the remote side is settled,
then ``remote_problems`` must find nothing: every job terminal; every live
remote item is the item of a COMPLETED job (nothing left by CANCELLED or FAILED
jobs, no item that no job knows); COMPLETED jobs keep their items; a shared
item is known to all its jobs; and no source was submitted more often than the
attempts of the jobs that have it (an attempt submits at most once, since a
lookup comes before any second try, and a retry is a new attempt).

Bounded for CI: 25 examples of 40 steps, derandomized (about 10-20 s here). A longer run::

    DEBRID_SIM_EXAMPLES=200 DEBRID_SIM_STEPS=60 .venv/bin/python -m pytest \\
        tests/engine/test_fault_simulation.py

(``DEBRID_SIM_SEED=<int>`` runs another fixed sequence instead of the
derandomized one.) Every failure found here stays as a plain regression test in
``test_fault_simulation_regressions.py``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pykka
import pytest
from engine_helpers import history_problems, live_job_actors, magnet, remote_problems
from hypothesis import HealthCheck, note, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import engine._engine as engine_module
from engine import (
    Engine,
    EngineConfig,
    EngineError,
    JobStatus,
    UnknownProvider,
    ValidationError,
)
from engine.testing import inject_job_crash, inject_provider_crash, inject_supervisor_crash
from persistence import JobStore
from providers import (
    FakeClock,
    Job,
    MockProvider,
    ProviderError,
    ProviderRegistry,
    RetryPolicy,
    parse_start_job_payload,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from faulty_store import FaultyStore

EXAMPLES = int(os.environ.get("DEBRID_SIM_EXAMPLES", "25"))
STEPS = int(os.environ.get("DEBRID_SIM_STEPS", "40"))
SEED = os.environ.get("DEBRID_SIM_SEED")

#: Real seconds any engine call may take (its own timeout), and the slack on top.
CALL_TIMEOUT = 10.0
GRACE = 5.0
#: While a call waits, the clock moves this much every ``NUDGE_EVERY`` real seconds,
#: at most ``MAX_NUDGES`` times per call.
NUDGE, NUDGE_EVERY, MAX_NUDGES = 0.5, 0.05, 20
#: Fake seconds per clock step when time passes.
TICK = 0.25
#: The final drive: at most this many fake seconds, one at a time; once settled,
#: this many more to let late cleanups (retried with backoff) show.
FINAL_SECONDS, AFTER_SETTLED = 600, 60
#: Another client of the same account: its items are not the engine's.
FOREIGN = "https://other-client.invalid/"
#: Injected faults on these calls, in all: a cleanup tries a delete (or a lookup)
#: 5 times and then gives up by design, so fewer than 5 faults can never exhaust it.
CLEANUP_OPS, CLEANUP_FAULTS = frozenset({"cancel", "find_existing"}), 4

RETRY = RetryPolicy(max_retries=8, initial_delay=0.1, max_delay=0.5, max_retry_after=10.0)

#: Log events that only a bug writes.
FORBIDDEN_EVENTS = frozenset(
    {
        "supervisor_message_failed",
        "reply_answered_twice",
        "unexpected_message",
        "job_change_unstorable",
        "engine_gave_up",
        "supervisor_restart_failed",
        "child_still_running",
        "supervisor_stop_timed_out",
        "actor_stop_timed_out",
    }
)
#: Answers a call may legitimately get (everything else under EngineError is a bug).
BUG_ERRORS = (ValidationError, UnknownProvider)

OPS = ("start_job", "get_status", "list_statuses", "find_existing", "cancel", "get_file_links")


class _Recorder(logging.Handler):
    """Keeps the last lines the engine logged and counts every event."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=300)
        self.events: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "debrid_event", None) or record.getMessage().split(" ", 1)[0]
        self.events[event] += 1
        self.lines.append(f"{record.threadName} {record.name} {record.getMessage()}")


class FaultSimulation(RuleBasedStateMachine):
    """The engine under every fault at once (see the module docstring)."""

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="sim-", dir=base))
        self.clock = FakeClock()
        self.stores: list[FaultyStore] = []
        self.patch = pytest.MonkeyPatch()
        self.patch.setattr(engine_module, "JobStore", self._open_store)
        self.recorder = _Recorder()
        self.logger = logging.getLogger("debrid")
        self.old_level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.recorder)
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sim-call")
        self.job_ids: list[str] = []
        self.sources = 0
        self.foreign = 0
        self.cleanup_faults = 0
        self.answers: collections.Counter[str] = collections.Counter()
        #: Jobs seen with two live actors by the event watcher (between the checks).
        self.doubled: dict[str, int] = {}
        self.mock = self._new_mock()
        self.engine = self._start_engine()

    # -- the engine under test ---------------------------------------------------------
    def _open_store(self, target: Any, **options: Any) -> FaultyStore:
        store = FaultyStore(JobStore(target, **options))
        store.only_thread = "SupervisorActor"
        self.stores.append(store)
        return store

    @property
    def store(self) -> FaultyStore:
        """The store of the engine running now."""
        return self.stores[-1]

    def _new_mock(self) -> MockProvider:
        # A new mock on the same file knows every item the old one made.
        return MockProvider(
            2.0,
            max_active=2,
            requests_per_second=20.0,
            burst=10,
            state_file=self.dir / "mock.sqlite3",
        )

    def _start_engine(self) -> Engine:
        registry = ProviderRegistry()
        registry.register_provider("mock", self.mock)
        config = EngineConfig(
            database=self.dir / "jobs.db",
            providers={"mock": {"poll_interval": 1.0}},
            registry=registry,
            clock=self.clock,
            retry=RETRY,
            stall_timeouts={},
            max_restarts=1000,
            restart_window=30.0,
            slot_retry_delay=3.0,
            links_retry_interval=1.0,
            seed=9,
        )
        engine = Engine(config).start()
        engine.subscribe(self._watch)
        return engine

    def _watch(self, _event: Any) -> None:
        """On every committed change: does some job have two live actors right now?"""
        for job_id, count in live_job_actors().items():
            if count > 1:
                self.doubled[job_id] = max(count, self.doubled.get(job_id, 0))

    # -- calling it --------------------------------------------------------------------
    def _call(self, what: str, fn: Any) -> Any:
        """``fn()`` on a worker thread; an EngineError that says why is an answer (None).

        The clock is nudged while the call waits, since an answer may wait on
        clock time (a write retried a fake second later, a paused bucket).
        """
        future = self.pool.submit(fn)
        started = time.monotonic()
        nudges = 0
        while True:
            done, _ = concurrent.futures.wait([future], timeout=NUDGE_EVERY)
            if done:
                break
            if time.monotonic() - started > CALL_TIMEOUT + GRACE:
                raise AssertionError(
                    f"{what} did not return within {CALL_TIMEOUT}s\n{self._tail()}"
                )
            if nudges < MAX_NUDGES:
                nudges += 1
                self.clock.advance(NUDGE)
        try:
            result = future.result()
        except EngineError as error:
            if type(error) is EngineError or isinstance(error, BUG_ERRORS):
                raise AssertionError(f"{what}: {type(error).__name__}: {error}") from error
            self.answers[type(error).__name__] += 1
            note(f"{what} -> {type(error).__name__}: {error}")
            return None
        note(f"{what} -> ok")
        return result

    def _settle(self) -> None:
        """One round trip through the supervisor's and the provider's mailboxes."""
        self.engine.health(timeout=CALL_TIMEOUT)

    def _jobs(self) -> list[Job]:
        """Every job, in the order the test learnt of it (read on the test's thread)."""
        found = {job.id: job for job in self.store.list(limit=None)}
        fresh = sorted(
            (j for j in found.values() if j.id not in self.job_ids),
            key=lambda j: (j.created_at, j.payload.source_key),
        )
        self.job_ids.extend(j.id for j in fresh)  # created by a call that did not answer
        return [found[job_id] for job_id in self.job_ids if job_id in found]

    def _pick(self, index: int, *, where: Any = None) -> Job | None:
        jobs = [j for j in self._jobs() if where is None or where(j)]
        return jobs[index % len(jobs)] if jobs else None

    def _payload(self, kind: str, copy: int | None, extra: list[Any]) -> Any:
        known = [j.payload for j in self._jobs()] + extra
        if copy is not None and known:
            source = known[copy % len(known)]
            return {"magnet": source.magnet} if source.magnet else {"url": source.url}
        self.sources += 1
        if kind == "magnet":
            return magnet(self.sources)
        return {"url": f"https://example.com/file{self.sources}.zip"}

    def _tail(self) -> str:
        return "last log lines:\n" + "\n".join(self.recorder.lines)

    # -- rules: jobs ---------------------------------------------------------------
    @rule(kind=st.sampled_from(["magnet", "url"]), copy=st.none() | st.integers(0, 99))
    def create_job(self, kind: str, copy: int | None) -> None:
        payload = self._payload(kind, copy, [])
        job = self._call(f"create_job({payload})", lambda: self.engine.create_job("mock", payload))
        if job is not None:
            self.job_ids.append(job.id)

    @rule(
        specs=st.lists(
            st.tuples(st.sampled_from(["magnet", "url"]), st.none() | st.integers(0, 99)),
            min_size=2,
            max_size=4,
        )
    )
    def create_jobs(self, specs: list[tuple[str, int | None]]) -> None:
        payloads: list[Any] = []
        for kind, copy in specs:
            parsed = [parse_start_job_payload(p) for p in payloads]
            payloads.append(self._payload(kind, copy, parsed))
        jobs = self._call(
            f"create_jobs({len(payloads)})", lambda: self.engine.create_jobs("mock", payloads)
        )
        if jobs is not None:
            self.job_ids.extend(j.id for j in jobs)

    @precondition(lambda self: self.job_ids)
    @rule(index=st.integers(0, 99))
    def cancel_job(self, index: int) -> None:
        job = self._pick(index)
        if job is not None:
            self._call(f"cancel_job({job.id[:8]})", lambda: self.engine.cancel_job(job.id))

    @precondition(lambda self: self.job_ids)
    @rule(index=st.integers(0, 99))
    def retry_job(self, index: int) -> None:
        job = self._pick(index, where=lambda j: j.status in (JobStatus.FAILED, JobStatus.CANCELLED))
        if job is not None:
            self._call(f"retry_job({job.id[:8]})", lambda: self.engine.retry_job(job.id))

    @precondition(lambda self: self.job_ids)
    @rule(index=st.integers(0, 99))
    def sync_job(self, index: int) -> None:
        job = self._pick(index)
        if job is not None:
            self._call(f"sync_job({job.id[:8]})", lambda: self.engine.sync_job_status(job.id))

    # -- rules: time -----------------------------------------------------------------
    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 4.0, 8.0]))
    def advance_time(self, seconds: float) -> None:
        for _ in range(round(seconds / TICK)):
            self.clock.advance(TICK)
            self._settle()

    # -- rules: crashes ----------------------------------------------------------------
    @precondition(lambda self: self.job_ids)
    @rule(index=st.integers(0, 99))
    def crash_job_actor(self, index: int) -> None:
        job = self._pick(index, where=lambda j: not j.terminal)
        if job is not None:
            note(f"crash job {job.id[:8]}: {inject_job_crash(self.engine, job.id)}")

    @rule()
    def crash_provider_actor(self) -> None:
        note(f"crash provider: {inject_provider_crash(self.engine, 'mock')}")

    @rule()
    def crash_supervisor(self) -> None:
        note(f"crash supervisor: {inject_supervisor_crash(self.engine)}")

    # -- rules: the store ------------------------------------------------------------
    @rule(kind=st.sampled_from(["read", "write"]), count=st.integers(1, 2))
    def fail_store(self, kind: str, count: int) -> None:
        self.store.fail_next(kind, count)

    # -- rules: the provider -------------------------------------------------------------
    def _cleanup_budget(self, op: str, count: int) -> bool:
        if op not in CLEANUP_OPS:
            return True
        if self.cleanup_faults + count > CLEANUP_FAULTS:
            return False
        self.cleanup_faults += count
        return True

    @rule(op=st.sampled_from(OPS), retry_after=st.sampled_from([0.5, 2.0, 5.0]))
    def rate_limited(self, op: Any, retry_after: float) -> None:
        if self._cleanup_budget(op, 1):
            self.mock.inject("rate_limit", op=op, retry_after=retry_after)

    @rule(op=st.sampled_from(OPS), count=st.integers(1, 3))
    def transient_fault(self, op: Any, count: int) -> None:
        if self._cleanup_budget(op, count):
            self.mock.inject("transient", op=op, count=count)

    # Not on cancel or find_existing: a cleanup gives up on a fatal error by design.
    @rule(op=st.sampled_from(["start_job", "get_status", "list_statuses", "get_file_links"]))
    def fatal_fault(self, op: Any) -> None:
        self.mock.inject("fatal", op=op, code="MOCK_FATAL")

    @rule(op=st.sampled_from(OPS))
    def crash_in_provider_call(self, op: Any) -> None:
        if self._cleanup_budget(op, 1):
            self.mock.inject("crash", op=op)

    @rule(at=st.sampled_from([JobStatus.RESOLVING, JobStatus.DOWNLOADING, JobStatus.COMPLETED]))
    def remote_failure(self, at: JobStatus) -> None:
        self.mock.inject("remote_fail", op="start_job", at=at, code="MOCK_DEAD")

    @rule()
    def slot_refusal(self) -> None:
        self.mock.inject("transient", op="start_job", code="ACTIVE_LIMIT")

    @rule()
    def other_client_takes_a_slot(self) -> None:
        self.foreign += 1
        payload = parse_start_job_payload({"url": f"{FOREIGN}{self.foreign}.zip"})
        try:
            self.mock.start_job(payload)
        except ProviderError as error:
            note(f"other client refused: {error.code}")
        except RuntimeError as error:  # it met a crash queued for the engine
            note(f"other client: {error}")

    # -- rules: restarts -----------------------------------------------------------
    @rule(new_mock=st.booleans())
    def restart_engine(self, new_mock: bool) -> None:
        self.engine.stop(timeout=CALL_TIMEOUT)
        left = pykka.ActorRegistry.get_all()
        assert not left, f"actors left after stop: {left}\n{self._tail()}"
        if new_mock:
            self.mock = self._new_mock()
        self.engine = self._start_engine()

    # -- invariants ------------------------------------------------------------------
    @invariant()
    def engine_is_alive(self) -> None:
        assert self.engine.running, self.engine.health().failure
        health = self.engine.health(timeout=CALL_TIMEOUT)
        assert health.supervisor in ("running", "restarting"), health

    @invariant()
    def histories_are_legal(self) -> None:
        for job in self._jobs():
            problems = history_problems(self.store, job.id)
            steps = self.store.transitions(job.id)
            again = self.store.get(job.id)
            if again == job and steps:  # nothing written in between: row and history agree
                last = steps[-1]
                if (last.to_status, last.attempt) != (job.status, job.attempt):
                    problems.append(
                        f"job {job.id} is {job.status.value}/attempt {job.attempt} but its "
                        f"last step is {last.to_status.value}/attempt {last.attempt}"
                    )
            assert not problems, "\n".join(problems)

    @invariant()
    def one_actor_per_job(self) -> None:
        doubled = {job_id: n for job_id, n in live_job_actors().items() if n > 1}
        doubled.update(self.doubled)
        assert not doubled, f"jobs with two live actors: {doubled}\n{self._tail()}"

    @invariant()
    def nothing_only_a_bug_logs(self) -> None:
        bad = {e: n for e, n in self.recorder.events.items() if e in FORBIDDEN_EVENTS}
        assert not bad, f"logged {bad}\n{self._tail()}"

    # -- the end -----------------------------------------------------------------------
    def teardown(self) -> None:
        # Called from hypothesis's ``finally``: a step that failed is still propagating,
        # and then only the clean-up runs, so the first failure is the one reported.
        failing = sys.exc_info()[0] is not None
        try:
            if not failing:
                self._finish()
        finally:
            self.engine.stop(timeout=CALL_TIMEOUT)
            self.pool.shutdown(wait=True)
            self.patch.undo()
            self.logger.removeHandler(self.recorder)
            self.logger.setLevel(self.old_level)
            shutil.rmtree(self.dir, ignore_errors=True)
        left = pykka.ActorRegistry.get_all()
        if left:  # never into the next example
            pykka.ActorRegistry.stop_all(block=True, timeout=10)
            if not failing:
                raise AssertionError(f"actors left after the final stop: {left}")

    def _finish(self) -> None:
        """Stop the faults, run the clock until everything ended, check the remote side."""
        self.store.clear()
        self.mock.clear_faults()
        problems = self._drive(FINAL_SECONDS)
        if not problems:
            self._drive(AFTER_SETTLED, stop_when_settled=False)
            problems = self._problems()
        assert not problems, (
            "after the faults stopped:\n"
            + "\n".join(problems)
            + f"\nanswers: {self.answers}\n"
            + self._tail()
        )
        self.engine_is_alive()

    def _drive(self, seconds: int, *, stop_when_settled: bool = True) -> list[str]:
        problems = self._problems()
        for _ in range(seconds):
            if stop_when_settled and not problems:
                break
            self.clock.advance(1.0)
            self._settle()
            self._settle()
            problems = self._problems()
        return problems

    def _problems(self) -> list[str]:
        health = self.engine.health(timeout=CALL_TIMEOUT)
        problems = []
        if health.pending_writes:
            problems.append(f"{health.pending_writes} changes not written")
        problems += remote_problems(
            self._jobs(), self.mock.remote_items(), self.mock.submissions(), foreign=FOREIGN
        )
        return problems


SIMULATION = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)


@pytest.mark.slow
def test_the_engine_survives_every_fault_at_once(tmp_path: Path) -> None:
    def machine() -> FaultSimulation:
        return FaultSimulation(tmp_path)

    if SEED is not None:
        machine = seed(int(SEED))(machine)
    # Any factory of machines will do (hypothesis documents it); its stub says a class.
    run_state_machine_as_test(machine, settings=SIMULATION)  # type: ignore[arg-type]
