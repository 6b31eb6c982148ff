"""The mock's files download for real: its resolved URLs serve bytes matching size and md5."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from providers import FakeClock, JobFile, JobStatus, MockProvider, ProviderContext, ProviderError
from providers._validation import parse_start_job_payload


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    provider = MockProvider(0.0)
    provider.bind(ProviderContext(clock=FakeClock()))
    yield provider
    provider.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10.0) as c:
        yield c


def payload(n: int, kind: str = "magnet") -> dict[str, str]:
    if kind == "url":
        return {"url": f"https://host.example/files/archive{n}.zip"}
    return {"magnet": f"magnet:?xt=urn:btih:{n:040x}&dn=job{n}"}


@pytest.mark.parametrize("kind", ["magnet", "url"])
def test_every_resolved_url_serves_the_files_size_and_md5(
    mock: MockProvider, client: httpx.Client, kind: str
) -> None:
    request = parse_start_job_payload(payload(7, kind))
    job = mock.start_job(request)
    links = mock.get_file_links(job.remote_id, request)
    assert links.ready and links.files
    for file in links.files:
        assert file.md5 is not None and 0 < file.size <= 2 * 1024 * 1024
        url = mock.resolve_download_url(job.remote_id, file)
        assert url.startswith("http://127.0.0.1:")
        body = client.get(url).content
        assert len(body) == file.size
        assert hashlib.md5(body, usedforsecurity=False).hexdigest() == file.md5
        # A resume gets the rest of the same bytes.
        tail = client.get(url, headers={"Range": f"bytes={file.size // 2}-"})
        assert tail.status_code == 206 and tail.content == body[file.size // 2 :]


def test_sizes_and_checksums_are_the_same_for_the_same_item_in_any_mock(
    mock: MockProvider,
) -> None:
    other = MockProvider(0.0)
    request = parse_start_job_payload(payload(3))

    def described(m: MockProvider) -> list[tuple[int, str, int, str | None]]:
        return [(f.id, f.name, f.size, f.md5) for f in m.start_job(request).files]

    assert described(mock) == described(other)  # the links differ: they name the remote id
    other.close()
    sizes = {mock.start_job(parse_start_job_payload(payload(n))).files[0].size for n in range(40)}
    assert len(sizes) > 10  # sizes differ from item to item


def test_a_file_keeps_its_url_until_close_which_stops_the_server(
    mock: MockProvider, client: httpx.Client
) -> None:
    request = parse_start_job_payload(payload(1))
    job = mock.start_job(request)
    file = job.files[0]
    url = mock.resolve_download_url(job.remote_id, file)
    assert mock.resolve_download_url(job.remote_id, file) == url
    assert mock.file_server.served_bytes(url) == 0
    assert client.get(url).status_code == 200
    assert mock.file_server.served_bytes(url) == file.size
    server = mock.file_server
    mock.close()
    assert not server.running
    with pytest.raises(httpx.TransportError):
        client.get(url)
    fresh = mock.resolve_download_url(job.remote_id, file)  # used again: a new server
    assert fresh != url and len(client.get(fresh).content) == file.size


def test_the_file_servers_knobs_make_downloads_misbehave(
    mock: MockProvider, client: httpx.Client
) -> None:
    job = mock.start_job(parse_start_job_payload(payload(2)))
    url = mock.resolve_download_url(job.remote_id, job.files[0])
    mock.file_server.expire(url)
    assert client.get(url).status_code == 403


def test_resolving_before_completion_or_for_unknown_jobs_and_files_fails() -> None:
    clock = FakeClock()
    slow = MockProvider(2.0)
    slow.bind(ProviderContext(clock=clock))
    request = parse_start_job_payload(payload(5))
    job = slow.start_job(request)
    clock.advance(4.5)  # DOWNLOADING: the files are listed, not yet ready
    listed = slow.get_status(job.remote_id)
    assert listed.status is JobStatus.DOWNLOADING
    with pytest.raises(ProviderError) as not_ready:
        slow.resolve_download_url(job.remote_id, listed.files[0])
    assert not_ready.value.code == "NOT_READY" and not_ready.value.retryable
    clock.advance(2.0)
    with pytest.raises(ProviderError) as unknown:
        slow.resolve_download_url("nope", listed.files[0])
    assert unknown.value.code == "NOT_FOUND"
    missing = JobFile(99, "x", 1)
    with pytest.raises(ProviderError) as no_file:
        slow.resolve_download_url(job.remote_id, missing)
    assert no_file.value.code == "NO_LINK"
    assert slow._server is None  # nothing served, nothing started
    slow.close()


def test_resolve_takes_injected_faults(mock: MockProvider) -> None:
    job = mock.start_job(parse_start_job_payload(payload(6)))
    mock.inject("transient", "resolve_download_url")
    with pytest.raises(ProviderError) as error:
        mock.resolve_download_url(job.remote_id, job.files[0])
    assert error.value.retryable
    assert mock.calls["resolve_download_url"] == 1
