"""Whatever the service answers, a provider operation raises a ProviderError or nothing.

Each operation of both providers meets arbitrary answers, one drawn per request:
any status, content type and body (bytes, HTML, JSON of any shape, items with
the services' field names holding values of the wrong type, huge numbers, deep
nesting, NaN and infinities). Only a ``ProviderError`` may escape: anything
else (KeyError, TypeError, ValueError, OverflowError, RecursionError...) counts
as a crash of the provider in the engine. The answers go through
``httpx.MockTransport``, the narrow parsing test the testing rules allow; the
lifecycles themselves are tested over real sockets against the fakes.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers import (
    FakeClock,
    MemorySecretStore,
    ProviderContext,
    ProviderError,
    StartJobPayload,
    parse_start_job_payload,
)
from providers.realdebrid import RealDebridProvider
from providers.torbox import TorBoxProvider

HASH = "a" * 40
#: Field names both services use, so that drawn objects look like their items.
RD_FIELDS = (
    "id", "uri", "filename", "original_filename", "hash", "bytes", "original_bytes", "host",
    "split", "progress", "status", "added", "links", "ended", "speed", "seeders", "files",
    "path", "selected", "nb", "limit", "username", "premium", "type", "expiration",
    "download", "link", "filesize", "mimeType", "generated", "error", "error_code",
    "error_details", "chunks", "streamable", "alternative",
)
TB_FIELDS = (
    "success", "error", "detail", "data", "id", "hash", "name", "size", "progress",
    "download_state", "download_finished", "download_present", "files", "short_name",
    "mimetype", "active_limit", "current_active_downloads", "torrent_id", "webdownload_id",
    "queued_id", "plan", "additional_concurrent_slots", "email", "auth_id",
    "premium_expires_at", "cooldown_until", "cached", "created_at", "updated_at",
    "expires_at", "eta", "seeds", "download_speed", "absolute_path", "zipped", "magnet",
    "type", "link", "loc",
)
WORDS = (
    "downloaded", "magnet_conversion", "waiting_files_selection", "queued", "downloading",
    "magnet_error", "error", "virus", "dead", "compressing", "uploading", "cached",
    "completed", "paused", "stalled (no seeds)", "metaDL", "checkingResumeData", HASH,
    "https://cdn.example/f", "/dir/file.mkv", "2026-01-01T00:00:00Z", "bad_token",
    "ACTIVE_LIMIT", "DUPLICATE_ITEM", "BAD_TOKEN", "Found Cached Torrent", "1", "0", "",
)
STATUSES = (200, 201, 202, 204, 206, 301, 304, 400, 401, 403, 404, 409, 410, 422, 429, 451,
            500, 502, 503, 509)
ODD_BODIES = (
    b"", b"null", b"[]", b"{}", b"true", b'"text"', b"<html><body>Down</body></html>",
    b"[" * 100_000, b"9" * 5_000, b'{"id": ' + b"9" * 5_000 + b"}", b"\xff\xfe{}",
    b'{"data": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", b'{"success": true, "data": NaN}',
    b"1e400", b'{"progress": 1e400, "bytes": -1e400}',
)
MAX_REQUESTS = 16


def leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12), st.sampled_from(WORDS),
    )


def values(fields: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.sampled_from(fields) | st.text(max_size=4), inner, max_size=8),
        ),
        max_leaves=16,
    )


def bodies(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    items = st.dictionaries(st.sampled_from(fields), values(fields), max_size=12)
    shaped = st.one_of(
        values(fields), items, st.lists(items, max_size=4),
        st.fixed_dictionaries(
            {"success": st.booleans(), "data": values(fields) | st.lists(items, max_size=3)},
            optional={"error": leaves(), "detail": leaves()},
        ),
    )
    return st.one_of(
        shaped.map(lambda value: json.dumps(value, allow_nan=True).encode()),
        st.binary(max_size=64),
        # By index: a strategy's repr holds its values, and these are large.
        st.integers(min_value=0, max_value=len(ODD_BODIES) - 1).map(ODD_BODIES.__getitem__),
    )


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()


def answers(fields: tuple[str, ...]) -> st.SearchStrategy[httpx.Response]:
    headers = st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": st.sampled_from(
                ["application/json", "application/json; charset=utf-8", "text/html",
                 "text/plain", "application/octet-stream"]
            ),
            "Retry-After": st.sampled_from(["5", "1e400", "-1", "soon", "99999999"])
            | st.text(max_size=8),
            "X-Total-Count": st.sampled_from(["0", "1", "-5", "9" * 40, "x"])
            | st.integers().map(str),
            "ETag": st.sampled_from(['"a"', '"b"']),
        },
    )
    return st.builds(
        lambda status, body, head: httpx.Response(status, content=body, headers=head),
        # Success statuses often, so that operations get past their first request.
        st.sampled_from((200, 201, 204)) | st.sampled_from(STATUSES)
        | st.integers(min_value=100, max_value=599),
        bodies(fields),
        headers.map(lambda head: {k: v for k, v in head.items() if _header_safe(v)}),
    )


RD_ANSWERS = answers(RD_FIELDS)
TB_ANSWERS = answers(TB_FIELDS)

# -- plausible answers: each endpoint's own shape, with fields spoilt at random -----------
_RD_FILE = {"id": 1, "path": "/dir/file.mkv", "bytes": 1000, "selected": 1}
_RD_TORRENT = {
    "id": "ABC123", "filename": "x", "hash": HASH, "bytes": 2000, "original_bytes": 2000,
    "host": "real-debrid.com", "split": 2000, "progress": 100, "status": "downloaded",
    "added": "2026-01-01T00:00:00.000Z", "links": ["https://real-debrid.com/d/AAA"],
    "ended": "2026-01-01T00:00:00.000Z", "speed": 0, "seeders": 0,
    "files": [_RD_FILE, {**_RD_FILE, "id": 2, "path": "/dir/b.nfo", "bytes": 10}],
}
_RD_DOWNLOAD = {
    "id": "ABC123", "filename": "file.bin", "mimeType": "application/octet-stream",
    "filesize": 1000, "link": "https://hoster.example/file.bin", "host": "hoster.example",
    "chunks": 16, "download": "https://cdn.example/f", "generated": "2026-01-01T00:00:00.000Z",
    "streamable": 0, "crc": 1,
}
RD_SHAPES: tuple[tuple[str, int, Any], ...] = (  # (path part, status, body)
    ("/torrents/activeCount", 200, {"nb": 1, "limit": 10}),
    ("/torrents/addMagnet", 201, {"id": "ABC123", "uri": "https://x/ABC123"}),
    ("/torrents/addTorrent", 201, {"id": "ABC123", "uri": "https://x/ABC123"}),
    ("/torrents/info/", 200, _RD_TORRENT),
    ("/torrents/selectFiles/", 204, None),
    ("/torrents/delete/", 204, None),
    ("/downloads/delete/", 204, None),
    ("/torrents", 200, [_RD_TORRENT, {**_RD_TORRENT, "id": "DEF456"}]),
    ("/downloads", 200, [_RD_DOWNLOAD]),
    ("/unrestrict/", 200, _RD_DOWNLOAD),
    ("/user", 200, {"id": 1, "username": "u", "type": "premium", "premium": 86400,
                    "expiration": "2026-02-01T00:00:00.000Z"}),
)
_TB_FILE = {"id": 0, "name": "x/file.mkv", "short_name": "file.mkv", "size": 1000,
            "md5": "0" * 32, "mimetype": "video/x-matroska"}
_TB_ITEM = {
    "id": 7, "hash": HASH, "name": "x", "size": 1000, "progress": 1.0,
    "download_state": "completed", "download_finished": True, "download_present": True,
    "cached": True, "created_at": "2026-01-01T00:00:00Z", "expires_at": None, "eta": 0,
    "seeds": 0, "download_speed": 0, "files": [_TB_FILE, {**_TB_FILE, "id": 1}],
}
TB_SHAPES: tuple[tuple[str, int, Any], ...] = (
    ("/mylist", 200, [_TB_ITEM, {**_TB_ITEM, "id": 8, "download_state": "downloading"}]),
    ("/getqueued", 200, [{"id": 8, "hash": HASH, "name": "x", "type": "torrent"}]),
    ("/createtorrent", 200, {"torrent_id": 7, "hash": HASH, "auth_id": "a"}),
    ("/createwebdownload", 200, {"webdownload_id": 7, "hash": HASH, "auth_id": "a"}),
    ("/checkcached", 200, {HASH: {"name": "x", "size": 1000, "hash": HASH}}),
    ("/control", 200, None),
    ("/requestdl", 200, "https://cdn.example/f"),
    ("/user/me", 200, {"plan": 2, "email": "u@x", "premium_expires_at": "2027-01-01",
                       "additional_concurrent_slots": 0, "cooldown_until": None}),
)


#: What a spoilt field may hold instead: every JSON type, and values at their edges.
SPOILERS: tuple[Any, ...] = (
    None, True, False, 0, -1, 2**63, -(2**70), 1.5, float("inf"), float("-inf"), float("nan"),
    "", "x", "-1", "1e400", "9" * 50, HASH, [], {}, [None], [1, "a"], {"id": None},
    {"": [[[]]]}, [[[[{}]]]], *WORDS,
)


def spoil(rnd: random.Random, value: Any) -> Any:
    """``value`` with some of its parts dropped or replaced by something of another kind."""
    if isinstance(value, dict):
        spoilt: dict[str, Any] = {}
        for key, item in value.items():
            fate = rnd.randrange(10)
            if fate == 0:
                continue  # missing
            spoilt[key] = rnd.choice(SPOILERS) if fate == 1 else spoil(rnd, item)
        return spoilt
    if isinstance(value, list):
        return [spoil(rnd, item) for item in value[: rnd.randrange(len(value) + 2)]]
    return value if rnd.randrange(10) else rnd.choice(SPOILERS)


def plausible(
    rnd: random.Random, request: httpx.Request, shapes: tuple[tuple[str, int, Any], ...],
    enveloped: bool,
) -> httpx.Response | None:
    """The endpoint's usual answer, spoilt a little, or None for an endpoint not listed."""
    shape = next((shape for shape in shapes if shape[0] in request.url.path), None)
    if shape is None:
        return None
    _, status, body = shape
    if enveloped:
        body = {"success": True, "error": None, "detail": "Found Cached Torrent", "data": body}
    body = spoil(rnd, body)
    content = b"" if body is None else json.dumps(body, allow_nan=True).encode()
    return httpx.Response(status, content=content, headers={"Content-Type": "application/json"})


