"""The raw body path (``transfer._wire``): the same bytes and outcomes as httpx, faster.

Every body shape a server may send is read the way the fetch needs it: with a
Content-Length (part of it arriving with the head), chunked (through h11),
ended by the connection's close, cut short; a redirect goes to httpx; an error
page gives its excerpt; a server that never answers is woken by an abort; TLS
works with the context it is given.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from actors._download import DownloadSettings
from actors.transfer import (
    Abort,
    AbortReason,
    FetchOutcome,
    FetchResult,
    Md5Progress,
    Wire,
    fetch_range,
    open_part,
)
from actors.transfer import _wire as _wire_module
from providers._fileserve import FileServer, ServedFile

KiB = 1024


def _wire() -> Wire:
    return Wire(connect_timeout=5.0, read_timeout=5.0)


def _fetch(
    url: str,
    tmp_path: Path,
    size: int,
    *,
    wire: Wire | None,
    start: int = 0,
    ranged: bool = False,
    abort: Abort | None = None,
    hasher: Md5Progress | None = None,
) -> tuple[FetchResult, bytes]:
    part = tmp_path / "f.part"
    fd = open_part(part, size)
    try:
        with httpx.Client(trust_env=False, follow_redirects=True) as client:
            result = fetch_range(
                client, url, start, size, fd=fd, validator=None, ranged=ranged,
                on_data=lambda offset, n: None, bandwidth_take=lambda n: True,
                checkpoint=lambda upto: None, checkpoint_bytes=1 << 30,
                abort=abort or Abort(), chunk_size=None, hasher=hasher, wire=wire,
            )  # fmt: skip
    finally:
        os.close(fd)
    return result, part.read_bytes()


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server
        server.release_stalls()


@pytest.mark.parametrize("size", [1, 700, 64 * KiB + 3, 3 * 1024 * KiB + 17])
def test_a_body_with_a_length_lands_byte_identical(
    server: FileServer, tmp_path: Path, size: int
) -> None:
    file = ServedFile("f.bin", size, f"wire-{size}")
    result, data = _fetch(server.add(file), tmp_path, size, wire=_wire())
    assert result.outcome is FetchOutcome.DONE and result.offset == size
    assert data == file.content()


def test_a_range_is_asked_and_written_at_its_offset(server: FileServer, tmp_path: Path) -> None:
    file = ServedFile("f.bin", 300 * KiB, "wire-range")
    result, data = _fetch(server.add(file), tmp_path, file.size, wire=_wire(),
                          start=100 * KiB, ranged=True)  # fmt: skip
    assert result.outcome is FetchOutcome.DONE
    assert data[100 * KiB :] == file.content(100 * KiB)
    assert data[: 100 * KiB] == bytes(100 * KiB)  # nothing written before the range
    assert server.requests[-1].range == f"bytes={100 * KiB}-{file.size - 1}"


def test_a_cut_body_is_a_cut_at_the_offset_reached(server: FileServer, tmp_path: Path) -> None:
    file = ServedFile("f.bin", 2 * 1024 * KiB, "wire-cut")
    server.knobs.cut_after = 700 * KiB
    result, data = _fetch(server.add(file), tmp_path, file.size, wire=_wire())
    assert result.outcome is FetchOutcome.CUT and result.reason == "the body ended early"
    assert result.offset == 700 * KiB
    assert data[: result.offset] == file.content(0, result.offset)


def test_a_refused_connection_is_a_cut_not_a_write_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    result, _ = _fetch(f"http://127.0.0.1:{port}/f", tmp_path, 10, wire=_wire())
    assert result.outcome is FetchOutcome.CUT and "ConnectError" in result.reason


def test_an_md5_fed_from_the_wire_matches(server: FileServer, tmp_path: Path) -> None:
    file = ServedFile("f.bin", 5 * 1024 * KiB + 9, "wire-md5")
    hasher = Md5Progress(tmp_path / "f.part")
    result, _ = _fetch(server.add(file), tmp_path, file.size, wire=_wire(), hasher=hasher)
    assert result.outcome is FetchOutcome.DONE
    assert hasher.hexdigest() == file.md5  # pieces were copied out of the reused buffer


# --------------------------------------------------------------------------- hand-made servers


class OneShot:
    """Answers each connection on 127.0.0.1 with ``answer(request_head, conn)``."""

    def __init__(self, answer: Callable[[bytes, socket.socket], None]) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.heads: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    piece = conn.recv(4096)
                    if not piece:
                        break
                    head += piece
                self.heads.append(head)
                with contextlib.suppress(OSError):
                    self.answer(head, conn)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def oneshot() -> Iterator[Callable[[Callable[[bytes, socket.socket], None]], OneShot]]:
    made: list[OneShot] = []

    def make(answer: Callable[[bytes, socket.socket], None]) -> OneShot:
        made.append(OneShot(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_chunked_body_goes_through_h11(oneshot: Callable[..., OneShot], tmp_path: Path) -> None:
    body = os.urandom(200 * KiB)

    def answer(head: bytes, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 30_000):
            piece = body[i : i + 30_000]
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.sendall(b"0\r\n\r\n")

    server = oneshot(answer)
    result, data = _fetch(f"http://127.0.0.1:{server.port}/c", tmp_path, len(body), wire=_wire())
    assert result.outcome is FetchOutcome.DONE and data == body
    assert b"connection: close" in server.heads[0].lower()


def test_a_body_ended_by_the_close_is_read_to_the_end(
    oneshot: Callable[..., OneShot], tmp_path: Path
) -> None:
    body = os.urandom(150 * KiB)

    def answer(head: bytes, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)

    server = oneshot(answer)
    result, data = _fetch(f"http://127.0.0.1:{server.port}/e", tmp_path, len(body), wire=_wire())
    assert result.outcome is FetchOutcome.DONE and data == body


def test_a_redirect_is_followed_by_httpx(
    server: FileServer, oneshot: Callable[..., OneShot], tmp_path: Path
) -> None:
    file = ServedFile("f.bin", 90 * KiB, "wire-redirect")
    target = server.add(file)

    def answer(head: bytes, conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n"
                     .encode())  # fmt: skip

    hop = oneshot(answer)
    result, data = _fetch(f"http://127.0.0.1:{hop.port}/r", tmp_path, file.size, wire=_wire())
    assert result.outcome is FetchOutcome.DONE and data == file.content()
    assert len(hop.heads) == 2  # the wire's request, then httpx's (which followed it)


def test_an_error_page_gives_its_excerpt_and_the_link_is_gone(
    oneshot: Callable[..., OneShot], tmp_path: Path
) -> None:
    page = b'{"error": "Invalid Presigned Token"}' + b" " * 2000

    def answer(head: bytes, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page))

    server = oneshot(answer)
    result, _ = _fetch(f"http://127.0.0.1:{server.port}/x", tmp_path, 10, wire=_wire())
    assert result.outcome is FetchOutcome.LINK_EXPIRED and result.http_status == 403
    assert "Invalid Presigned Token" in result.reason and len(result.reason) < 600


def test_a_body_longer_than_announced_with_the_head_is_a_cut(
    oneshot: Callable[..., OneShot], tmp_path: Path
) -> None:
    def answer(head: bytes, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef")

    server = oneshot(answer)
    result, _ = _fetch(f"http://127.0.0.1:{server.port}/l", tmp_path, 3, wire=_wire())
    # h11 hands over only the announced bytes: the three extra ones are never written.
    assert result.outcome is FetchOutcome.DONE
    assert (tmp_path / "f.part").read_bytes() == b"abc"


def test_an_abort_wakes_a_fetch_whose_answer_never_comes(
    oneshot: Callable[..., OneShot], tmp_path: Path
) -> None:
    release = threading.Event()

    def answer(head: bytes, conn: socket.socket) -> None:
        release.wait(30)  # says nothing at all

    server = oneshot(answer)
    abort = Abort()
    outcome: list[FetchResult] = []
    worker = threading.Thread(target=lambda: outcome.append(
        _fetch(f"http://127.0.0.1:{server.port}/s", tmp_path, 10, wire=_wire(),
               abort=abort)[0]))  # fmt: skip
    worker.start()
    deadline = time.monotonic() + 10
    while not server.heads and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # the request is in: the fetch waits for the head
    abort.trigger(AbortReason.CANCEL)
    worker.join(2.0)
    release.set()
    assert not worker.is_alive(), "the abort did not wake the read of the head"
    assert outcome[0].outcome is FetchOutcome.CANCELLED


@contextlib.contextmanager
def _tls_server(tmp_path: Path, body: bytes) -> Iterator[tuple[int, ssl.SSLContext]]:
    """A TLS server on 127.0.0.1 that sends ``body`` once to one client, with a
    certificate made for the test; the port and a client context that trusts it."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert)]  # fmt: skip
    made = subprocess.run(argv, capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-300:]!r}")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            head = b""
            while b"\r\n\r\n" not in head:
                head += tls.recv(4096)
            with contextlib.suppress(OSError):  # a client that aborts hangs up
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            done.wait(5)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1], ssl.create_default_context(cafile=str(cert))
    finally:
        done.set()
        listener.close()


