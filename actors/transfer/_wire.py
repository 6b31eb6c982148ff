"""A body read straight from the socket into the file: the fast path of a fetch.

httpx hands a body over in 64 KiB pieces, each through h11, httpcore and
httpx's own layers: on loopback that costs about half of a transfer's time in
Python. A ``Wire`` sends one GET on a connection of its own, lets h11 parse the
status line and the headers, takes the body bytes h11 already holds, and reads
the rest with ``recv_into`` into one reused buffer (``_BUFFER``), which the
fetch writes with ``os.pwrite``: one system call in, one out, per buffer.

Only a plain body is read that way: one with a ``Content-Length``, or one that
ends with the connection. A chunked body goes through h11 event by event
(correct, only slower). A redirect is not followed here: the caller fetches
that URL with httpx instead. Network failures raise httpx's own exceptions, so
that a broken connection is never mistaken for a local write error.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence

import h11
import httpx

__all__ = ["Wire", "WireAnswer"]

#: Bytes one ``recv_into`` may fill (one buffer per connection).
_BUFFER = 1 << 20
#: Bytes asked of the socket while the head is parsed.
_HEAD_READ = 1 << 16
#: A head bigger than this is refused (h11 keeps it in memory until it ends).
_HEAD_MAX = 1 << 16
_USER_AGENT = "debrid-engine"


class Wire:
    """Opens one connection per fetch (``Connection: close``) and reads its body raw."""

    @staticmethod
    def handles(url: str) -> bool:
        """True for a plain http(s) URL; one with credentials in it goes through httpx."""
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        return target.scheme in ("http", "https") and not target.userinfo

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._ssl_context = ssl_context

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:  # httpx's own default: certifi, no environment
            self._ssl_context = httpx.create_ssl_context(trust_env=False)
        return self._ssl_context

    @contextlib.contextmanager
    def get(
        self, url: str, headers: dict[str, str], on_socket: Callable[[socket.socket], None]
    ) -> Iterator[WireAnswer]:
        """Send ``GET url`` with ``headers``; the answer once its head has arrived.

        ``on_socket`` gets the socket as soon as it is connected (an abort can then
        wake a read that waits for the head)."""
        target = httpx.URL(url)
        if target.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"the URL's scheme is {target.scheme!r}")
        port = target.port or (443 if target.scheme == "https" else 80)
        # The IDNA-encoded host (as httpx sends it), never the Unicode form.
        hostname = target.raw_host.decode("ascii")
        sock = _connect(hostname, port, self.connect_timeout)
        try:
            if target.scheme == "https":
                try:
                    sock = self._tls().wrap_socket(sock, server_hostname=hostname)
                except (OSError, ssl.SSLError) as exc:
                    raise httpx.ConnectError(f"TLS with {hostname}: {exc}") from exc
            sock.settimeout(self.read_timeout)
            on_socket(sock)
            host = target.netloc.decode("ascii")  # IPv6 in brackets, the port if any
            fields = [("Host", host), ("User-Agent", _USER_AGENT), ("Connection", "close"),
                      *headers.items()]  # fmt: skip
            answer = WireAnswer(sock, target.raw_path, fields)
            yield answer
        finally:
            with contextlib.suppress(OSError):
                sock.close()


class WireAnswer:
    """The answer to one GET: status, headers, and its body read into a buffer."""

    def __init__(self, sock: socket.socket, path: bytes, fields: Sequence[tuple[str, str]]) -> None:
        self.socket = sock
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_HEAD_MAX)
        request = h11.Request(method="GET", target=path, headers=list(fields))
        _send(sock, (self._h11.send(request) or b"") + (self._h11.send(h11.EndOfMessage()) or b""))
        response = self._head()
        self.status_code: int = response.status_code
        # Bytes pairs, decoded by httpx as its own responses are (a raw UTF-8 file
        # name in Content-Disposition must not break a fetch; validators compare
        # equal to the probe's).
        self.headers = httpx.Headers(list(response.headers.raw_items()))
        self._held: list[bytes] = []  # body bytes h11 read along with the head
        self._ended = False
        self._raw = "transfer-encoding" not in self.headers
        self._left: int | None = None
        if self._raw:
            length = self.headers.get("content-length", "")
            self._left = int(length) if length.strip().isdigit() else None
            if self.status_code in (204, 304):
                self._left = 0
            self._drain_held()
            if self._left is not None:
                self._left -= sum(len(piece) for piece in self._held)
                if self._left < 0:  # more than announced arrived with the head
                    raise httpx.RemoteProtocolError("the body is longer than its Content-Length")

    def _head(self) -> h11.Response:
        while True:
            event = self._next()
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.InformationalResponse):
                continue
            raise httpx.RemoteProtocolError(f"no response head: {type(event).__name__}")

    def _event(self) -> object:
        """h11's next event from what it holds (``NEED_DATA`` when that is all)."""
        try:
            return self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc

    def _next(self) -> object:
        """The next h11 event, reading from the socket as needed."""
        while (event := self._event()) is h11.NEED_DATA:
            self._h11.receive_data(_recv(self.socket, _HEAD_READ))
        return event

    def _drain_held(self) -> None:
        """Take the body bytes h11 already buffered, without reading the socket."""
        while True:
            event = self._event()
            if isinstance(event, h11.Data):
                self._held.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._ended = True
                return
            else:
                return

    def read_into(self, buffer: memoryview) -> int:
        """Fill the start of ``buffer`` with the next body bytes; 0 once the body ended."""
        if self._held:
            piece = self._held[0]
            n = min(len(piece), len(buffer))
            buffer[:n] = piece[:n]
            if n == len(piece):
                self._held.pop(0)
            else:
                self._held[0] = piece[n:]
            return n
        if self._raw:
            if self._left == 0 or self._ended:
                return 0
            want = len(buffer) if self._left is None else min(len(buffer), self._left)
            n = _recv_into(self.socket, buffer, want)
            if n == 0:
                self._ended = True
                return 0
            if self._left is not None:
                self._left -= n
            return n
        while not self._held and not self._ended:  # a chunked body: through h11
            event = self._next()
            if isinstance(event, h11.Data):
                self._held.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._ended = True
        return self.read_into(buffer) if self._held else 0

    def chunks(self, size: int | None, *, fresh: bool) -> Iterator[memoryview | bytes]:
        """The body in pieces of at most ``size`` bytes (``_BUFFER`` when None).

        A piece is a view of one reused buffer, valid until the next one is asked
        for; with ``fresh`` every piece is bytes of its own (kept by a hasher)."""
        buffer = memoryview(bytearray(min(size or _BUFFER, _BUFFER)))
        while n := self.read_into(buffer):
            yield bytes(buffer[:n]) if fresh else buffer[:n]

    def excerpt(self, limit: int) -> bytes:
        """The first ``limit`` bytes of the body (an error page, for the log)."""
        taken = bytearray()
        buffer = memoryview(bytearray(limit))
        with contextlib.suppress(httpx.HTTPError):
            while len(taken) < limit and (n := self.read_into(buffer[: limit - len(taken)])):
                taken += buffer[:n]
        return bytes(taken)


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as exc:
        raise httpx.ConnectTimeout(f"connecting to {host}:{port}: {exc}") from exc
    except OSError as exc:
        raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except TimeoutError as exc:
        raise httpx.WriteTimeout(str(exc)) from exc
    except OSError as exc:
        raise httpx.WriteError(str(exc)) from exc


def _recv(sock: socket.socket, n: int) -> bytes:
    try:
        return sock.recv(n)
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc)) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc)) from exc


def _recv_into(sock: socket.socket, buffer: memoryview, n: int) -> int:
    try:
        return sock.recv_into(buffer, n)
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc)) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc)) from exc
