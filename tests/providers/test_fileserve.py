"""The shared file server: Range, If-Range, HEAD, 416, and the knobs that make it misbehave."""

from __future__ import annotations

import email.utils
import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest

from engine.testing import deterministic_bytes as reexported
from providers._fileserve import (
    FileServer,
    ServedFile,
    content_md5,
    deterministic_bytes,
)

SIZE = 300_000  # several 64 KiB blocks and chunks, and a ragged end


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    yield srv
    srv.release_stalls()
    srv.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=httpx.Timeout(10.0, read=1.0)) as c:
        yield c


@pytest.fixture
def file() -> ServedFile:
    return ServedFile("Show/Episode 1.mkv", SIZE, "seed-a")


def received(
    client: httpx.Client, url: str, **headers: str
) -> tuple[bytes, type[Exception] | None]:
    """The body bytes that arrived, and the error that ended the body early (if any)."""
    got = bytearray()
    try:
        with client.stream("GET", url, headers=headers) as response:
            for data in response.iter_bytes():
                got += data
    except (httpx.RemoteProtocolError, httpx.ReadTimeout, httpx.ReadError) as error:
        return bytes(got), type(error)
    return bytes(got), None


# -- the bytes -----------------------------------------------------------------


def test_bytes_depend_on_seed_and_offset_and_any_slice_matches_the_stream() -> None:
    whole = deterministic_bytes("s", 0, 5 * 65536 + 17)
    for offset, length in [(0, 1), (3, 20), (65530, 20), (65536, 8), (131070, 70000)]:
        assert deterministic_bytes("s", offset, length) == whole[offset : offset + length]
    assert deterministic_bytes("s", 0, 1000) != deterministic_bytes("t", 0, 1000)
    # A whole block off is caught too: each block carries its index.
    assert deterministic_bytes("s", 65536, 1000) != deterministic_bytes("s", 0, 1000)
    assert deterministic_bytes("s", 0, 0) == b""
    assert reexported is deterministic_bytes


def test_md5_is_that_of_the_whole_content(file: ServedFile) -> None:
    assert file.md5 == hashlib.md5(file.content(), usedforsecurity=False).hexdigest()
    assert content_md5("seed-a", SIZE) == file.md5


# -- plain and ranged GETs -------------------------------------------------------


def test_a_full_get_is_the_content_with_its_validators(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/Episode%201.mkv")
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == file.content()
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == file.etag and file.etag.startswith('"')
    assert response.headers["last-modified"] == file.last_modified
    assert response.headers["content-length"] == str(SIZE)
    assert server.served_bytes(url) == SIZE and server.served_bytes(file) == SIZE
    assert server.request_count(url) == 1
    assert server.file(url) is file


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-65636", 100, 65636),
        ("bytes=299000-", 299000, SIZE - 1),
        ("bytes=299000-999999", 299000, SIZE - 1),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        ("bytes=-999999", 0, SIZE - 1),
    ],
)
def test_a_single_range_is_206_with_its_content_range(
    server: FileServer, client: httpx.Client, file: ServedFile, spec: str, first: int, last: int
) -> None:
    url = server.add(file)
    response = client.get(url, headers={"Range": spec})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.content == file.content(first, last - first + 1)
    assert server.served_bytes(url) == last - first + 1


@pytest.mark.parametrize("spec", ["bytes=300000-", "bytes=400000-400010", "bytes=-0"])
def test_an_unsatisfiable_range_is_416_with_the_size(
    server: FileServer, client: httpx.Client, file: ServedFile, spec: str
) -> None:
    response = client.get(server.add(file), headers={"Range": spec})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.content == b""


@pytest.mark.parametrize("spec", ["bytes=0-1,5-9", "bytes=9-5", "items=0-4", "bytes=x-"])
def test_several_ranges_or_an_invalid_one_get_the_whole_content(
    server: FileServer, client: httpx.Client, file: ServedFile, spec: str
) -> None:
    response = client.get(server.add(file), headers={"Range": spec})
    assert response.status_code == 200 and response.content == file.content()


# -- If-Range ------------------------------------------------------------------------


