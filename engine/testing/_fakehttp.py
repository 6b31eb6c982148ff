"""The machinery every fake provider server shares.

A ``FakeServer`` is a real HTTP/1.1 server on 127.0.0.1 (port 0 by default, so
the OS picks a free one) running in a background thread. Subclasses add routes;
this base adds what every fake needs: per-route request counters, fault
injection (5xx, hangs, connection resets, malformed JSON, HTML maintenance pages,
latency) by rate or by script, a sliding-window rate limiter on an injectable
clock, deterministic file bytes with Range support, and a small control API under
``/__fake__/`` for fakes started from the command line.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import attrs

from providers import Clock, RealClock
from providers._fileserve import FileKnobs, ServedFile, deterministic_bytes, send_file

__all__ = [
    "FakeFault",
    "FakeRequest",
    "FakeResponse",
    "FakeServer",
    "FaultKind",
    "RateWindow",
    "deterministic_bytes",
]

FaultKind = Literal["error_5xx", "hang", "reset", "malformed_json", "html", "latency"]

MAINTENANCE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1></body></html>"
)


@attrs.define
class FakeRequest:
    """One request as a route handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    route: str = ""
    params: dict[str, str] = attrs.field(factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str) -> str | None:
        """A header, case-insensitively."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON (raises ValueError when it is not)."""
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        """An ``application/x-www-form-urlencoded`` body, or the text fields of a multipart one."""
        ctype = self.header("content-type") or ""
        if ctype.startswith("multipart/form-data"):
            return {k: [v.decode("utf-8", "replace")] for k, v in self.multipart().items()}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def multipart(self) -> dict[str, bytes]:
        """The parts of a ``multipart/form-data`` body, by field name (raw bytes)."""
        ctype = self.header("content-type") or ""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body
        )
        parts: dict[str, bytes] = {}
        if not message.is_multipart():
            return parts
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                payload = part.get_payload(decode=True)
                parts[name] = payload if isinstance(payload, bytes) else b""
        return parts


@attrs.define
class FakeResponse:
    """What a handler returns: a status, a body (JSON value or bytes) and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)
    raw: bool = False  # body is bytes to send as they are
    #: A file to stream instead of ``body`` (Range, If-Range, ETag: ``send_file``).
    stream: ServedFile | None = None

    @classmethod
    def json(cls, body: Any, status: int = 200, **headers: str) -> FakeResponse:
        """A JSON answer."""
        return cls(status, body, dict(headers))

    @classmethod
    def empty(cls, status: int = 204, **headers: str) -> FakeResponse:
        """No body."""
        return cls(status, b"", dict(headers), raw=True)


@attrs.define
class FakeFault:
    """A scripted fault: the next ``count`` requests to ``route`` (any when None) get ``kind``."""

    kind: FaultKind
    route: str | None = None
    count: int = 1
    status: int = 503
    seconds: float = 0.0


class RateWindow:
    """Counts requests in a sliding window on a clock; refuses past ``limit``."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def hit(self, *, count_refused: bool = True) -> float | None:
        """Record a request; None when allowed, else seconds until the window frees a place."""
        with self._lock:
            now = self._clock.monotonic()
            while self._hits and self._hits[0] <= now - self.window:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                wait = self._hits[0] + self.window - now
                if count_refused:
                    self._hits.append(now)
                return max(wait, 0.001)
            self._hits.append(now)
            return None


