"""Failed items are reported to their *arr app (``ArrReporter``), over real HTTP both ways.

A small fake *arr app (``FakeArr``: a real HTTP server on loopback) answers
``GET /api/v3/history?downloadId=HASH`` with the grabs the test registered (as
Sonarr would have recorded them when it sent the magnet) and records every
``POST /api/v3/history/failed/{id}``. It checks ``X-Api-Key`` (401 for a wrong
one) and can be told to answer 500 to its next requests, or to hold a POST
until the test lets it go.

Every test runs a real engine (the mock provider, made to fail the job
remotely with ``MockProvider.inject("remote_fail", ...)``) behind a real daemon,
and adds through ``POST /api/v2/torrents/add`` as Sonarr does. The engine's
time moves only while a ``ClockDriver`` runs; waits are on conditions (the
fake's requests, the reporter's log lines) with wall-clock deadlines, never
blind sleeps.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
from server_helpers import Served, ServeFactory

from engine.server.qbittorrent import ArrReporter, ArrTarget, CategoryOptions, QbitOptions
from engine.testing import ClockDriver
from providers import JobStatus, MockProvider, ProviderRegistry

API_KEY = "arr-key-123"
WRONG_KEY = "arr-key-WRONG-987"
#: Wall seconds any one wait may take (each test stays well under 20 s).
DEADLINE = 10.0
ARR_LOGGER = "debrid.server.qbittorrent.arr"


# -- the fake *arr app ----------------------------------------------------------------


@attrs.frozen
class Seen:
    """One request the fake *arr app received, and what it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


class FakeArr:
    """A fake Sonarr: ``/api/v3/history`` and ``/api/v3/history/failed/{id}`` on loopback."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_keys = {api_key}
        #: HASH (upper case) -> the history records of that download.
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[Seen] = []
        self.fail_next = 0
        #: Set to hold every POST until ``release`` is set (the request is recorded first).
        self.hold_posts = False
        self.release = threading.Event()
        self.changed = threading.Condition()
        self._next_id = 100
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-arr",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # -- what the test sets up ---------------------------------------------------
    def grab(self, hash_: str, *, earlier: int = 0) -> int:
        """Record a grab of ``hash_`` as Sonarr would (``earlier`` older grabs first);
        returns the id of the newest grab, the one to be marked failed."""
        records = self.history.setdefault(hash_.upper(), [])
        for n in range(earlier + 1):
            self._next_id += 1
            records.append({
                "id": self._next_id, "episodeId": 7, "seriesId": 3,
                "sourceTitle": f"Show.S01E0{n + 1}.1080p", "eventType": "grabbed",
                "downloadId": hash_.upper(),
                "date": f"2024-05-0{n + 1}T10:00:00Z",
                "data": {"downloadClient": "debrid", "indexer": "prowlarr"},
            })
        # A record of another kind, newer than the grabs: never the one marked.
        self._next_id += 1
        records.append({"id": self._next_id, "eventType": "downloadFolderImported",
                        "downloadId": "", "date": "2024-05-09T10:00:00Z", "data": {}})
        return self._next_id - 1

    # -- what the test reads -----------------------------------------------------
    def seen(self, method: str | None = None, path_start: str = "") -> list[Seen]:
        with self.changed:
            return [r for r in self.requests
                    if (method is None or r.method == method) and r.path.startswith(path_start)]

    def marked(self) -> list[int]:
        """The ids POSTed to ``history/failed/{id}`` and accepted, in order."""
        return [int(r.path.rsplit("/", 1)[1]) for r in self.seen("POST", "/api/v3/history/failed/")
                if r.status == 200]

    def wait_for(self, predicate: Callable[[], bool], what: str,
                 timeout: float = DEADLINE) -> None:
        with self.changed:
            if not self.changed.wait_for(predicate, timeout):
                raise AssertionError(f"the fake *arr app never saw {what}: {self.requests}")

    # -- serving -----------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        length = int(headers.get("content-length") or 0)
        if length:
            request.rfile.read(length)
        status, body = self._answer(method, parts.path, query, headers)
        seen = Seen(method, parts.path, query, headers, status)
        with self.changed:
            self.requests.append(seen)
            self.changed.notify_all()
        if method == "POST" and self.hold_posts:
            self.release.wait(DEADLINE)
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _answer(self, method: str, path: str, query: dict[str, str],
                headers: dict[str, str]) -> tuple[int, Any]:
        with self.changed:
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"message": "Internal Server Error"}
        if headers.get("x-api-key") not in self.api_keys:
            return 401, {"message": "Unauthorized"}
        if method == "GET" and path == "/api/v3/history":
            wanted = query.get("downloadId", "")
            records = list(self.history.get(wanted, []))
            newest_first = query.get("sortDirection", "ascending") == "descending"
            records.sort(key=lambda r: r["date"], reverse=newest_first)
            return 200, {"page": 1, "pageSize": int(query.get("pageSize", 10)),
                         "sortKey": query.get("sortKey", "date"),
                         "totalRecords": len(records), "records": records}
        if method == "POST" and path.startswith("/api/v3/history/failed/"):
            id_ = path.rsplit("/", 1)[1]
            known = {r["id"] for rs in self.history.values() for r in rs}
            if not id_.isdigit() or int(id_) not in known:
                return 404, {"message": "NotFound"}
            return 200, {}
        return 404, {"message": "NotFound"}


# -- the reporter's log lines, to wait on -----------------------------------------------


class Lines(logging.Handler):
    """Every ``debrid.*`` event logged; waitable by event name."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "debrid_event", None)
        if event is None:
            return
        with self.changed:
            self.events.append((event, dict(getattr(record, "debrid_fields", {}))))
            self.changed.notify_all()

    def count(self, event: str) -> int:
        with self.changed:
            return sum(1 for name, _ in self.events if name == event)

    def wait_for(self, event: str, n: int = 1, timeout: float = DEADLINE) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.count(event) >= n, timeout):
                raise AssertionError(f"never logged {event} x{n}: {self.events[-20:]}")


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def arr() -> Iterator[FakeArr]:
    fake = FakeArr()
    yield fake
    fake.close()


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Iterator[Lines]:
    caplog.set_level(logging.INFO)
    handler = Lines()
    logging.getLogger("debrid").addHandler(handler)
    yield handler
    logging.getLogger("debrid").removeHandler(handler)