def test_tls_with_the_given_context(tmp_path: Path) -> None:
    body = os.urandom(120 * KiB)
    with _tls_server(tmp_path, body) as (port, client_ctx):
        wire = Wire(connect_timeout=5.0, read_timeout=5.0, ssl_context=client_ctx)
        result, data = _fetch(f"https://127.0.0.1:{port}/t", tmp_path, len(body), wire=wire)
    assert result.outcome is FetchOutcome.DONE and data == body


def test_the_wire_is_off_when_asked_or_when_a_client_is_injected() -> None:
    assert isinstance(DownloadSettings().wire(), Wire)
    assert DownloadSettings(raw_sockets=False).wire() is None
    own = DownloadSettings(client_factory=lambda s: httpx.Client(trust_env=False))
    assert own.wire() is None  # an injected client sees every request


def test_a_raw_utf8_header_does_not_break_the_fetch(
    oneshot: Callable[..., OneShot], tmp_path: Path
) -> None:
    body = b"x" * 1000

    def answer(head: bytes, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n"
                     b'Content-Disposition: attachment; filename="caf\xc3\xa9.mkv"\r\n'
                     b'ETag: "e1"\r\nContent-Length: 1000\r\n\r\n' + body)  # fmt: skip

    server = oneshot(answer)
    result, data = _fetch(f"http://127.0.0.1:{server.port}/u", tmp_path, len(body), wire=_wire())
    assert result.outcome is FetchOutcome.DONE and data == body