def responder(
    data: st.DataObject, kind: str
) -> Callable[[httpx.Request], httpx.Response]:
    """Per request: the endpoint's plausible answer, spoilt, or any answer at all."""
    rd = kind == "realdebrid"
    shapes, anything = (RD_SHAPES, RD_ANSWERS) if rd else (TB_SHAPES, TB_ANSWERS)
    # Seeded by hypothesis (so derandomized and replayable), and far cheaper than a
    # draw per field.
    rnd = data.draw(st.randoms(use_true_random=False), label="spoiler")

    def answer(request: httpx.Request) -> httpx.Response:
        if rnd.randrange(3):
            response = plausible(rnd, request, shapes, enveloped=not rd)
            if response is not None:
                return response
        return data.draw(anything)

    return answer

MAGNET = parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{HASH}&dn=x"})
LARGEST = parse_start_job_payload(
    {"magnet": f"magnet:?xt=urn:btih:{HASH}", "select": {"largest_only": True}}
)
CACHED = parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{HASH}", "only_if_cached": True})
LINK = parse_start_job_payload({"url": "https://hoster.example/file.bin"})
TORRENT = parse_start_job_payload({
    "torrent": b"d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:"
    + b"0" * 20 + b"ee"
})
PAYLOADS = (MAGNET, LARGEST, CACHED, LINK, TORRENT)

