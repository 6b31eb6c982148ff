"""The built-in mock provider: bounded memory and the same answers after eviction."""

from __future__ import annotations

from providers import JobStatus, MockProvider
from providers._validation import parse_start_job_payload
from providers.mock import _FILE_CACHE_SIZE


def test_file_lists_are_remade_alike_once_dropped_from_the_bounded_cache() -> None:
    mock = MockProvider(0.0)
    payloads = [
        parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}"})
        for i in range(_FILE_CACHE_SIZE + 50)
    ]
    first = mock.start_job(payloads[0])
    assert first.status is JobStatus.COMPLETED
    links_before = mock.get_file_links(first.remote_id, payloads[0])
    for payload in payloads[1:]:
        mock.start_job(payload)
    assert len(mock._file_cache) == _FILE_CACHE_SIZE
    assert first.remote_id not in mock._file_cache
    again = mock.get_file_links(first.remote_id, payloads[0])
    assert again == links_before
    assert again.files[0].name == "job0/job0.mkv"
