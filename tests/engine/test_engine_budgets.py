"""Rate-limit budgets through the whole engine: TorBox's creation bucket against its fake.

Everything runs at the service's real limits: the provider's own ``RATE_LIMITS``
(general 4.5/s, burst 20; creation 50/3600 per s, burst 8, so a creation token
every 72 s once the burst is spent) and the fake's own 429 enforcement, over
real sockets, on a FakeClock that only the test moves.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs
import pytest

from engine import Engine, EngineConfig, Job, JobEvent, JobStatus
from engine.testing import FakeRequest, FakeResponse, advance_until
from engine.testing.torbox import FakeTorBox
from providers import FakeClock, RetryPolicy
from providers.torbox import RATE_LIMITS

POLL_INTERVAL = 5.0
BURST = RATE_LIMITS["create"].burst
#: Seconds between two creation tokens once the burst is spent (72 s).
TOKEN_GAP = 1 / RATE_LIMITS["create"].rate
#: Fake seconds a request may arrive after its due time: the clock moves on while the
#: scheduler, the actors and the sockets do their part in real time. Measured with the
#: SettlingDriver below: at most 0.4 s, idle or with both cores busy elsewhere (2-2.6 s
#: with a plain ClockDriver under load). Half an interval: a poll this late is not on
#: time, and a creation this late did not go out when its token came.
LATENESS = 2.5
#: Float residue in a comparison of times on the FakeClock.
EPSILON = 1e-6
#: Fake seconds per step of a normal item (metaDL 1 step, downloading 2): done in 36 s,
#: so a poll or more every 5 s while it runs, and long before the next token (72 s).
STEP_SECONDS = 12.0

_BTIH = re.compile(r"btih:([0-9a-fA-F]{40})")


def info_hash(i: int) -> str:
    return f"{i + 0xB0D6E7000:040x}"


def magnet(i: int) -> dict[str, Any]:
    return {"magnet": f"magnet:?xt=urn:btih:{info_hash(i)}&dn=budget{i}"}


@attrs.frozen
class Seen:
    """One request the fake answered: when (fake time), where, with what answer."""

    at: float
    route: str
    status: int | None  # None: a fault (none are injected here)
    query: dict[str, list[str]]
    info_hash: str | None  # createtorrent: the magnet's hash


class RecordingTorBox(FakeTorBox):
    """The TorBox fake with a log of every request, timed on its (fake) clock at arrival."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[Seen] = []
        self._seen_lock = threading.Lock()

    def dispatch(self, request: FakeRequest) -> tuple[FakeResponse | None, Any]:
        at = self.clock.monotonic()
        response, fault = super().dispatch(request)
        found = None
        if request.route == "createtorrent":
            match = _BTIH.search(" ".join(request.form().get("magnet", [])))
            found = match.group(1).lower() if match else None
        status = response.status if response is not None else None
        with self._seen_lock:
            self.seen.append(Seen(at, request.route, status, request.query, found))
        return response, fault

    def log(self, route: str) -> list[Seen]:
        """Requests to ``route`` in the order they arrived."""
        with self._seen_lock:
            return [seen for seen in self.seen if seen.route == route]

    def creations(self) -> list[Seen]:
        """createtorrent requests that made an item (a 200)."""
        return [seen for seen in self.log("createtorrent") if seen.status == 200]

    def polls(self) -> list[float]:
        """Times of the torrent list reads that are polls (a lookup of one item has ``id``)."""
        return [seen.at for seen in self.log("mylist") if "id" not in seen.query]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[RecordingTorBox]:
    # Pro plan (10 slots) plus 30: slots never hold a submission back here, only budgets.
    with RecordingTorBox(clock=clock, step_seconds=STEP_SECONDS, additional_slots=30) as server:
        yield server


@pytest.fixture
def engine(fake: RecordingTorBox, clock: FakeClock, tmp_path: Path) -> Iterator[Engine]:
    config = EngineConfig(
        database=tmp_path / "jobs.db",
        clock=clock,
        retry=RetryPolicy(max_retries=12, initial_delay=1.0, max_delay=60.0),
        seed=9,
        stall_timeouts={},
        providers={"torbox": {**fake.provider_options(), "poll_interval": POLL_INTERVAL}},
    )
    with Engine(config) as running:
        yield running


class SettlingDriver:
    """Advances the clock by ``step`` in a background thread, each step only after a
    round trip through the supervisor and the provider actor (``Engine.health``).

    A plain ClockDriver runs fake time on while a busy engine (a batch of transitions
    written) catches up in real time, so request times would measure the machine's
    load; here fake time cannot run far ahead of the actors that read it.
    """

    def __init__(self, clock: FakeClock, engine: Engine, *, step: float) -> None:
        self.clock = clock
        self.engine = engine
        self.step = step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="settling-driver", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.clock.advance(self.step)
            self.engine.health(timeout=5)
            self._stop.wait(0.001)

    def __enter__(self) -> SettlingDriver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def burst_sent(fake: RecordingTorBox, clock: FakeClock) -> None:
    """Wait (the clock standing still) until the creation burst has gone out."""
    advance_until(clock, lambda: len(fake.creations()) >= BURST, step=0, timeout=30)
    assert len(fake.creations()) == BURST


