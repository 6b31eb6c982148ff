"""Completion and failure notifications: a command and webhooks, on one worker thread.

A ``Notifier`` subscribes to an engine (``attach``) and, when a job moves into
COMPLETED or FAILED, runs the configured command with the job's JSON
(``json.dumps(job.to_dict())``) on stdin and POSTs the same JSON to each
configured webhook. The engine's event callback never waits for any of it: it
puts the job on a bounded queue (a full queue drops the notification, logs a
warning and counts it) that one worker thread serves in order.

Each command run and each webhook request is bounded by ``timeout`` seconds
(a command still running then is killed, with its process group); webhooks are
retried on transport errors, 5xx and 429 with exponential backoff (a 429's
Retry-After is honoured, within the cap), ``retries`` times after the first
attempt. A command runs once: it need not be idempotent. ``close`` drains what
is queued within its timeout, then stops the worker.

Log lines carry the job id, the target (the command's program name, a
webhook's host) and the outcome; never a webhook's path or query (tokens travel
there), a command's arguments, its output, or the job's JSON.
"""

from __future__ import annotations

import collections
import functools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import attrs
import httpx

from actors import JobEvent
from providers import Job, JobStatus, ValidationError
from providers._http import parse_retry_after
from providers._log import get_logger, redact_http_logs

__all__ = ["DeliveryOutcome", "Notifier", "NotifierStats", "Subscribable"]

log = get_logger("debrid.notify")

#: Which hooks a notification goes to.
Reason = Literal["complete", "failure"]

_REASONS: dict[JobStatus, Reason] = {
    JobStatus.COMPLETED: "complete",
    JobStatus.FAILED: "failure",
}
#: Notifications waiting for the worker at most; past this they are dropped.
DEFAULT_QUEUE_SIZE = 1000
#: Seconds of the first webhook retry's wait; each next one doubles, up to the cap.
DEFAULT_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 60.0
#: Seconds ``close`` gives an aborted worker to notice (its current request or
#: command is still bounded by ``timeout``; the thread is a daemon).
_ABORT_GRACE = 1.0