@attrs.define
class Arrd:
    """A served engine whose mock provider the test can make fail."""

    served: Served
    mock: MockProvider

    @property
    def reporter(self) -> ArrReporter:
        reporter: ArrReporter = self.served.daemon.app.state.arr_reporter
        return reporter


def start(serve: ServeFactory, *categories: CategoryOptions, **qbit: Any) -> Arrd:
    registry = ProviderRegistry()
    mock = MockProvider(1.0)
    registry.register_provider("mock", mock)
    qbit.setdefault("arr_backoff", 0.01)
    served = serve(registry=registry, qbittorrent=QbitOptions(categories=categories, **qbit))
    return Arrd(served, mock)


def tv(url: str, key: str = API_KEY, name: str = "tv") -> CategoryOptions:
    return CategoryOptions(name, arr=ArrTarget(url, key))


def hash_of(n: int) -> str:
    """A lower-case info-hash with letters in it (so upper-casing matters)."""
    return f"{0xABCDEF00 + n:040x}"


def add(arrd: Arrd, n: int, category: str = "tv", *, fail: bool = True) -> str:
    """Add a magnet through the face (the mock fails its job remotely when ``fail``)."""
    if fail:
        arrd.mock.inject("remote_fail", op="start_job", code="MOCK_FAILURE",
                         at=JobStatus.RESOLVING)
    hash_ = hash_of(n)
    answer = arrd.served.client.post("/api/v2/torrents/add", data={
        "urls": f"magnet:?xt=urn:btih:{hash_}&dn=Show.S01E0{n}.1080p", "category": category,
    })
    assert answer.status_code == 200 and answer.text == "Ok.", answer.text
    return hash_


def job_id(arrd: Arrd, hash_: str) -> str:
    item = arrd.served.daemon.app.state.qbit_face.book().get([hash_])[hash_]
    assert item.job_id is not None
    found: str = item.job_id
    return found


def run_out(arrd: Arrd, hash_: str) -> JobStatus:
    """Drive the fake clock until the item's job ends; its end state."""
    with ClockDriver(arrd.served.clock, step=0.5):
        job = arrd.served.engine.wait(job_id(arrd, hash_), timeout=DEADLINE)
    return job.status


