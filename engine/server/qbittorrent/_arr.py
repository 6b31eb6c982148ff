"""``ArrReporter``: a failed item is reported to its *arr app, which then looks for another release.

A qBittorrent ``error`` state is only a warning to Sonarr (``../ARR.md``), so
for a category that names an *arr app (``arr_url``, ``arr_api_key``; or the
app a login named, with ``arr_from_login``) the face tells the app itself: it
finds the grab in the app's history by the item's hash (``GET
{api}/history?downloadId=HASH``) and marks it failed (``POST
{api}/history/failed/{id}``), as decypharr does.

Reports run on one worker thread of their own, never an actor's, each try
with a timeout, retried with exponential backoff up to ``arr_tries`` times. A
failed attempt is reported once: the item records the attempt it reported
(``reported_attempt``), after the app accepted it; on start, failed items not
yet reported are queued again. The API key goes only in the ``X-Api-Key``
header; it is never logged.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import httpx

from engine.server.qbittorrent._face import QbitFace
from engine.server.qbittorrent._options import ArrTarget
from persistence import ClientItem
from providers import EngineError, JobStatus
from providers._log import get_logger

__all__ = ["ArrReporter"]

log = get_logger("debrid.server.qbittorrent.arr")

#: Failed jobs waiting to be reported at most (past it, the oldest wait for a restart).
MAX_QUEUED = 10_000


class ArrReporter:
    """Reports failed items of ``face`` to their *arr apps (see the module docstring)."""

    def __init__(self, face: QbitFace, *, wait: Callable[[float], bool] | None = None) -> None:
        self.face = face
        self._queue: queue.Queue[str | None] = queue.Queue(MAX_QUEUED)
        self._stopping = threading.Event()
        # How a retry waits: interrupted by stop (tests may pass their own).
        self._wait = wait or self._stopping.wait
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        #: Reports the apps accepted, and tries that failed (for tests and metrics).
        self.sent = 0
        self.failed_tries = 0

    def start(self) -> None:
        """Follow the engine's events and queue the failures not yet reported."""
        if self._thread is not None:
            return
        self._unsubscribe = self.face.engine.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._run, name="debrid-arr-reports", daemon=True)
        self._thread.start()
        try:
            for item in self.face.book().items():
                if item.job_id is not None:
                    self._offer(item.job_id)
        except EngineError as error:
            log.warning("arr_backlog_unread", error_type=type(error).__name__)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following events and end the worker (a report in flight is cut short)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            thread.join(timeout)

    def _on_event(self, event: Any) -> None:
        job = event.job
        if job.status is JobStatus.FAILED:
            self._offer(job.id)

    def _offer(self, job_id: str) -> None:
        try:
            self._queue.put_nowait(job_id)
        except queue.Full:
            log.warning("arr_queue_full", job_id=job_id)

    def _run(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._report(job_id)
            except Exception:
                log.error("arr_report_crashed", job_id=job_id, exc_info=True)

    def target(self, item: ClientItem) -> ArrTarget | None:
        """The *arr app that hears of ``item``'s failure, if any."""
        configured = self.face.category_options(item.category) if item.category else None
        if configured is not None and configured.arr is not None:
            return configured.arr
        return self.face.login_arr

    def _report(self, job_id: str) -> None:
        try:
            job = self.face.engine.get_job(job_id)
        except EngineError:
            return
        # One worker takes the queue in order: a second offer of the same failure
        # finds it marked (``reported_attempt``) and stops here.
        if job.status is not JobStatus.FAILED:
            return
        item = self.face.book().by_job(job.id)
        if item is None or (item.reported_attempt or 0) >= job.attempt:
            return
        target = self.target(item)
        if target is None:
            return
        delay = self.face.options.arr_backoff
        for attempt in range(1, self.face.options.arr_tries + 1):
            if self._stopping.is_set():
                break
            outcome = self._send(target, item)
            if outcome is True:
                self.sent += 1
                # Only that column, only while the item is still this job's: the
                # client may have relabelled, deleted or re-added it meanwhile.
                self.face.book().mark_reported(item.hash, job.id, job.attempt)
                log.info("arr_failure_reported", job_id=job.id, category=item.category,
                         arr=target.url)
                return
            self.failed_tries += 1
            if outcome is None:
                break  # nothing to mark: the app does not know this download
            if attempt < self.face.options.arr_tries and self._wait(delay):
                break  # stopping
            delay *= 2
        log.warning("arr_failure_not_reported", job_id=job.id, category=item.category,
                    arr=target.url)

    def _send(self, target: ArrTarget, item: ClientItem) -> bool | None:
        """True once marked failed; None when the app has no grab of it; False to retry."""
        base = target.url.rstrip("/") + "/" + target.api_path.strip("/")
        headers = {"X-Api-Key": target.api_key, "Accept": "application/json"}
        timeout = self.face.options.arr_timeout
        try:
            with httpx.Client(timeout=timeout, trust_env=False, headers=headers) as http:
                found = http.get(f"{base}/history", params={
                    "downloadId": item.hash.upper(), "page": 1, "pageSize": 50,
                    "sortKey": "date", "sortDirection": "descending",
                })
                if found.status_code != 200:
                    log.warning("arr_history_refused", status=found.status_code, arr=target.url)
                    return False
                record = _grab(found.json(), item.hash)
                if record is None:
                    log.warning("arr_grab_not_found", hash=item.hash, arr=target.url)
                    return None
                marked = http.post(f"{base}/history/failed/{record}")
                if marked.status_code >= 300:
                    log.warning("arr_mark_refused", status=marked.status_code, arr=target.url)
                    return False
                return True
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("arr_unreachable", arr=target.url, error_type=type(exc).__name__)
            return False


def _grab(answer: Any, hash_: str) -> int | None:
    """The id of the newest grab of ``hash_`` in a history answer (paged or a list)."""
    records = answer.get("records", []) if isinstance(answer, dict) else answer
    if not isinstance(records, list):
        return None
    for record in records:
        if not isinstance(record, dict):
            continue
        same = str(record.get("downloadId", "")).lower() == hash_.lower()
        grabbed = str(record.get("eventType", "")).lower() in ("grabbed", "1")
        if same and grabbed and isinstance(record.get("id"), int):
            return int(record["id"])
    return None
