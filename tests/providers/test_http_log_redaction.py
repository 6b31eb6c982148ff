"""One filter keeps credentials out of httpx's and httpcore's log records, from the start."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from engine.testing.realdebrid import FakeRealDebrid
from engine.testing.torbox import FakeTorBox
from providers import FakeClock, parse_start_job_payload
from providers._log import HTTP_LOGGERS, RedactUrlSecrets, mask_url_secrets
from providers.realdebrid._auth import OPEN_SOURCE_CLIENT_ID, DeviceAuthorization

KEY = "tbk-0c1d-SECRET-KEY-9f"


@pytest.fixture
def fresh_loggers(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's and httpcore's loggers as a new process has them: no filter yet."""
    for name in HTTP_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "filters", [])


def _texts(records: list[logging.LogRecord]) -> list[str]:
    return [text for r in records for text in (r.getMessage(), str(r.__dict__))]


def test_no_credential_reaches_a_log_record_before_or_after_a_device_flow(
    fresh_loggers: None,
    serve: Callable[..., object],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rd = serve(FakeRealDebrid(clock=clock))
    tb = serve(FakeTorBox(clock=clock, api_key=KEY))
    assert isinstance(rd, FakeRealDebrid) and isinstance(tb, FakeTorBox)
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    realdebrid = rd.make_provider(clock=clock, limited=False, api_token=None)
    torbox = tb.make_provider()
    try:
        # Before any device flow starts in this process: a poll resumed with a code
        # that another process asked for (``poll_device_auth_once`` is public).
        status, body = rd.oauth.start(OPEN_SOURCE_CLIENT_ID, True)
        assert status == 200
        resumed = DeviceAuthorization(
            user_code=body["user_code"], verification_url=body["verification_url"],
            interval=5.0, expires_in=1800.0, expires_at=clock.monotonic() + 1800,
            device_code=body["device_code"],
        )
        assert rd.approve_device(resumed.user_code)
        assert realdebrid.poll_device_auth_once(resumed)
        # Then a device flow of its own, and ordinary calls with the tokens it gave.
        device = realdebrid.start_device_auth()
        assert rd.approve_device(device.user_code)
        assert realdebrid.poll_device_auth_once(device)
        assert realdebrid.test_connection().ok
        # TorBox's key travels in requestdl's query string.
        tb.add_cached(f"{3:040x}")
        job = parse_start_job_payload({"magnet": f"magnet:?xt=urn:btih:{3:040x}&dn=C"})
        started = torbox.start_job(job)
        links = torbox.get_file_links(started.remote_id, job)
        assert torbox.resolve_download_url(started.remote_id, links.files[0]).startswith("http")
        store = realdebrid.context.secrets
        names = ("access_token", "refresh_token", "client_secret")
        tokens = [store.get(f"realdebrid.{name}") for name in names]
    finally:
        realdebrid.close()
        torbox.close()
    secrets = [KEY, resumed.device_code, device.device_code, *(t for t in tokens if t)]
    assert len(secrets) == 6
    texts = [*_texts(caplog.records), caplog.text]
    assert [s for s in secrets if any(s in text for text in texts)] == []
    # The lines that would carry them were logged, masked.
    messages = [r.getMessage() for r in caplog.records]
    assert sum("/device/credentials?" in m and "code=***" in m for m in messages) == 2
    assert any("requestdl?token=***" in m for m in messages)
    assert any(r.name.startswith("httpcore.") for r in caplog.records)


def test_the_filter_masks_urls_in_arguments_and_text_and_keeps_the_record() -> None:
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"',
        ("GET", httpx.URL("https://x.example/p?id=1&token=abc&code=D3V&auth_token=t"), "200"),
        None,
    )
    assert RedactUrlSecrets().filter(record)
    assert record.getMessage() == (
        'HTTP Request: GET https://x.example/p?id=1&token=***&code=***&auth_token=*** "200"'
    )
    assert mask_url_secrets("a?client_secret=s&x=1 b&refresh_token=r") == (
        "a?client_secret=***&x=1 b&refresh_token=***"
    )
    # Names that only end like a secret's are left alone, and so is text without a query.
    assert mask_url_secrets("?zipcode=1&id=2 host=code=3") == "?zipcode=1&id=2 host=code=3"