Operation = Callable[[Any, StartJobPayload], object]


def _rd_id(job: StartJobPayload) -> str:
    return "link:ABC123" if job.kind == "url" else "torrent:ABC123"


def _tb_id(job: StartJobPayload) -> str:
    return "webdl:7" if job.kind == "url" else "torrent:7"


def operations(remote: Callable[[StartJobPayload], str], queued: str) -> dict[str, Operation]:
    """The Provider protocol's operations, each with the ids and payloads it takes."""
    return {
        "start_job": lambda p, job: p.start_job(job),
        "get_status": lambda p, job: p.get_status(remote(job)),
        "list_statuses": lambda p, job: p.list_statuses([remote(job), queued]),
        "find_existing": lambda p, job: p.find_existing(job),
        "cancel": lambda p, job: p.cancel(remote(job)),
        "get_file_links": lambda p, job: p.get_file_links(remote(job), job),
        "test_connection": lambda p, job: p.test_connection(),
        # The state one answer leaves (a tracked job, a cached page, a known link)
        # meets the next answers.
        "lifecycle": lambda p, job: lifecycle(p, job, remote),
    }


def lifecycle(provider: Any, job: StartJobPayload, remote: Callable[[StartJobPayload], str]
              ) -> None:
    """Submit, poll twice, read links and resolve one, cancel: each step may fail alone."""
    remote_id = remote(job)
    steps: list[Callable[[], object]] = [
        lambda: provider.start_job(job),
        lambda: provider.list_statuses([remote_id]),
        lambda: provider.list_statuses([remote_id]),
        lambda: provider.get_status(remote_id),
        lambda: [provider.resolve_download_url(remote_id, file)
                 for file in provider.get_file_links(remote_id, job).files[:1]],
        lambda: provider.cancel(remote_id),
    ]
    for step in steps:
        with contextlib.suppress(ProviderError):
            step()