def test_the_host_goes_out_idna_encoded(
    oneshot: Callable[..., OneShot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Unicode host is looked up and sent as httpx sends it (punycode)."""
    server = oneshot(lambda head, conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                                     b"\r\nabc"))  # fmt: skip
    looked_up: list[str] = []
    real = _wire_module._connect

    def connect(host: str, port: int, timeout: float) -> socket.socket:
        looked_up.append(host)
        return real("127.0.0.1", server.port, timeout)  # (the name does not resolve here)

    monkeypatch.setattr(_wire_module, "_connect", connect)
    result, data = _fetch("http://bücher.example:8080/a?b=1", tmp_path, 3, wire=_wire())
    assert result.outcome is FetchOutcome.DONE and data == b"abc"
    assert looked_up == ["xn--bcher-kva.example"]
    head = server.heads[0].decode("ascii")
    assert head.startswith("GET /a?b=1 HTTP/1.1\r\n")
    assert "host: xn--bcher-kva.example:8080\r\n" in head.lower()


def test_credentials_in_the_url_go_through_httpx() -> None:
    assert not Wire.handles("http://user:secret@127.0.0.1/f")
    assert not Wire.handles("ftp://127.0.0.1/f")
    assert Wire.handles("https://127.0.0.1:8443/f?token=x")


def test_an_abort_before_the_fetch_opens_no_connection(
    oneshot: Callable[..., OneShot], tmp_path: Path
) -> None:
    server = oneshot(lambda head, conn: None)
    abort = Abort()
    abort.trigger(AbortReason.CANCEL)
    result, _ = _fetch(f"http://127.0.0.1:{server.port}/n", tmp_path, 10, wire=_wire(),
                       abort=abort)  # fmt: skip
    assert result.outcome is FetchOutcome.CANCELLED
    assert server.heads == []


@pytest.mark.parametrize("use_wire", [True, False], ids=["wire", "httpx"])
def test_an_abort_mid_body_over_tls_writes_no_ciphertext(tmp_path: Path, use_wire: bool) -> None:
    """``SSLSocket.shutdown`` drops the TLS state: a read after it handed over the raw
    records still queued, which were written to the file as if they were the body."""
    body = os.urandom(4096 * KiB)
    abort = Abort()
    takes: list[int] = []

    def take(n: int) -> bool:
        takes.append(n)
        if len(takes) == 1:  # the actor's abort lands right after the worker's own check
            threading.Event().wait(0.2)  # the kernel queues more records meanwhile
            abort.trigger(AbortReason.STOP)
        return True

    part = tmp_path / "f.part"
    fd = open_part(part, len(body))
    try:
        with _tls_server(tmp_path, body) as (port, client_ctx), \
                httpx.Client(trust_env=False, verify=client_ctx) as client:  # fmt: skip
            wire = Wire(connect_timeout=5.0, read_timeout=5.0, ssl_context=client_ctx) \
                if use_wire else None  # fmt: skip
            result = fetch_range(
                client, f"https://127.0.0.1:{port}/t", 0, len(body), fd=fd, validator=None,
                ranged=False, on_data=lambda offset, n: None, bandwidth_take=take,
                checkpoint=lambda upto: None, checkpoint_bytes=1 << 30, abort=abort,
                chunk_size=None, wire=wire,
            )  # fmt: skip
    finally:
        os.close(fd)
    assert result.outcome is FetchOutcome.CANCELLED
    assert part.read_bytes()[: result.offset] == body[: result.offset]