def test_if_range_with_the_current_etag_or_date_gives_the_range(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    for validator in (file.etag, file.last_modified):
        response = client.get(url, headers={"Range": "bytes=1000-", "If-Range": validator})
        assert response.status_code == 206
        assert response.content == file.content(1000)


def test_if_range_naming_another_version_gives_the_whole_new_file(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    old_tag, old_date, old_bytes = file.etag, file.last_modified, file.content()
    file.bump()
    assert file.etag != old_tag and file.last_modified != old_date
    assert file.content() != old_bytes and len(file.content()) == SIZE
    stale_date = email.utils.formatdate(file.modified_at - 3600, usegmt=True)
    for validator in (old_tag, old_date, stale_date, f"W/{file.etag}", "not a date"):
        response = client.get(url, headers={"Range": "bytes=1000-", "If-Range": validator})
        assert response.status_code == 200, validator
        assert response.content == file.content()
        assert response.headers["etag"] == file.etag


# -- HEAD and empty files --------------------------------------------------------------


def test_head_answers_the_headers_without_a_body(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    response = client.head(url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["etag"] == file.etag
    assert response.content == b""
    ranged = client.head(url, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.headers["content-length"] == "10"
    assert server.served_bytes(url) == 0
    # Logged once the answer is sent: the client may see it first (CI under load did).
    assert server.wait_logged(2)
    assert [r.method for r in server.requests] == ["HEAD", "HEAD"]


def test_an_empty_file_is_200_with_no_body_and_any_range_is_416(
    server: FileServer, client: httpx.Client
) -> None:
    url = server.add(ServedFile("empty.txt", 0, "empty"))
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-length"] == "0" and response.content == b""
    for spec in ("bytes=0-", "bytes=-1", "bytes=0-0"):
        assert client.get(url, headers={"Range": spec}).status_code == 416


# -- knobs -------------------------------------------------------------------------------


def test_ignore_range_answers_200_with_everything(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    server.knobs.ignore_range = True
    response = client.get(url, headers={"Range": "bytes=1000-"})
    assert response.status_code == 200 and response.content == file.content()
    assert "content-range" not in response.headers


def test_cut_after_ends_each_body_after_exactly_that_many_bytes(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    server.knobs.cut_after = 70_000
    body, error = received(client, url)
    assert error is httpx.RemoteProtocolError
    assert body == file.content(0, 70_000)
    body, error = received(client, url, Range="bytes=100000-")
    assert error is httpx.RemoteProtocolError
    assert body == file.content(100_000, 70_000)
    assert server.served_bytes(url) == 140_000


def test_stall_after_sends_that_many_bytes_then_nothing(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    server.knobs.stall_after = 5_000
    body, error = received(client, url)  # the client's 1 s read timeout ends the wait
    assert error is httpx.ReadTimeout
    assert body == file.content(0, 5_000)
    assert server.served_bytes(url) == 5_000


def test_a_released_stall_closes_the_connection(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    server.knobs.stall_after = 10
    with client.stream("GET", url) as response:
        chunks = response.iter_raw()
        assert next(chunks) == file.content(0, 10)
        server.release_stalls()
        with pytest.raises(httpx.RemoteProtocolError):
            next(chunks)


def test_throttle_paces_the_body(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    server.knobs.throttle_bps = 400_000.0
    started = time.monotonic()
    response = client.get(url, headers={"Range": "bytes=0-39999"})
    assert response.content == file.content(0, 40_000)
    assert time.monotonic() - started >= 0.09  # 40 kB at 400 kB/s: at least 0.1 s


def test_an_expired_url_answers_403_and_others_still_work(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url, other = server.add(file), server.add(file)
    server.expire(url)
    response = client.get(url)
    assert response.status_code == 403 and b"Invalid Presigned Token" in response.content
    assert client.get(other).status_code == 200
    assert server.served_bytes(file) == SIZE and server.request_count(file) == 2


def test_unknown_paths_are_404(server: FileServer, client: httpx.Client, file: ServedFile) -> None:
    url = server.add(file)
    assert client.get(server.base_url + "/f/nope/x").status_code == 404
    assert client.get(server.base_url + "/").status_code == 404
    server.remove(url)
    assert client.get(url).status_code == 404


def test_the_request_log_keeps_range_and_if_range(
    server: FileServer, client: httpx.Client, file: ServedFile
) -> None:
    url = server.add(file)
    client.get(url, headers={"Range": "bytes=5-", "If-Range": file.etag})
    assert server.wait_logged(1)
    (seen,) = server.requests
    assert (seen.method, seen.range, seen.if_range, seen.status) == (
        "GET",
        "bytes=5-",
        file.etag,
        206,
    )
    assert url.endswith(seen.path)


def test_stop_closes_kept_alive_connections_and_a_new_start_serves_again(
    file: ServedFile, client: httpx.Client
) -> None:
    server = FileServer()
    assert not server.running
    url = server.add(file)  # started lazily
    assert client.get(url).status_code == 200  # the connection stays in the client's pool
    server.stop()
    assert not server.running
    with pytest.raises(httpx.TransportError):
        client.get(url)
    with server:
        fresh = server.add(file)
        assert client.get(fresh).content == file.content()
