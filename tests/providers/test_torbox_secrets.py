"""The TorBox API key never leaves the provider: not in logs, errors, reprs, statuses or links."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from engine.testing.torbox import FakeTorBox
from providers import (
    FakeClock,
    MemorySecretStore,
    ProviderContext,
    ProviderError,
    parse_start_job_payload,
)
from providers.torbox import TorBoxProvider

KEY = "tbk-5f2c9a61-SECRET-77e0"


@pytest.fixture
def fake(serve: Callable[[FakeTorBox], FakeTorBox], clock: FakeClock) -> FakeTorBox:
    return serve(FakeTorBox(clock=clock, api_key=KEY))


def test_the_key_never_shows_in_logs_errors_reprs_statuses_or_links(
    fake: FakeTorBox,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    provider = fake.make_provider()
    seen: list[object] = [provider, provider.options, provider.api, provider.context]
    seen.append(provider.test_connection())
    fake.add_cached(f"{1:040x}")
    jobs = [
        parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{1:040x}&dn=A"}),
        parse_start_job_payload({"url": "https://files.example/b.bin"}),
    ]
    started = [provider.start_job(job) for job in jobs]
    clock.advance(30.0)
    statuses = provider.list_statuses([s.remote_id for s in started])
    seen += [*started, *statuses.values()]
    for response, job in zip(started, jobs, strict=True):
        links = provider.get_file_links(response.remote_id, job)
        seen.append(links)
        url = provider.resolve_download_url(response.remote_id, links.files[0])
        seen.append(url)
        assert httpx.get(url).status_code == 200
        seen.append(provider.find_existing(job))
    fake.fail_requestdl(1)
    file = provider.get_file_links(started[0].remote_id, jobs[0]).files[1]  # not resolved yet
    errors: list[ProviderError] = []
    for call in (
        lambda: provider.resolve_download_url(started[0].remote_id, file),
        lambda: provider.get_status("torrent:999"),
        lambda: provider.api.call("GET", "/v1/api/torrents/mylist", params={"id": "x"}),
        lambda: provider.api.call("GET", "/v1/api/torrents/requestdl", params={"token": KEY}),
    ):
        with pytest.raises(ProviderError) as caught:
            call()
        errors.append(caught.value)
    fake.inject("reset")
    with pytest.raises(ProviderError) as reset:
        provider.get_status(started[0].remote_id)
    errors.append(reset.value)
    seen += [e for error in errors for e in (error, str(error), repr(error), error.args)]
    seen.append(provider.cancel(started[0].remote_id))
    provider.close()

    out, err = capfd.readouterr()
    texts = [repr(item) for item in seen] + [caplog.text, out, err]
    texts += [json.dumps(s.metadata, default=str) for s in statuses.values()]
    assert all(KEY not in text for text in texts)
    # The requestdl line was logged (httpx logs full URLs), with the key masked.
    assert "requestdl?token=***" in caplog.text


def test_a_server_echoing_the_key_in_its_detail_is_scrubbed(fake: FakeTorBox) -> None:
    fake.refuse(f"{2:040x}", "BOZO_TORRENT", detail=f"token {KEY} cannot add this")
    provider = fake.make_provider()
    with pytest.raises(ProviderError) as caught:
        provider.start_job(parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{2:040x}"}))
    assert KEY not in str(caught.value) and caught.value.message == "token *** cannot add this"
    provider.close()


def test_the_key_can_come_from_the_secret_store(fake: FakeTorBox, clock: FakeClock) -> None:
    secrets = MemorySecretStore()
    secrets.set("torbox.api_key", KEY)
    provider = TorBoxProvider(base_url=fake.url)
    provider.bind(ProviderContext(clock=clock, secrets=secrets))
    assert provider.test_connection().ok
    assert KEY not in repr(provider)
    provider.close()
