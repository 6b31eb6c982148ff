"""Notifier: a command and webhooks when jobs complete or fail, never blocking the engine.

Every test runs a real engine (the mock provider, no steps) and a real HTTP
server on 127.0.0.1 that records the webhooks it receives.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest
from engine_helpers import MakeEngine, magnet

from engine import Job, JobEvent, JobStatus
from engine._notify import DeliveryOutcome, Notifier
from providers import MockProvider, ValidationError

WAIT = 10.0


@attrs.define
class Hook:
    """One request the server received."""

    path: str
    body: bytes
    content_type: str | None


class HookServer:
    """Records POSTs; answers each path from a script (status codes, or "hang")."""

    def __init__(self) -> None:
        self.requests: queue.Queue[Hook] = queue.Queue()
        self.scripts: dict[str, list[int | str]] = {}
        self.hanging = threading.Event()  # set when a request starts to hang
        self.release = threading.Event()  # ends every hang
        self.retry_after: dict[str, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?")[0]
                server.requests.put(Hook(path, body, self.headers.get("Content-Type")))
                script = server.scripts.get(path) or []
                answer = script.pop(0) if script else 200
                if answer == "hang":
                    server.hanging.set()
                    server.release.wait(WAIT)
                    return
                assert isinstance(answer, int)
                self.send_response(answer)
                if answer == 429 and path in server.retry_after:
                    self.send_header("Retry-After", server.retry_after[path])
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def take(self) -> Hook:
        return self.requests.get(timeout=WAIT)

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(WAIT)


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.stop()


class Recorder:
    """Collects outcomes and the waits between webhook tries (which return at once)."""

    def __init__(self) -> None:
        self.outcomes: queue.Queue[DeliveryOutcome] = queue.Queue()
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False

    def next(self) -> DeliveryOutcome:
        return self.outcomes.get(timeout=WAIT)


@pytest.fixture
def make_notifier() -> Iterator[Callable[..., tuple[Notifier, Recorder]]]:
    made: list[Notifier] = []

    def make(**options: Any) -> tuple[Notifier, Recorder]:
        recorder = Recorder()
        options.setdefault("wait", recorder.wait)
        notifier = Notifier(on_outcome=recorder.outcomes.put, **options)
        made.append(notifier)
        return notifier, recorder

    yield make
    for notifier in made:
        notifier.close(WAIT)


def as_json(job: Job) -> Any:
    return json.loads(json.dumps(job.to_dict()))


def test_completion_webhook_fires_once_with_the_job_json(
    make_engine: MakeEngine, hooks: HookServer, make_notifier: Any
) -> None:
    engine = make_engine(MockProvider(0.0))
    notifier, recorder = make_notifier(
        on_complete_webhooks=[hooks.url("/done")], on_failure_webhooks=[hooks.url("/failed")]
    )
    notifier.attach(engine)
    job = engine.create_job("mock", magnet(1))
    done = engine.wait(job.id, timeout=WAIT)
    assert done.status is JobStatus.COMPLETED
    hook = hooks.take()
    assert hook.path == "/done"
    assert hook.content_type == "application/json"
    assert json.loads(hook.body) == as_json(done)
    outcome = recorder.next()
    assert (outcome.job_id, outcome.reason, outcome.kind, outcome.ok) == (
        job.id,
        "complete",
        "webhook",
        True,
    )
    assert outcome.target == f"127.0.0.1:{hooks.httpd.server_address[1]}"
    notifier.close(WAIT)
    assert hooks.requests.empty()  # once: not for QUEUED, RESOLVING, DOWNLOADING
    assert notifier.stats().delivered == 1


def test_failure_hooks_are_configured_apart_from_completion_hooks(
    make_engine: MakeEngine, hooks: HookServer, make_notifier: Any, tmp_path: Path
) -> None:
    mock = MockProvider(0.0)
    mock.inject("fatal", op="start_job", code="INVALID_TORRENT")
    engine = make_engine(mock)
    out = tmp_path / "failed.json"
    notifier, recorder = make_notifier(
        on_complete_webhooks=[hooks.url("/done")],
        on_failure_webhooks=[hooks.url("/failed")],
        on_failure_command=[sys.executable, "-c", COPY_STDIN, str(out)],
    )
    notifier.attach(engine)
    failing = engine.create_job("mock", magnet(2))
    failed = engine.wait(failing.id, timeout=WAIT)
    assert failed.status is JobStatus.FAILED
    hook = hooks.take()
    assert hook.path == "/failed"
    body = json.loads(hook.body)
    assert body == as_json(failed)
    assert body["error"]["code"] == "INVALID_TORRENT"
    outcomes = [recorder.next(), recorder.next()]
    assert [(o.kind, o.reason, o.ok) for o in outcomes] == [
        ("command", "failure", True),
        ("webhook", "failure", True),
    ]
    assert json.loads(out.read_bytes()) == as_json(failed)

    completing = engine.create_job("mock", magnet(3))
    done = engine.wait(completing.id, timeout=WAIT)
    hook = hooks.take()
    assert (hook.path, json.loads(hook.body)["id"]) == ("/done", done.id)
    assert recorder.next().reason == "complete"


COPY_STDIN = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())"


def test_the_command_gets_the_job_json_on_stdin(
    make_engine: MakeEngine, make_notifier: Any, tmp_path: Path
) -> None:
    engine = make_engine(MockProvider(0.0))
    out = tmp_path / "job.json"
    notifier, recorder = make_notifier(
        on_complete_command=[sys.executable, "-c", COPY_STDIN, str(out)]
    )
    notifier.attach(engine)
    job = engine.create_job("mock", magnet(4))
    done = engine.wait(job.id, timeout=WAIT)
    outcome = recorder.next()
    assert (outcome.kind, outcome.ok, outcome.detail) == ("command", True, "exit 0")
    assert outcome.target == Path(sys.executable).name
    assert json.loads(out.read_bytes()) == as_json(done)


def test_a_failing_or_hanging_command_is_reported_and_killed(
    make_engine: MakeEngine, make_notifier: Any
) -> None:
    engine = make_engine(MockProvider(0.0))
    notifier, recorder = make_notifier(
        on_complete_command=[sys.executable, "-c", "import sys; sys.exit(3)"]
    )
    notifier.attach(engine)
    engine.wait(engine.create_job("mock", magnet(5)).id, timeout=WAIT)
    outcome = recorder.next()
    assert (outcome.ok, outcome.detail) == (False, "exit 3")

    hanging, recorder = make_notifier(
        on_complete_command=[sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5
    )
    hanging.attach(engine)
    engine.wait(engine.create_job("mock", magnet(6)).id, timeout=WAIT)
    outcome = recorder.next()
    assert (outcome.ok, outcome.detail) == (False, "timeout")


def test_a_missing_program_is_a_failed_delivery(
    make_engine: MakeEngine, make_notifier: Any, tmp_path: Path
) -> None:
    engine = make_engine(MockProvider(0.0))
    notifier, recorder = make_notifier(on_complete_command=[str(tmp_path / "no-such-program")])
    notifier.attach(engine)
    engine.wait(engine.create_job("mock", magnet(7)).id, timeout=WAIT)
    outcome = recorder.next()
    assert (outcome.ok, outcome.detail) == (False, "FileNotFoundError")


def test_a_webhook_is_retried_on_500_then_succeeds(
    make_engine: MakeEngine, hooks: HookServer, make_notifier: Any
) -> None:
    engine = make_engine(MockProvider(0.0))
    hooks.scripts["/flaky"] = [500, 503, 200]
    notifier, recorder = make_notifier(on_complete_webhooks=[hooks.url("/flaky")], retries=3)
    notifier.attach(engine)
    done = engine.wait(engine.create_job("mock", magnet(8)).id, timeout=WAIT)
    outcome = recorder.next()
    assert (outcome.ok, outcome.attempts, outcome.detail) == (True, 3, "http 200")
    bodies = [hooks.take().body for _ in range(3)]
    assert all(json.loads(b) == as_json(done) for b in bodies)
    assert recorder.waits == [1.0, 2.0]  # exponential backoff, never slept on wall time


def test_a_429_waits_for_its_retry_after(
    make_engine: MakeEngine, hooks: HookServer, make_notifier: Any
) -> None:
    engine = make_engine(MockProvider(0.0))
    hooks.scripts["/busy"] = [429, 200]
    hooks.retry_after["/busy"] = "7"
    notifier, recorder = make_notifier(on_complete_webhooks=[hooks.url("/busy")])
    notifier.attach(engine)
    engine.wait(engine.create_job("mock", magnet(9)).id, timeout=WAIT)
    assert recorder.next().ok
    assert recorder.waits == [7.0]


def test_retries_give_up_after_the_limit_and_a_4xx_is_not_retried(
    make_engine: MakeEngine, hooks: HookServer, make_notifier: Any
) -> None:
    engine = make_engine(MockProvider(0.0))
    hooks.scripts["/down"] = [500] * 10
    hooks.scripts["/gone"] = [404] * 10
    notifier, recorder = make_notifier(
        on_complete_webhooks=[hooks.url("/down"), hooks.url("/gone")], retries=2
    )
    notifier.attach(engine)
    engine.wait(engine.create_job("mock", magnet(10)).id, timeout=WAIT)
    down, gone = recorder.next(), recorder.next()
    assert (down.ok, down.attempts, down.detail) == (False, 3, "http 500")
    assert (gone.ok, gone.attempts, gone.detail) == (False, 1, "http 404")
    assert recorder.waits == [1.0, 2.0]
    assert notifier.stats().failed == 2


def test_a_transport_error_is_retried(make_engine: MakeEngine, make_notifier: Any) -> None:
    engine = make_engine(MockProvider(0.0))
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    notifier, recorder = make_notifier(
        on_complete_webhooks=[f"http://127.0.0.1:{port}/x"], retries=1
    )
    notifier.attach(engine)
    engine.wait(engine.create_job("mock", magnet(11)).id, timeout=WAIT)
    outcome = recorder.next()
    assert (outcome.ok, outcome.attempts, outcome.detail) == (False, 2, "ConnectError")


def test_a_hanging_webhook_is_given_up_after_the_timeout_while_events_flow(
    make_engine: MakeEngine, hooks: HookServer, make_notifier: Any
) -> None:
    engine = make_engine(MockProvider(0.0))
    hooks.scripts["/slow"] = ["hang", 200]
    notifier, recorder = make_notifier(
        on_complete_webhooks=[hooks.url("/slow")], timeout=1.0, retries=0
    )
    notifier.attach(engine)
    seen: queue.Queue[JobEvent] = queue.Queue()
    engine.subscribe(seen.put)
    first = engine.create_job("mock", magnet(12))
    engine.wait(first.id, timeout=WAIT)
    assert hooks.hanging.wait(WAIT)
    # The worker is stuck on the hanging hook; the engine and its events are not.
    second = engine.create_job("mock", magnet(13))
    assert engine.wait(second.id, timeout=WAIT).status is JobStatus.COMPLETED
    statuses: list[JobStatus] = []
    while JobStatus.COMPLETED not in statuses:
        event = seen.get(timeout=WAIT)
        if event.job.id == second.id:
            statuses.append(event.job.status)
    given_up, delivered = recorder.next(), recorder.next()
    assert (given_up.job_id, given_up.ok, given_up.detail) == (first.id, False, "timeout")
    assert (delivered.job_id, delivered.ok) == (second.id, True)


def test_a_full_queue_drops_and_counts(
    make_engine: MakeEngine,
    hooks: HookServer,
    make_notifier: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(MockProvider(0.0))
    hooks.scripts["/slow"] = ["hang"]
    notifier, recorder = make_notifier(
        on_complete_webhooks=[hooks.url("/slow")], timeout=WAIT, retries=0, queue_size=1
    )
    notifier.attach(engine)
    first = engine.create_job("mock", magnet(20))
    engine.wait(first.id, timeout=WAIT)
    assert hooks.hanging.wait(WAIT)  # the worker holds the first notification
    # A subscriber after the notifier sees each event once the notifier has.
    completed: queue.Queue[str] = queue.Queue()
    engine.subscribe(lambda e: completed.put(e.job.id) if e.status is JobStatus.COMPLETED else None)
    caplog.set_level(logging.WARNING, logger="debrid.notify")
    others = engine.create_jobs("mock", [magnet(21), magnet(22), magnet(23)])
    ids = {completed.get(timeout=WAIT) for _ in others}
    assert ids == {j.id for j in others}
    stats = notifier.stats()
    assert (stats.queued, stats.dropped) == (1, 2)
    drops = [r for r in caplog.records if "notify_dropped" in r.getMessage()]
    assert len(drops) == 2
    assert all("queue_full" in r.getMessage() for r in drops)
    hooks.release.set()
    outcomes = {recorder.next().job_id, recorder.next().job_id}
    assert first.id in outcomes and len(outcomes) == 2


def test_close_drains_what_is_queued(
    make_engine: MakeEngine, hooks: HookServer, make_notifier: Any
) -> None:
    engine = make_engine(MockProvider(0.0))
    notifier, _ = make_notifier(on_complete_webhooks=[hooks.url("/done")])
    notifier.attach(engine)
    jobs = engine.create_jobs("mock", [magnet(30 + i) for i in range(5)])
    done = [engine.wait(job.id, timeout=WAIT) for job in jobs]
    engine.stop()  # the event bus delivers what it holds before it stops
    notifier.close(WAIT)
    assert notifier.stats().delivered == 5
    assert {json.loads(hooks.take().body)["id"] for _ in jobs} == {j.id for j in jobs}
    assert not notifier.notify(done[0])  # closed: a drop
    assert notifier.stats().dropped == 1


def test_close_gives_up_on_a_stuck_worker_within_its_timeout(
    make_engine: MakeEngine, hooks: HookServer, make_notifier: Any
) -> None:
    engine = make_engine(MockProvider(0.0))
    hooks.scripts["/slow"] = ["hang"]
    notifier, _ = make_notifier(
        on_complete_webhooks=[hooks.url("/slow")], timeout=1.0, retries=5, wait=None
    )
    notifier.attach(engine)
    jobs = [engine.create_job("mock", magnet(40))]
    engine.wait(jobs[0].id, timeout=WAIT)
    assert hooks.hanging.wait(WAIT)
    jobs += engine.create_jobs("mock", [magnet(41), magnet(42)])
    for job in jobs:
        engine.wait(job.id, timeout=WAIT)
    engine.stop()  # every event is out: the two are queued behind the hang
    notifier.close(0.1)  # the hang, then a backoff wait that close cuts short
    stats = notifier.stats()
    assert stats.abandoned == 2
    assert stats.queued == 0


def test_logs_name_the_target_but_never_the_url_secrets_or_the_json(
    make_engine: MakeEngine,
    hooks: HookServer,
    make_notifier: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="debrid")
    engine = make_engine(MockProvider(0.0))
    hooks.scripts["/hook"] = [500, 200]
    notifier, recorder = make_notifier(
        on_complete_webhooks=[hooks.url("/hook?token=s3cret-value")]
    )
    notifier.attach(engine)
    job = engine.create_job("mock", magnet(50))
    engine.wait(job.id, timeout=WAIT)
    assert recorder.next().ok
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "debrid.notify")
    assert "notify_delivered" in text and job.id in text
    assert "127.0.0.1" in text
    assert "s3cret" not in text
    assert '"files"' not in text and "magnet:" not in text


def test_from_settings_takes_any_object_with_the_notify_keys(hooks: HookServer) -> None:
    settings = types.SimpleNamespace(
        on_complete_command=["/bin/true"],
        on_failure_command=[],
        on_complete_webhooks=[hooks.url("/a")],
        on_failure_webhooks=[],
        timeout=3.0,
        retries=1,
    )
    notifier = Notifier.from_settings(settings)
    assert (notifier.timeout, notifier.retries, notifier.enabled) == (3.0, 1, True)
    assert not Notifier.from_settings(types.SimpleNamespace()).enabled
    notifier.close(1.0)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"on_complete_command": "notify-send done"}, "on_complete_command"),
        ({"on_failure_webhooks": ["ftp://host/x"]}, "on_failure_webhooks[0]"),
        ({"on_complete_webhooks": "http://host/x"}, "on_complete_webhooks"),
        ({"timeout": 0}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"queue_size": 0}, "queue_size"),
    ],
)
def test_bad_settings_are_validation_errors_naming_the_key(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Notifier(**options)
    assert caught.value.field == field


def test_a_webhook_httpx_cannot_encode_fails_alone_and_the_worker_goes_on(
    make_engine: MakeEngine, make_notifier: Any, tmp_path: Path
) -> None:
    """Review finding: ``http://a..b/`` raised out of the worker (an encoding error, not
    a transport error); the thread died and every later notification sat queued."""
    engine = make_engine(MockProvider(0.0))
    out = tmp_path / "job.json"
    notifier, recorder = make_notifier(
        on_complete_webhooks=["http://a..b/hook"],
        on_complete_command=[sys.executable, "-c", COPY_STDIN, str(out)],
    )
    notifier.attach(engine)
    engine.wait(engine.create_job("mock", magnet(30)).id, timeout=WAIT)
    first = [recorder.next(), recorder.next()]
    assert sorted((o.kind, o.ok) for o in first) == [("command", True), ("webhook", False)]
    out.unlink()
    done = engine.wait(engine.create_job("mock", magnet(31)).id, timeout=WAIT)
    again = [recorder.next(), recorder.next()]
    assert sorted((o.kind, o.ok) for o in again) == [("command", True), ("webhook", False)]
    assert json.loads(out.read_bytes()) == as_json(done)


def test_a_command_does_not_inherit_the_daemons_secrets(
    make_engine: MakeEngine, make_notifier: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEBRID_API_TOKEN", "SECRET-api")
    monkeypatch.setenv("DEBRID_TORBOX_API_KEY", "SECRET-tb")
    monkeypatch.setenv("DEBRID_LOG_LEVEL", "debug")
    engine = make_engine(MockProvider(0.0))
    out = tmp_path / "env.json"
    dump = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"
    notifier, recorder = make_notifier(on_complete_command=[sys.executable, "-c", dump, str(out)])
    notifier.attach(engine)
    engine.wait(engine.create_job("mock", magnet(32)).id, timeout=WAIT)
    assert recorder.next().ok
    seen = json.loads(out.read_text())
    assert "DEBRID_API_TOKEN" not in seen and "DEBRID_TORBOX_API_KEY" not in seen
    assert seen["DEBRID_LOG_LEVEL"] == "debug"
