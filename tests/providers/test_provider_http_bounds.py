"""ProviderHttp over real sockets: every request ends by its deadline, every answer is
read up to a cap, every body that does not parse is a retryable ProviderError."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import FakeClock, ProviderContext, ProviderError
from providers._http import LONGEST_HINT, ProviderHttp, json_body, parse_retry_after

Script = Callable[[socket.socket], None]


class RawServer:
    """A TCP server on 127.0.0.1 that answers each connection with ``script``
    (raw bytes, at whatever pace the script likes)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                _read_request(conn)
                self.script(conn)
            except OSError:
                pass  # the client gave up: what the tests want

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(5)


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


@pytest.fixture
def serve() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        server = RawServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def http_for(server: RawServer, *, timeout: float = 1.0, max_body: int = 1 << 20) -> ProviderHttp:
    ctx = ProviderContext(clock=FakeClock(), limiters={}, blocking=False)
    return ProviderHttp(
        "test",
        f"http://127.0.0.1:{server.port}",
        context=lambda: ctx,
        timeout=timeout,
        max_body=max_body,
    )


def head(length: int | None = None, extra: str = "") -> bytes:
    sized = f"Content-Length: {length}\r\n" if length is not None else ""
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{sized}{extra}\r\n".encode()


def trickle_body(conn: socket.socket) -> None:
    conn.sendall(head(1000))
    for _ in range(1000):
        conn.sendall(b" ")
        time.sleep(0.05)  # the server's pace, not the test waiting for progress


def trickle_headers(conn: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


@pytest.mark.parametrize("script", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_trickling_server_cannot_hold_a_request_past_its_deadline(
    serve: Callable[[Script], RawServer], script: Script
) -> None:
    """Each read comes well within the per-read timeout; the whole exchange may not."""
    http = http_for(serve(script), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ProviderError) as failure:
        http.request("GET", "/slow", authenticated=False)
    took = time.monotonic() - started
    assert failure.value.code == "TIMEOUT"
    assert failure.value.retryable
    # Not a speed target: without the deadline the exchange lasts the server's 50 s.
    assert took < 10.0, f"took {took:.1f} s against a 1 s deadline"
    http.close()


def test_an_answer_past_the_cap_is_a_retryable_bad_response(
    serve: Callable[[Script], RawServer],
) -> None:
    def endless(conn: socket.socket) -> None:
        conn.sendall(head(extra="Transfer-Encoding: chunked\r\n"))
        chunk = b"[" + b"0," * 32_000 + b"0]"
        while True:
            conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")

    http = http_for(serve(endless), timeout=5.0, max_body=256 * 1024)
    with pytest.raises(ProviderError) as failure:
        http.request("GET", "/huge", authenticated=False)
    assert failure.value.code == "BAD_RESPONSE"
    assert failure.value.retryable
    assert "over 262144 bytes" in failure.value.message
    http.close()


def test_the_cap_counts_decoded_bytes_so_a_gzip_bomb_is_cut(
    serve: Callable[[Script], RawServer],
) -> None:
    bomb = gzip.compress(b"0" * (8 << 20))  # about 8 KB on the wire, 8 MB decoded

    def send(conn: socket.socket) -> None:
        conn.sendall(head(len(bomb), "Content-Encoding: gzip\r\n") + bomb)

    http = http_for(serve(send), timeout=5.0, max_body=1 << 20)
    with pytest.raises(ProviderError) as failure:
        http.request("GET", "/bomb", authenticated=False)
    assert failure.value.code == "BAD_RESPONSE"
    http.close()


def test_an_answer_within_the_cap_is_read_whole_and_decoded(
    serve: Callable[[Script], RawServer],
) -> None:
    payload = b'{"ok": true, "pad": "' + b"x" * 100_000 + b'"}'
    packed = gzip.compress(payload)

    def send(conn: socket.socket) -> None:
        conn.sendall(head(len(packed), "Content-Encoding: gzip\r\nETag: \"v1\"\r\n") + packed)

    http = http_for(serve(send), timeout=5.0, max_body=1 << 20)
    response = http.request("GET", "/fine", authenticated=False)
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers["ETag"] == '"v1"'
    assert "content-encoding" not in response.headers  # the body is decoded now
    assert json_body(response, "test")["ok"] is True
    http.close()


def test_requests_after_a_deadline_passed_get_a_fresh_one(
    serve: Callable[[Script], RawServer],
) -> None:
    """The deadline belongs to one request: a slow one does not doom the next."""
    calls = {"n": 0}

    def first_slow(conn: socket.socket) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            trickle_body(conn)
            return
        conn.sendall(head(2) + b"{}")

    http = http_for(serve(first_slow), timeout=1.0)
    with pytest.raises(ProviderError):
        http.request("GET", "/a", authenticated=False)
    assert http.request("GET", "/b", authenticated=False).content == b"{}"
    http.close()


# -- bodies that do not parse ---------------------------------------------------------
def answer(status: int, body: bytes) -> httpx.Response:
    return httpx.Response(status, content=body, request=httpx.Request("GET", "http://x.invalid/p"))


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,  # RecursionError in the parser
        b"1" * 5_000,  # past the interpreter's digit limit: ValueError
        b"\xff\xfe{}",  # not UTF-8
        b"<html>maintenance</html>",
        b"",
    ],
    ids=["deep", "digits", "encoding", "html", "empty"],
)
def test_a_success_answer_that_does_not_parse_is_a_retryable_bad_response(body: bytes) -> None:
    with pytest.raises(ProviderError) as failure:
        json_body(answer(200, body), "test")
    assert failure.value.code == "BAD_RESPONSE"
    assert failure.value.retryable


def test_an_error_answer_that_does_not_parse_is_the_service_being_unavailable() -> None:
    with pytest.raises(ProviderError) as failure:
        json_body(answer(503, b"<html>maintenance</html>"), "test")
    assert failure.value.code == "PROVIDER_UNAVAILABLE"
    assert failure.value.http_status == 503


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from([200, 201, 400, 403, 404, 429, 500, 503]))
def test_any_body_gives_json_or_a_provider_error(body: bytes, status: int) -> None:
    try:
        json_body(answer(status, body), "test")
    except ProviderError as error:
        assert error.retryable


# -- Retry-After --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 2.5 ", 2.5),
        ("-5", 0.0),
        ("1e400", LONGEST_HINT),
        ("inf", LONGEST_HINT),
        ("-inf", 0.0),
        ("99999999", LONGEST_HINT),
        ("nan", None),
        ("soon", None),
        ("", None),
        ("Thu, 01 Jan 1970 00:00:30 GMT", 0.0),  # in the past
        ("Fri, 31 Dec 9999 23:59:59 GMT", LONGEST_HINT),
        ("Thu, 01 Jan 1970 00:02:00 GMT", 60.0),
    ],
)
def test_retry_after_is_finite_and_within_bounds(header: str, expected: float | None) -> None:
    assert parse_retry_after(header, now_epoch=60.0) == expected


@given(st.text(max_size=40))
def test_retry_after_never_raises_and_is_never_out_of_bounds(header: str) -> None:
    seconds = parse_retry_after(header, now_epoch=1_700_000_000.0)
    assert seconds is None or 0.0 <= seconds <= LONGEST_HINT