def waiting_note(engine: Engine, job: Job) -> dict[str, Any] | None:
    note = engine.get_job(job.id).metadata.get("waiting_for")
    return dict(note) if note is not None else None


@pytest.mark.slow  # 900 s of fake time, on a clock that waits for the engine
def test_twenty_magnets_keep_polls_on_time_while_creations_wait_for_tokens(
    fake: RecordingTorBox, clock: FakeClock, engine: Engine
) -> None:
    attached_at: dict[str, float] = {}  # fake time its remote id was committed, by job
    completed_at: dict[str, float] = {}

    def on_event(event: JobEvent) -> None:
        if event.job.remote_id is not None:
            attached_at.setdefault(event.job_id, clock.monotonic())
        if event.kind == "transition" and event.status is JobStatus.COMPLETED:
            completed_at.setdefault(event.job_id, clock.monotonic())

    engine.subscribe(on_event)
    start = clock.monotonic()
    jobs = engine.create_jobs("torbox", [magnet(i) for i in range(20)])
    burst_sent(fake, clock)
    with SettlingDriver(clock, engine, step=0.2):
        done = [engine.wait(job.id, timeout=120) for job in jobs]
    assert [job.status for job in done] == [JobStatus.COMPLETED] * 20, [j.error for j in done]

    # No 429 at all, and one item per magnet.
    assert fake.counts["rate_limited"] == 0
    assert not [seen for seen in fake.seen if seen.status == 429]
    created = fake.creations()
    hashes = [seen.info_hash for seen in created]
    assert len(hashes) == 20 and sorted(hashes) == sorted(info_hash(i) for i in range(20))
    assert len(fake.log("createtorrent")) == 20
    assert set(fake.hash_counts().values()) == {1}

    # The burst goes out at once, then one creation per token: the k-th past the
    # burst no sooner than k token gaps after the start, and not much later.
    assert [seen.at for seen in created[:BURST]] == [start] * BURST
    for k, seen in enumerate(created[BURST:], start=1):
        due = start + k * TOKEN_GAP
        assert due - EPSILON <= seen.at <= due + LATENESS, (k, seen.at, due)

    # Every item of the burst is done before the first creation that had to wait.
    job_of = {info_hash(i): job.id for i, job in enumerate(jobs)}
    ninth = created[BURST].at
    for seen in created[:BURST]:
        assert completed_at[job_of[seen.info_hash]] < ninth

    # Polls keep their interval all along: for every item, from its job learning its
    # remote id to its completion, a poll every POLL_INTERVAL (never sooner, never a
    # missed one) although submissions wait for the creation budget the whole time.
    polls = fake.polls()
    assert all(b - a >= POLL_INTERVAL - EPSILON for a, b in pairwise(polls))
    for seen in created:
        job_id = job_of[seen.info_hash]
        begin, end = attached_at[job_id], completed_at[job_id]
        during = [begin, *(p for p in polls if begin < p <= end)]
        assert len(during) >= 3, (seen.at, end, during)
        gaps = [b - a for a, b in pairwise(during)]
        assert max(gaps) <= POLL_INTERVAL + LATENESS, (seen.info_hash, during)


def test_a_job_waiting_for_the_creation_budget_says_so_until_it_is_created(
    fake: RecordingTorBox, clock: FakeClock, engine: Engine
) -> None:
    jobs = engine.create_jobs("torbox", [magnet(i) for i in range(BURST + 2)])
    burst_sent(fake, clock)
    ninth, tenth = jobs[BURST:]
    advance_until(
        clock,
        lambda: waiting_note(engine, ninth) is not None and waiting_note(engine, tenth) is not None,
        step=0,
    )
    now_ms = clock.time_ms()
    notes = [waiting_note(engine, ninth), waiting_note(engine, tenth)]
    for place, note in enumerate(notes, start=1):
        assert note is not None
        assert note["budget"] == "create" and note["op"] == "submit"
        assert note["until_ms"] > now_ms
        # The first token after the burst comes 72 s on, the next 72 s later.
        assert note["until_ms"] == pytest.approx(now_ms + place * TOKEN_GAP * 1000, abs=1000)
    assert [engine.get_job(j.id).remote_id for j in (ninth, tenth)] == [None, None]

    advance_until(clock, lambda: engine.get_job(ninth.id).remote_id is not None, step=0.5)
    assert waiting_note(engine, ninth) is None
    assert waiting_note(engine, tenth) is not None  # its token is still to come
    advance_until(clock, lambda: engine.get_job(tenth.id).remote_id is not None, step=0.5)
    assert waiting_note(engine, tenth) is None