def info(arrd: Arrd, hash_: str) -> dict[str, Any]:
    answer = arrd.served.client.get("/api/v2/torrents/info", params={"hashes": hash_})
    assert answer.status_code == 200, answer.text
    [entry] = answer.json()
    assert isinstance(entry, dict)
    return entry


def fails(arrd: Arrd, n: int, category: str = "tv") -> str:
    """Add an item that fails, and wait until ``torrents/info`` shows it in ``error``."""
    hash_ = add(arrd, n, category)
    assert run_out(arrd, hash_) is JobStatus.FAILED
    assert info(arrd, hash_)["state"] == "error"
    return hash_


def reported(item_book: Any, hash_: str) -> int | None:
    attempt: int | None = item_book.get([hash_])[hash_].reported_attempt
    return attempt


def no_secret_logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
                     *secrets: str) -> None:
    out, err = capfd.readouterr()
    texts = [out, err]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.__dict__)]
    for secret in secrets:
        leaked = [t for t in texts if secret in t]
        assert not leaked, leaked[:3]


# -- the tests --------------------------------------------------------------------------


def test_a_failed_job_is_reported_to_its_arr_app_exactly_once(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    arrd = start(serve, tv(arr.url))
    hash_ = hash_of(1)
    grab = arr.grab(hash_, earlier=1)  # a re-grab: the newest grab is the one marked
    assert fails(arrd, 1) == hash_
    with ClockDriver(arrd.served.clock, step=0.5):
        arr.wait_for(lambda: bool(arr.marked()), "the failure marked")
        lines.wait_for("arr_failure_reported")
    [lookup] = arr.seen("GET", "/api/v3/history")
    assert lookup.query["downloadId"] == hash_.upper()
    assert lookup.query["sortDirection"] == "descending"
    assert lookup.headers["x-api-key"] == API_KEY
    [post] = arr.seen("POST")
    assert post.path == f"/api/v3/history/failed/{grab}"
    assert post.headers["x-api-key"] == API_KEY
    assert arr.marked() == [grab]
    book = arrd.served.daemon.app.state.qbit_face.book()
    assert reported(book, hash_) == 1

    # More time and more events: the finished job, another item that completes, a
    # second failure (the worker handles its queue in order, so once the second one
    # is marked every event of the first was seen).
    second = arr.grab(hash_of(2))
    ok = add(arrd, 3, fail=False)
    assert run_out(arrd, ok) is JobStatus.COMPLETED
    fails(arrd, 2)
    with ClockDriver(arrd.served.clock, step=0.5):
        arr.wait_for(lambda: len(arr.marked()) >= 2, "the second failure marked")
        lines.wait_for("arr_failure_reported", 2)
    assert arr.marked() == [grab, second]
    assert [r.query["downloadId"] for r in arr.seen("GET")] == [hash_.upper(),
                                                                hash_of(2).upper()]
    assert arrd.reporter.sent == 2 and arrd.reporter.failed_tries == 0
    assert lines.count("arr_failure_not_reported") == 0

    # The key goes only in the header: never in a log line, nor in what the face shows.
    for path in ("/api/v2/app/preferences", "/api/v2/torrents/info",
                 "/api/v2/torrents/categories", f"/api/v2/torrents/properties?hash={hash_}"):
        assert API_KEY not in arrd.served.client.get(path).text, path
    no_secret_logged(caplog, capfd, API_KEY)


def test_a_restart_does_not_report_a_failure_again(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
) -> None:
    first = start(serve, tv(arr.url))
    grab = arr.grab(hash_of(1))
    fails(first, 1)
    with ClockDriver(first.served.clock, step=0.5):
        lines.wait_for("arr_failure_reported")
    assert arr.marked() == [grab]
    first.served.daemon.stop()
    first.served.engine.stop()

    again = start(serve, tv(arr.url))  # same database (the fixture's tmp_path)
    book = again.served.daemon.app.state.qbit_face.book()
    assert reported(book, hash_of(1)) == 1
    assert info(again, hash_of(1))["state"] == "error"
    # The backlog is queued on start, before any event: once a new failure is marked,
    # the old item was looked at and skipped.
    second = arr.grab(hash_of(2))
    fails(again, 2)
    with ClockDriver(again.served.clock, step=0.5):
        lines.wait_for("arr_failure_reported", 2)
    assert again.reporter._queue.empty()
    assert arr.marked() == [grab, second]
    assert len(arr.seen("GET")) == 2  # the old one was not even looked up again
    assert again.reporter.sent == 1


def test_a_report_is_retried_through_server_errors(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
) -> None:
    arrd = start(serve, tv(arr.url), arr_tries=4)
    grab = arr.grab(hash_of(1))
    arr.fail_next = 2
    fails(arrd, 1)
    with ClockDriver(arrd.served.clock, step=0.5):
        lines.wait_for("arr_failure_reported")
    assert [r.status for r in arr.seen()] == [500, 500, 200, 200]
    assert arr.marked() == [grab]
    assert arrd.reporter.failed_tries == 2
    assert arrd.reporter.sent == 1
    assert lines.count("arr_history_refused") == 2


def test_a_category_without_an_arr_app_reports_nothing(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
) -> None:
    arrd = start(serve, tv(arr.url), CategoryOptions("movies"))
    for n in (1, 2, 3):
        arr.grab(hash_of(n))  # the app knows them all: only the category decides
    fails(arrd, 1, "movies")  # configured, no *arr app
    fails(arrd, 2, "misc")  # made by the add, unknown to the config
    assert arrd.served.daemon.app.state.qbit_face.login_arr is None
    # A failure that is reported, after the two in the worker's queue.
    fails(arrd, 3, "tv")
    with ClockDriver(arrd.served.clock, step=0.5):
        lines.wait_for("arr_failure_reported")
    assert [r.query.get("downloadId") for r in arr.seen("GET")] == [hash_of(3).upper()]
    assert arr.marked() == [arr.history[hash_of(3).upper()][0]["id"]]
    assert arrd.reporter.sent == 1 and arrd.reporter.failed_tries == 0
    book = arrd.served.daemon.app.state.qbit_face.book()
    assert reported(book, hash_of(1)) is None and reported(book, hash_of(2)) is None


def test_a_wrong_key_is_retried_then_given_up_and_later_failures_are_still_reported(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    arrd = start(serve, tv(arr.url, WRONG_KEY), tv(arr.url, API_KEY, "movies"), arr_tries=3)
    arr.grab(hash_of(1))
    movie = arr.grab(hash_of(2))
    fails(arrd, 1, "tv")
    with ClockDriver(arrd.served.clock, step=0.5):
        lines.wait_for("arr_failure_not_reported")
    refused = arr.seen()
    assert [(r.method, r.status) for r in refused] == [("GET", 401)] * 3
    assert all(r.headers["x-api-key"] == WRONG_KEY for r in refused)
    assert arrd.reporter.sent == 0 and arrd.reporter.failed_tries == 3
    assert arrd.reporter._thread is not None and arrd.reporter._thread.is_alive()
    book = arrd.served.daemon.app.state.qbit_face.book()
    assert reported(book, hash_of(1)) is None

    # The worker carries on: a failure of another category is reported.
    fails(arrd, 2, "movies")
    with ClockDriver(arrd.served.clock, step=0.5):
        lines.wait_for("arr_failure_reported")
    assert arr.marked() == [movie]
    assert arrd.reporter.sent == 1 and arrd.reporter.failed_tries == 3
    assert lines.count("arr_report_crashed") == 0
    assert reported(book, hash_of(2)) == 1
    no_secret_logged(caplog, capfd, WRONG_KEY, API_KEY)


def test_a_failure_given_up_is_reported_after_a_restart_with_the_right_key(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
) -> None:
    first = start(serve, tv(arr.url, WRONG_KEY), arr_tries=2)
    grab = arr.grab(hash_of(1))
    fails(first, 1)
    with ClockDriver(first.served.clock, step=0.5):
        lines.wait_for("arr_failure_not_reported")
    assert arr.marked() == []
    first.served.daemon.stop()
    first.served.engine.stop()

    again = start(serve, tv(arr.url, API_KEY), arr_tries=2)  # the config fixed
    with ClockDriver(again.served.clock, step=0.5):
        lines.wait_for("arr_failure_reported")
    assert arr.marked() == [grab]
    assert again.reporter.sent == 1
    book = again.served.daemon.app.state.qbit_face.book()
    assert reported(book, hash_of(1)) == 1


def test_a_new_attempt_that_fails_again_is_reported_again(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
) -> None:
    """Reported once per failed attempt: a retry that fails too is a new failure."""
    arrd = start(serve, tv(arr.url))
    grab = arr.grab(hash_of(1))
    hash_ = fails(arrd, 1)
    with ClockDriver(arrd.served.clock, step=0.5):
        lines.wait_for("arr_failure_reported")
    arrd.mock.inject("remote_fail", op="start_job", code="MOCK_FAILURE", at=JobStatus.RESOLVING)
    job = arrd.served.engine.retry_job(job_id(arrd, hash_))
    assert job.attempt == 2
    with ClockDriver(arrd.served.clock, step=0.5):
        ended = arrd.served.engine.wait(job.id, timeout=DEADLINE)
        assert (ended.status, ended.attempt) == (JobStatus.FAILED, 2)
        lines.wait_for("arr_failure_reported", 2)
    assert arr.marked() == [grab, grab]
    assert arrd.reporter.sent == 2
    book = arrd.served.daemon.app.state.qbit_face.book()
    assert reported(book, hash_) == 2


#: Regressions (found by this file): the reporter once wrote back, after the app
#: accepted, the copy of the item it read before its HTTP calls, undoing whatever
#: the client did meanwhile (tags, category, delete, re-add). It now sets only
#: ``reported_attempt``, and only while the item is still that job's.


def test_a_report_in_flight_keeps_what_the_client_changed_meanwhile(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
) -> None:
    """While the app is being told, Sonarr may still relabel the item (addTags,
    setCategory); marking the item reported must not undo that."""
    arrd = start(serve, tv(arr.url), CategoryOptions("tv-failed"))
    arr.grab(hash_of(1))
    arr.hold_posts = True
    hash_ = fails(arrd, 1)
    arr.wait_for(lambda: bool(arr.seen("POST")), "the POST")  # the report is in flight
    client = arrd.served.client
    assert client.post("/api/v2/torrents/addTags",
                       data={"hashes": hash_, "tags": "keep"}).status_code == 200
    assert client.post("/api/v2/torrents/setCategory",
                       data={"hashes": hash_, "category": "tv-failed"}).status_code == 200
    assert info(arrd, hash_)["tags"] == "keep"
    arr.release.set()
    lines.wait_for("arr_failure_reported")
    entry = info(arrd, hash_)
    assert (entry["tags"], entry["category"]) == ("keep", "tv-failed")


def test_an_item_deleted_while_its_report_is_in_flight_stays_deleted(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
) -> None:
    """Sonarr removes a failed download from the client (``torrents/delete``); if that
    comes while the report is in flight, the item must not come back in the book."""
    arrd = start(serve, tv(arr.url))
    arr.grab(hash_of(1))
    arr.hold_posts = True
    hash_ = fails(arrd, 1)
    arr.wait_for(lambda: bool(arr.seen("POST")), "the POST")
    client = arrd.served.client
    assert client.post("/api/v2/torrents/delete",
                       data={"hashes": hash_, "deleteFiles": "true"}).status_code == 200
    book = arrd.served.daemon.app.state.qbit_face.book()
    assert book.get([hash_]) == {}
    arr.release.set()
    lines.wait_for("arr_failure_reported")
    assert book.get([hash_]) == {}
    assert client.get("/api/v2/torrents/info").json() == []


def test_an_item_re_added_while_its_report_is_in_flight_stays_visible(
    serve: ServeFactory, arr: FakeArr, lines: Lines,
) -> None:
    """Deleted and added again (same hash, a new job) during the report: the new item
    must keep its new job, or it vanishes from ``torrents/info`` while its job runs."""
    arrd = start(serve, tv(arr.url))
    arr.grab(hash_of(1))
    arr.hold_posts = True
    hash_ = fails(arrd, 1)
    old_job = job_id(arrd, hash_)
    arr.wait_for(lambda: bool(arr.seen("POST")), "the POST")
    client = arrd.served.client
    assert client.post("/api/v2/torrents/delete",
                       data={"hashes": hash_, "deleteFiles": "false"}).status_code == 200
    assert add(arrd, 1, fail=False) == hash_
    new_job = job_id(arrd, hash_)
    assert new_job != old_job
    arr.release.set()
    lines.wait_for("arr_failure_reported")
    assert job_id(arrd, hash_) == new_job
    assert [t["hash"] for t in client.get("/api/v2/torrents/info").json()] == [hash_]