class Subscribable(Protocol):
    """What ``Notifier.attach`` needs of an engine."""

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after each committed change; returns an unsubscribe."""
        ...


@attrs.frozen
class DeliveryOutcome:
    """How one notification went to one target (for ``on_outcome`` observers).

    ``kind`` is ``command`` or ``webhook``; ``target`` the command's program name
    or the webhook's host; ``ok`` whether it was accepted (exit status 0, a 2xx);
    ``attempts`` how many tries it took; ``detail`` a short reason
    (``exit 3``, ``http 500``, ``timeout``, ``ConnectError``...).
    """

    job_id: str
    reason: Reason
    kind: Literal["command", "webhook"]
    target: str
    ok: bool
    attempts: int
    detail: str


@attrs.frozen
class NotifierStats:
    """Counters since the notifier was made."""

    queued: int  # waiting for the worker now
    delivered: int  # targets that accepted a notification
    failed: int  # targets that did not, after every try
    dropped: int  # notifications not queued: the queue was full (or closed)
    abandoned: int  # notifications still queued when ``close`` ran out of time


@attrs.frozen
class _Notification:
    job: Job
    reason: Reason


class Notifier:
    """Runs a command and POSTs webhooks when jobs complete or fail (see the module doc).

    Commands are argv lists (no shell); webhooks are ``http``/``https`` URLs.
    ``wait(seconds)`` is how the worker waits between webhook tries (by default an
    event that ``close`` sets, so a stop never waits out a backoff); tests pass
    one that returns at once. ``http_client`` builds the one ``httpx.Client`` the
    worker uses (on the worker thread); ``clock`` (monotonic seconds) times the
    deliveries; ``on_outcome`` is called on the worker thread after each target.
    """

    def __init__(
        self,
        on_complete_command: Sequence[str] = (),
        on_failure_command: Sequence[str] = (),
        on_complete_webhooks: Sequence[str] = (),
        on_failure_webhooks: Sequence[str] = (),
        *,
        timeout: float = 10.0,
        retries: int = 3,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] | None = None,
        http_client: Callable[[], httpx.Client] | None = None,
        on_outcome: Callable[[DeliveryOutcome], None] | None = None,
    ) -> None:
        self._commands: dict[Reason, tuple[str, ...]] = {
            "complete": _command("on_complete_command", on_complete_command),
            "failure": _command("on_failure_command", on_failure_command),
        }
        self._webhooks: dict[Reason, tuple[str, ...]] = {
            "complete": _webhooks("on_complete_webhooks", on_complete_webhooks),
            "failure": _webhooks("on_failure_webhooks", on_failure_webhooks),
        }
        self.timeout = _seconds("timeout", timeout)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError(
                "retries", "not a count of retries", value=retries, expected="an int >= 0"
            )
        self.retries = retries
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValidationError(
                "queue_size", "not a queue size", value=queue_size, expected="an int >= 1"
            )
        self._queue_size = queue_size
        self._backoff = _seconds("backoff", backoff)
        self._max_backoff = _seconds("max_backoff", max_backoff)
        self._clock = clock
        self._abort = threading.Event()
        self._wait: Callable[[float], object] = wait if wait is not None else self._abort.wait
        self._http_factory = http_client or self._default_client
        self._on_outcome = on_outcome
        self._lock = threading.Condition()
        self._pending: collections.deque[_Notification] = collections.deque()
        self._closing = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._detachers: list[Callable[[], None]] = []
        self._delivered = 0
        self._failed = 0
        self._dropped = 0
        self._abandoned = 0

    @classmethod
    def from_settings(cls, settings: object, **overrides: Any) -> Notifier:
        """A notifier from any object with the ``[notify]`` keys as attributes.

        Missing attributes take the defaults; ``overrides`` (``clock``, ``wait``,
        ``http_client``, ``on_outcome``, ``queue_size``...) go to the constructor.
        """
        names = (
            "on_complete_command",
            "on_failure_command",
            "on_complete_webhooks",
            "on_failure_webhooks",
            "timeout",
            "retries",
        )
        values = {name: getattr(settings, name) for name in names if hasattr(settings, name)}
        for key in ("on_complete_command", "on_failure_command"):
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**{**values, **overrides})

    @property
    def enabled(self) -> bool:
        """True when there is at least one command or webhook to notify."""
        return any(self._commands.values()) or any(self._webhooks.values())

    # -- wiring --------------------------------------------------------------------
    def attach(self, engine: Subscribable) -> Callable[[], None]:
        """Subscribe to ``engine``'s events and start the worker; returns a detach."""
        self._start_worker()
        unsubscribe = engine.subscribe(self._on_event)
        done = threading.Event()

        def detach() -> None:
            if not done.is_set():
                done.set()
                unsubscribe()

        with self._lock:
            self._detachers.append(detach)
        return detach

    def notify(self, job: Job) -> bool:
        """Queue the notifications for ``job`` (COMPLETED or FAILED) without waiting.

        False when nothing was queued: another state, nothing configured for it,
        or the queue full or closed (a drop, logged and counted).
        """
        reason = _REASONS.get(job.status)
        if reason is None or not (self._commands[reason] or self._webhooks[reason]):
            return False
        with self._lock:
            if self._closing or len(self._pending) >= self._queue_size:
                self._dropped += 1
                dropped, closing = self._dropped, self._closing
            else:
                self._pending.append(_Notification(job, reason))
                self._lock.notify_all()
                return True
        log.warning(
            "notify_dropped",
            job_id=job.id,
            provider=job.provider,
            reason=reason,
            why="closed" if closing else "queue_full",
            dropped=dropped,
        )
        return False

    def stats(self) -> NotifierStats:
        """The counters now."""
        with self._lock:
            return NotifierStats(
                queued=len(self._pending),
                delivered=self._delivered,
                failed=self._failed,
                dropped=self._dropped,
                abandoned=self._abandoned,
            )

    def close(self, timeout: float = 10.0) -> None:
        """Detach from every engine, deliver what is queued within ``timeout`` seconds,
        then stop the worker. What is still queued then is abandoned (logged, counted);
        a delivery under way is cut short at its next wait."""
        with self._lock:
            detachers, self._detachers = self._detachers, []
        for detach in detachers:
            detach()
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            thread = self._thread
        if thread is None:
            return
        thread.join(max(timeout, 0.0))
        if thread.is_alive():
            with self._lock:
                left = len(self._pending)
                self._abandoned += left
                self._pending.clear()
            self._abort.set()
            log.warning("notify_close_timed_out", abandoned=left, timeout=timeout)
            thread.join(_ABORT_GRACE)
            if thread.is_alive():
                log.warning("notify_worker_left_running")

    def __enter__(self) -> Notifier:
        self._start_worker()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(self.timeout)

    # -- the engine's side: never blocks -------------------------------------------
    def _on_event(self, event: JobEvent) -> None:
        try:
            if event.kind != "transition" or event.job.status not in _REASONS:
                return
            if event.previous is event.job.status:
                return
            self.notify(event.job)
        except Exception:  # a notifier bug must not reach the event bus
            log.exception("notify_event_failed", job_id=getattr(event.job, "id", None))

    # -- the worker ----------------------------------------------------------------
    def _start_worker(self) -> None:
        with self._lock:
            if self._thread is not None or self._closing:
                return
            self._thread = threading.Thread(target=self._run, name="debrid-notify", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        client: httpx.Client | None = None
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._closing:
                        self._lock.wait()
                    if not self._pending or self._abort.is_set():
                        return
                    item = self._pending.popleft()
                if client is None and self._webhooks[item.reason]:
                    client = self._http_factory()
                self._deliver(item, client)
        finally:
            if client is not None:
                client.close()

    def _deliver(self, item: _Notification, client: httpx.Client | None) -> None:
        try:
            body = json.dumps(item.job.to_dict()).encode()
        except Exception:  # one bad job must not stop the worker
            log.exception("notify_encode_failed", job_id=item.job.id)
            return
        argv = self._commands[item.reason]
        if argv:
            self._record(self._guarded(item, "command", os.path.basename(argv[0]),
                                       lambda: self._run_command(item, argv, body)))
        for url in self._webhooks[item.reason]:
            if self._abort.is_set():
                return
            assert client is not None
            self._record(self._guarded(item, "webhook", _host(url),
                                       functools.partial(self._post, item, url, body, client)))

    @staticmethod
    def _guarded(
        item: _Notification,
        kind: Literal["command", "webhook"],
        target: str,
        deliver: Callable[[], DeliveryOutcome],
    ) -> DeliveryOutcome:
        """``deliver()``, or a failed outcome for what it raised: the worker goes on.

        Review finding: a webhook URL httpx cannot encode (``http://a..b/``) raised
        out of the worker, which died with the rest of the queue undelivered.
        """
        try:
            return deliver()
        except Exception as error:  # noqa: BLE001 - one target's fault, not the worker's
            log.warning("notify_delivery_raised", job_id=item.job.id, kind=kind, target=target,
                        error=type(error).__name__)
            return DeliveryOutcome(item.job.id, item.reason, kind, target, False, 1,
                                   type(error).__name__)

    def _record(self, outcome: DeliveryOutcome) -> None:
        with self._lock:
            if outcome.ok:
                self._delivered += 1
            else:
                self._failed += 1
        fields: dict[str, Any] = {
            "job_id": outcome.job_id,
            "reason": outcome.reason,
            "kind": outcome.kind,
            "target": outcome.target,
            "attempts": outcome.attempts,
            "outcome": outcome.detail,
        }
        if outcome.ok:
            log.info("notify_delivered", **fields)
        else:
            log.warning("notify_failed", **fields)
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception:  # an observer's bug must not stop the worker
                log.exception("notify_observer_failed", job_id=outcome.job_id)

    def _run_command(
        self, item: _Notification, argv: tuple[str, ...], body: bytes
    ) -> DeliveryOutcome:
        target = os.path.basename(argv[0]) or argv[0]
        started = self._clock()

        def outcome(ok: bool, detail: str) -> DeliveryOutcome:
            log.debug("notify_command_ran", job_id=item.job.id, seconds=self._clock() - started)
            return DeliveryOutcome(item.job.id, item.reason, "command", target, ok, 1, detail)

        try:
            process = subprocess.Popen(  # noqa: S603 - the argv is the user's own config
                argv,
                env=_child_environment(),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=sys.platform != "win32",
            )
        except OSError as error:
            return outcome(False, type(error).__name__)
        try:
            process.communicate(body, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            return outcome(False, "timeout")
        except OSError:
            # The command closed its stdin early (a broken pipe): its exit status decides.
            try:
                process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                _kill(process)
                return outcome(False, "timeout")
        code = process.returncode
        return outcome(code == 0, f"exit {code}")

    def _post(
        self, item: _Notification, url: str, body: bytes, client: httpx.Client
    ) -> DeliveryOutcome:
        target = _host(url)
        detail = ""
        attempt = 0
        while True:
            attempt += 1
            hint: float | None = None
            try:
                with client.stream(
                    "POST",
                    url,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=self.timeout,
                ) as response:
                    status = response.status_code
                    retry_after = response.headers.get("Retry-After")
            except httpx.TimeoutException:
                detail, retryable = "timeout", True
            except httpx.TransportError as error:
                detail, retryable = type(error).__name__, True
            else:
                detail = f"http {status}"
                if 200 <= status < 300:
                    return DeliveryOutcome(
                        item.job.id, item.reason, "webhook", target, True, attempt, detail
                    )
                retryable = status >= 500 or status == 429
                if status == 429:
                    hint = parse_retry_after(retry_after, time.time())
            if not retryable or attempt > self.retries or self._abort.is_set():
                return DeliveryOutcome(
                    item.job.id, item.reason, "webhook", target, False, attempt, detail
                )
            delay = min(self._backoff * 2 ** (attempt - 1), self._max_backoff)
            if hint is not None:
                delay = min(max(delay, hint), self._max_backoff)
            log.info(
                "notify_retry",
                job_id=item.job.id,
                target=target,
                attempt=attempt,
                outcome=detail,
                delay=delay,
            )
            self._wait(delay)
            if self._abort.is_set():
                return DeliveryOutcome(
                    item.job.id, item.reason, "webhook", target, False, attempt, detail
                )

    def _default_client(self) -> httpx.Client:
        redact_http_logs()
        return httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill a timed-out command and whatever it started in its session."""
    try:
        if sys.platform != "win32":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except OSError:
        pass  # already gone
    try:
        process.wait(5.0)
    except subprocess.TimeoutExpired:
        log.warning("notify_command_unkillable", pid=process.pid)


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _command(field: str, value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not all(isinstance(arg, str) for arg in value):
        raise ValidationError(
            field, "not an argument list", value=value, expected="a list of strings"
        )
    argv = tuple(value)
    if argv and not argv[0]:
        raise ValidationError(field, "empty program name", expected="a program path first")
    return argv


def _webhooks(field: str, value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str | bytes):
        raise ValidationError(field, "not a list of URLs", expected="a list of http(s) URLs")
    urls = tuple(value)
    for index, url in enumerate(urls):
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            # The value is not echoed: a webhook URL may carry a token.
            raise ValidationError(
                f"{field}[{index}]", "not an http(s) URL", expected="http(s)://host/..."
            )
    return urls


def _seconds(field: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(field, "not a duration", value=value, expected="seconds above 0")
    return float(value)


#: Variables a notification command does not inherit: the daemon's own secrets.
_SECRET_VARIABLES = ("DEBRID_API_TOKEN", "DEBRID_REALDEBRID_API_TOKEN", "DEBRID_TORBOX_API_KEY")


def _child_environment() -> dict[str, str]:
    """The daemon's environment without its secrets (the API token, provider keys)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not (
            name in _SECRET_VARIABLES
            or (name.startswith("DEBRID_") and name.endswith(("_API_KEY", "_API_TOKEN")))
        )
    }