Handler = Callable[[FakeRequest], FakeResponse]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with routes, counters and faults."""

    #: Name used in log lines and the control API.
    kind = "fake"

    def __init__(self, *, port: int = 0, clock: Clock | None = None, seed: int = 0) -> None:
        self.clock: Clock = clock or RealClock()
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._lock = threading.RLock()
        self._random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.fault_rates: dict[FaultKind, float] = {}
        self._scripted: list[FakeFault] = []
        self.hang_seconds = 5.0
        self.latency_seconds = 0.0
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        #: How the fake's file downloads misbehave (ignore Range, cut, stall, throttle).
        self.file_knobs = FileKnobs()
        self._file_versions: Counter[str] = Counter()
        self._served: Counter[str] = Counter()
        self._stalls = threading.Condition()
        self._stall_generation = 0
        self.route("GET", "/__fake__/stats", "fake_stats", self._control_stats)
        self.route("POST", "/__fake__/faults", "fake_faults", self._control_faults)

    # -- setup ---------------------------------------------------------------
    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        """Add a route; ``pattern`` is a path with ``{param}`` placeholders."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), name, handler))

    def set_fault_rate(self, kind: FaultKind, rate: float) -> None:
        """Give each request a ``rate`` (0-1) chance of ``kind``."""
        with self._lock:
            self.fault_rates[kind] = rate

    def inject(self, kind: FaultKind, route: str | None = None, **options: Any) -> FakeFault:
        """Script a fault for the next matching request(s)."""
        fault = FakeFault(kind=kind, route=route, **options)
        with self._lock:
            self._scripted.append(fault)
        return fault

    def clear_faults(self) -> None:
        """No more faults, scripted or by rate."""
        with self._lock:
            self._scripted.clear()
            self.fault_rates.clear()

    # -- lifecycle -----------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the server listens on (after ``start``)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        """Bind and serve in a background thread."""
        server = self

        class _Handler(_RequestHandler):
            fake = server

        httpd = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.kind}-fake-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._closing.set()
        self.release_stalls()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch ------------------------------------------------------------
    def before(self, request: FakeRequest) -> FakeResponse | None:
        """Hook for subclasses (auth, rate limits) run before the route; None to go on."""
        return None

    def dispatch(self, request: FakeRequest) -> tuple[FakeResponse | None, FakeFault | None]:
        """Find the route, apply faults, call the handler."""
        handler: Handler | None = None
        allowed = False
        for method, regex, name, candidate in self._routes:
            match = regex.match(request.path)
            if match:
                allowed = True
                if method == request.method:
                    handler, request.route, request.params = candidate, name, match.groupdict()
                    break
        with self._lock:
            self.counts[request.route or "unmatched"] += 1
            self.counts["total"] += 1
        if not request.route.startswith("fake_"):
            fault = self._pick_fault(request.route)
            if fault is not None:
                return None, fault
        if handler is None:
            return self.not_found(request, method_not_allowed=allowed), None
        early = None if request.route.startswith("fake_") else self.before(request)
        return (early or handler(request)), None

    def not_found(self, request: FakeRequest, *, method_not_allowed: bool) -> FakeResponse:
        """The answer for an unknown path (subclasses speak their API's dialect)."""
        status = 405 if method_not_allowed else 404
        return FakeResponse.json({"error": HTTPStatus(status).phrase}, status)

    def _pick_fault(self, route: str) -> FakeFault | None:
        with self._lock:
            for fault in self._scripted:
                if fault.route is None or fault.route == route:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._scripted.remove(fault)
                    return fault
            for kind, rate in self.fault_rates.items():
                if rate > 0 and self._random.random() < rate:
                    return FakeFault(kind=kind, status=503, seconds=self.latency_seconds)
        return None

    # -- control API ---------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Request counters by route."""
        with self._lock:
            return {"counts": dict(self.counts)}

    def _control_stats(self, request: FakeRequest) -> FakeResponse:
        return FakeResponse.json(self.stats())

    def _control_faults(self, request: FakeRequest) -> FakeResponse:
        try:
            body = request.json()
            for kind, rate in (body.get("rates") or {}).items():
                self.set_fault_rate(kind, float(rate))
            for item in body.get("script") or []:
                self.inject(**item)
            if body.get("clear"):
                self.clear_faults()
        except (ValueError, TypeError, AttributeError) as exc:
            return FakeResponse.json({"error": f"bad fault request: {exc}"}, 400)
        return FakeResponse.json({"ok": True})

    # -- helpers for subclasses ---------------------------------------------
    def serve_bytes(self, request: FakeRequest, seed: str, size: int, **headers: str
                    ) -> FakeResponse:
        """The file of ``seed`` (``size`` bytes), streamed as download servers do:
        Range, If-Range, ETag and Last-Modified, under ``file_knobs``."""
        del request  # read by the handler, which streams the answer
        file = ServedFile(seed, size, seed, version=self._file_versions[seed])
        return FakeResponse(200, None, dict(headers), raw=True, stream=file)

    def change_file(self, seed: str) -> None:
        """The file of ``seed`` changes on the server: other bytes, ETag and date."""
        with self._lock:
            self._file_versions[seed] += 1

    def served_bytes(self, seed: str | None = None) -> int:
        """Body bytes of files sent so far (of one seed, or of all)."""
        with self._lock:
            return self._served[seed] if seed is not None else sum(self._served.values())

    def release_stalls(self) -> None:
        """End every download held by ``file_knobs.stall_after`` (the connection is cut)."""
        with self._stalls:
            self._stall_generation += 1
            self._stalls.notify_all()

    def _count_served(self, seed: str, n: int) -> None:
        with self._lock:
            self._served[seed] += n


class _RequestHandler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the client's
    # delayed ACK adds ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = FakeRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response, fault = self.fake.dispatch(request)
        if fault is not None:
            self._apply_fault(fault, request)
            return
        assert response is not None
        self._send(response)

    def _apply_fault(self, fault: FakeFault, request: FakeRequest) -> None:
        if fault.kind == "reset":
            # SO_LINGER 0 makes close() send RST: the client sees a reset, not an EOF.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.close_connection = True
            self.connection.close()
            return
        if fault.kind == "hang":
            self.fake._closing.wait(fault.seconds or self.fake.hang_seconds)
            self.close_connection = True
            return
        if fault.kind == "latency":
            time.sleep(fault.seconds or self.fake.latency_seconds)
            response, _ = self.fake.dispatch(request)
            assert response is not None
            self._send(response)
            return
        if fault.kind == "malformed_json":
            self._send(
                FakeResponse(200, b'{"id": "trunc', {"Content-Type": "application/json"}, True)
            )
            return
        if fault.kind == "html":
            self._send(
                FakeResponse(fault.status, MAINTENANCE_PAGE, {"Content-Type": "text/html"}, True)
            )
            return
        self._send(FakeResponse.json({"error": "internal server error"}, fault.status or 503))

    def _send(self, response: FakeResponse) -> None:
        if response.stream is not None:
            fake, file = self.fake, response.stream
            send_file(
                self, file, fake.file_knobs,
                on_bytes=lambda n: fake._count_served(file.seed, n),
                stalls=fake._stalls,
                stall_generation=lambda: fake._stall_generation,
                headers=response.headers,
            )
            return
        if response.raw:
            data = response.body if isinstance(response.body, bytes) else b""
        else:
            data = json.dumps(response.body).encode()
            response.headers.setdefault("Content-Type", "application/json")
        head_only = self.command == "HEAD"
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        # A handler may set it itself: a HEAD answer has no body but the real length.
        if response.status not in (204, 304) and "Content-Length" not in response.headers:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head_only and response.status not in (204, 304):
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle  # noqa: N815 (http.server names)