def test_cancelling_a_job_waiting_for_the_budget_answers_at_once_and_creates_nothing(
    fake: RecordingTorBox, clock: FakeClock, engine: Engine
) -> None:
    start = clock.monotonic()
    jobs = engine.create_jobs("torbox", [magnet(i) for i in range(BURST + 2)])
    burst_sent(fake, clock)
    ninth, tenth = jobs[BURST:]
    advance_until(clock, lambda: waiting_note(engine, ninth) is not None, step=0)

    # The one assertion on real time in this file: the issue asks that a cancel of a
    # job waiting for a budget answer within a second, whatever the budget's wait
    # (here 72 s of a clock that does not move while we measure). A bound this loose
    # against a round trip of a few milliseconds does not flake on a loaded machine.
    began = time.monotonic()
    cancelled = engine.cancel_job(ninth.id, timeout=5)
    elapsed = time.monotonic() - began
    assert elapsed < 1.0, elapsed
    assert cancelled.status is JobStatus.CANCELLED
    assert "waiting_for" not in cancelled.metadata

    # Well past both tokens: the tenth takes the first one, the ninth is never created.
    with SettlingDriver(clock, engine, step=0.5):
        assert engine.wait(tenth.id, timeout=60).status is JobStatus.COMPLETED
    advance_until(clock, lambda: clock.monotonic() >= start + 5 * TOKEN_GAP, step=1.0)
    hashes = [seen.info_hash for seen in fake.log("createtorrent")]
    assert info_hash(BURST) not in hashes
    assert sorted(hashes) == sorted(info_hash(i) for i in [*range(BURST), BURST + 1])
    tenth_created = fake.creations()[BURST].at
    assert start + TOKEN_GAP - EPSILON <= tenth_created <= start + TOKEN_GAP + LATENESS
    assert engine.get_job(ninth.id).status is JobStatus.CANCELLED
    assert fake.counts["rate_limited"] == 0


def test_test_connection_answers_while_ten_submissions_wait_for_the_budget(
    fake: RecordingTorBox, clock: FakeClock, engine: Engine
) -> None:
    jobs = engine.create_jobs("torbox", [magnet(i) for i in range(BURST + 10)])
    burst_sent(fake, clock)
    waiting = jobs[BURST:]
    advance_until(
        clock, lambda: all(waiting_note(engine, job) is not None for job in waiting), step=0
    )
    before = clock.monotonic()

    # The clock stands still: an answer that needed a creation token would never come.
    result = engine.test_connection("torbox", timeout=5)
    assert result.ok, result.message
    assert clock.monotonic() == before
    assert len(fake.log("user_me")) >= 2  # the plan read before the first creation, and this
    assert len(fake.log("createtorrent")) == BURST
    assert all(waiting_note(engine, job) is not None for job in waiting)


def test_a_slot_refusal_holds_back_submissions_only_while_polls_and_cancels_go_on(
    fake: RecordingTorBox, clock: FakeClock, engine: Engine
) -> None:
    """TorBox's ACTIVE_LIMIT carries a 120 s hint. It paused every bucket of the
    provider, so no poll, link or cancel reached the service for two minutes; now
    it holds back submissions only (the supervisor's line), and the rest go on."""
    fake.settings.active_limit, fake.settings.additional_slots = 2, 0
    running = engine.create_jobs("torbox", [magnet(100), magnet(101)])
    advance_until(clock, lambda: len(fake.creations()) == 2, step=0, timeout=30)
    refused = engine.create_job("torbox", magnet(102))
    advance_until(
        clock,
        lambda: any(seen.status == 400 for seen in fake.log("createtorrent")),
        step=0,
        timeout=30,
    )
    refused_at = clock.monotonic()
    with SettlingDriver(clock, engine, step=0.2):
        advance_until(clock, lambda: clock.monotonic() >= refused_at + 20, step=0, timeout=60)
        engine.cancel_job(running[1].id, timeout=10)
        cancel_asked = clock.monotonic()
        advance_until(clock, lambda: bool(fake.log("controltorrent")), step=0, timeout=60)
        done = engine.wait(running[0].id, timeout=120)
        last = engine.wait(refused.id, timeout=120)
    assert done.status is JobStatus.COMPLETED
    assert last.status is JobStatus.COMPLETED  # submitted again once a slot was free
    # The delete went out at once, not after the refusal's 120 s.
    assert fake.log("controltorrent")[0].at <= cancel_asked + LATENESS
    # Polls kept their interval from the refusal to the first job's end.
    polls = [at for at in fake.polls() if refused_at <= at <= clock.monotonic()]
    window = [refused_at, *polls]
    first_done = max(at for at in polls if at <= refused_at + 3 * STEP_SECONDS + LATENESS)
    gaps = [b - a for a, b in pairwise(at for at in window if at <= first_done)]
    assert gaps and max(gaps) <= POLL_INTERVAL + LATENESS, window