RD_OPERATIONS = operations(_rd_id, "torrent:DEF456")
TB_OPERATIONS = operations(_tb_id, f"queued:torrent:8:{HASH}")


def provider_for(kind: str, transport: httpx.MockTransport) -> RealDebridProvider | TorBoxProvider:
    provider: RealDebridProvider | TorBoxProvider
    if kind == "realdebrid":
        provider = RealDebridProvider(
            api_token="tok", base_url="http://rd.invalid/rest/1.0",
            oauth_base_url="http://rd.invalid/oauth/v2", transport=transport, page_size=2,
        )
    else:
        provider = TorBoxProvider(
            api_key="key", base_url="http://tb.invalid", transport=transport, page_size=2
        )
    provider.bind(ProviderContext(clock=FakeClock(autojump=True), secrets=MemorySecretStore()))
    return provider


def run(
    kind: str, operation: Operation, job: StartJobPayload,
    answer: Callable[[httpx.Request], httpx.Response],
) -> None:
    """Run ``operation`` against ``answer``; only a ProviderError may come out of it."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) > MAX_REQUESTS:  # a paged list that never ends: cut it here
            return httpx.Response(503, content=b"enough")
        return answer(request)

    provider = provider_for(kind, httpx.MockTransport(handler))
    try:
        operation(provider, job)
    except ProviderError:
        pass
    finally:
        provider.close()


FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(kind: str, table: Mapping[str, Operation]) -> Callable[[str], None]:
    @FUZZ
    @given(data=st.data(), job=st.sampled_from(PAYLOADS))
    def check(name: str, data: st.DataObject, job: StartJobPayload) -> None:
        run(kind, table[name], job, responder(data, kind))

    return check


_rd_fuzz = fuzz("realdebrid", RD_OPERATIONS)
_tb_fuzz = fuzz("torbox", TB_OPERATIONS)


@pytest.mark.parametrize("name", sorted(RD_OPERATIONS))
def test_realdebrid_operations_raise_only_provider_errors_whatever_the_answer(name: str) -> None:
    _rd_fuzz(name)


@pytest.mark.parametrize("name", sorted(TB_OPERATIONS))
def test_torbox_operations_raise_only_provider_errors_whatever_the_answer(name: str) -> None:
    _tb_fuzz(name)


# -- what the fuzzing found, kept as plain tests --------------------------------------------
def enveloped(data: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    body = {"success": status < 400, "error": None, "detail": "", "data": data}
    return lambda request: httpx.Response(status, json=body)


@pytest.mark.parametrize("files", [198, "x", True, {"id": 0}])
def test_torbox_an_item_whose_files_are_not_a_list_has_no_files(files: object) -> None:
    """``files: 198`` in a list item raised TypeError (int is not iterable) in item_files."""
    answer = enveloped([{**_TB_ITEM, "files": files}])
    provider = provider_for("torbox", httpx.MockTransport(answer))
    try:
        found = provider.find_existing(MAGNET)
        assert found is not None and found.remote_id == "torrent:7"
        links = provider.get_file_links("torrent:7", MAGNET)
        assert links.files == () and not links.ready
    finally:
        provider.close()


def test_torbox_a_validation_error_with_a_location_that_is_not_a_list() -> None:
    """FastAPI's ``loc`` as a number raised TypeError while building the message."""
    body = {"detail": [{"loc": 5, "msg": "bad"}, {"loc": ["body", "magnet"], "msg": "missing"}]}
    provider = provider_for(
        "torbox", httpx.MockTransport(lambda request: httpx.Response(422, json=body))
    )
    try:
        with pytest.raises(ProviderError) as caught:
            provider.get_status("torrent:7")
        assert caught.value.code == "VALIDATION_ERROR"
        assert caught.value.message == "TorBox rejected the request: 5: bad; body.magnet: missing"
    finally:
        provider.close()


@pytest.mark.parametrize("size", ["Infinity", "-Infinity", "1e400"])
def test_realdebrid_an_infinite_file_size_is_a_bad_response(size: str) -> None:
    """``bytes: Infinity`` (which Python's JSON reads) raised OverflowError in int()."""
    info = json.dumps({**_RD_TORRENT, "files": [{**_RD_FILE, "bytes": "@"}]})
    info = info.replace('"@"', size)  # a number JSON allows, out of every int's range
    provider = provider_for("realdebrid", httpx.MockTransport(
        lambda request: httpx.Response(200, content=info.encode())
    ))
    try:
        with pytest.raises(ProviderError) as caught:
            provider.get_file_links("torrent:ABC123", MAGNET)
        assert (caught.value.code, caught.value.retryable) == ("BAD_RESPONSE", True)
    finally:
        provider.close()
