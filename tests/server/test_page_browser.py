"""The /provider-test page in a real (headless) chromium against a real daemon and engine.

The engine runs on a FakeClock: the mock's jobs move only when the test advances
it, so each state can be looked at on the page; the page learns of every change
over SSE (it is never reloaded).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from page_helpers import (
    ConsoleLog,
    chromium_browser,
    provider_card,
    require_chromium,
    row,
    screenshot,
)

from engine import Engine, EngineConfig, JobStatus
from engine.server import Daemon, ServerOptions
from engine.server._app import PAGE_POLICY
from engine.testing import advance_until
from providers import FakeClock, MockProvider, ProviderRegistry
from providers._torrent import bencode

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Playwright waits (ms): generous for a loaded 2-core machine, never a sleep.
WAIT = 10_000
SINTEL = "magnet:?xt=urn:btih:dd8255ecdc7ca55fb0bbf81323d87062db1f6d1c&dn=Sintel"
#: A display name that is markup: the page must show it as text.
MARKUP = "<img src=x onerror=window.__xss=1>"
TORRENT = bencode(
    {
        "announce": "http://tracker.example/announce",
        "info": {
            "length": 4096,
            "name": "Big.Buck.Bunny.mkv",
            "piece length": 16384,
            "pieces": b"\x00" * 20,
        },
    }
)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Any, Engine, MockProvider, FakeClock]]:
    """A daemon on 127.0.0.1:0 over an engine whose mock moves on a FakeClock."""
    require_chromium()
    clock = FakeClock(start_wall=time.time())  # real dates on the page
    # A request budget, so that a 429 pauses a bucket the providers panel shows.
    mock = MockProvider(10.0, requests_per_second=50, burst=50)
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    engine = Engine(
        EngineConfig(
            database=tmp_path / "jobs.db",
            providers={"mock": {"poll_interval": 0.5}},
            registry=registry,
            clock=clock,
            stall_timeouts={},
        )
    )
    engine.start()
    server = Daemon(
        engine,
        ServerOptions(token=secrets.token_urlsafe(16), port=0, download_roots=(tmp_path,)),
    )
    try:
        server.start()
        yield server, engine, mock, clock
    finally:
        server.stop()
        engine.stop()


#: The strictest policy the page is meant to live under (no inline code or style, no
#: other origin): served with it here, a violation shows as a console error.
def _validation_422(text: str, url: str) -> bool:
    """The one error the test provokes on purpose: chromium logs a 422 answer."""
    return "status of 422" in text and url.endswith("/api/jobs")


def test_page_drives_jobs_live_without_reloading(
    daemon: tuple[Any, Engine, MockProvider, FakeClock], tmp_path: Path
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415

    server, engine, mock, clock = daemon
    with chromium_browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(WAIT)
        console = ConsoleLog(page)
        page.goto(server.login_url())
        expect(page).to_have_url(re.compile(r"/provider-test$"))
        # The page works under the daemon's own strict policy (no inline script or
        # style, nothing fetched from elsewhere): chromium enforces what it sends.
        answer = page.goto(server.page_url)
        assert answer is not None
        assert answer.headers["content-security-policy"] == PAGE_POLICY
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "live")
        page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads
        mock_card = provider_card(page, "mock")
        expect(mock_card.get_by_test_id("provider-state")).to_have_text("ok")

        # A bad field comes back as 422 and is shown beside its input; nothing is made.
        page.get_by_test_id("source-magnet").fill(SINTEL)
        page.locator("#options > summary").click()
        page.get_by_test_id("download-dir").fill("/etc")
        page.get_by_test_id("add-job").click()
        expect(page.locator('[data-error-for="download_dir"]')).not_to_be_empty()
        expect(page.get_by_test_id("download-dir")).to_have_attribute("aria-invalid", "true")
        assert engine.list_jobs() == []

        # A job made through the form shows every step, its local bytes included.
        mock.file_server.knobs.stall_after = 100_000  # hold the download midway
        page.get_by_test_id("download-dir").fill(str(tmp_path / "dl"))
        page.get_by_test_id("select-globs").fill("*.mkv")
        page.get_by_test_id("select-largest").check()
        page.get_by_test_id("connections").fill("2")
        page.get_by_test_id("add-job").click()
        expect(page.get_by_test_id("job-row")).to_have_count(1)
        expect(page.locator('[data-error-for="download_dir"]')).to_be_empty()
        (added,) = engine.list_jobs()
        assert added.payload.select.globs == ("*.mkv",) and added.payload.select.largest_only
        assert added.payload.connections == 2
        assert added.payload.download_dir == str(tmp_path / "dl")
        first = row(page, added.id)
        expect(first.get_by_test_id("job-name")).to_have_text("Sintel")
        expect(first.get_by_test_id("job-provider")).to_have_text("mock")
        expect(first.get_by_test_id("job-state")).to_have_text("queued")

        def local_bytes() -> int:
            return int(engine.get_job(added.id).metadata.get("download", {}).get("bytes_done", 0))

        advance_until(clock, lambda: local_bytes() >= 100_000, step=0.5)
        expect(first.get_by_test_id("job-state")).to_have_text("downloading")
        expect(first.get_by_test_id("job-speed")).to_have_text(re.compile(r"/s$"))
        expect(first.get_by_test_id("job-eta")).to_have_text(re.compile(r"100\.0 KB / "))
        expect(first.get_by_test_id("job-progress")).not_to_have_text("0%")
        expect(first.get_by_test_id("job-sub")).to_contain_text("files 0/1")
        screenshot(page, tmp_path, "provider-test-downloading-1280x800")

        mock.file_server.knobs.stall_after = None
        mock.file_server.release_stalls()
        advance_until(clock, lambda: engine.get_job(added.id).terminal, step=0.5)
        assert engine.get_job(added.id).status is JobStatus.COMPLETED
        expect(first.get_by_test_id("job-state")).to_have_text("completed")
        expect(first.get_by_test_id("job-progress")).to_have_text("100%")
        expect(first.get_by_test_id("job-cancel")).to_be_disabled()

        # A .torrent upload goes as multipart; bulk cancel stops it.
        page.get_by_test_id("kind-torrent").check()
        page.get_by_test_id("source-torrent").set_input_files(
            {"name": "bbb.torrent", "mimeType": "application/x-bittorrent", "buffer": TORRENT}
        )
        page.get_by_test_id("download-dir").fill("")
        page.get_by_test_id("add-job").click()
        expect(page.get_by_test_id("job-row")).to_have_count(2)
        (uploaded,) = [j for j in engine.list_jobs() if j.id != added.id]
        assert uploaded.payload.torrent == TORRENT
        assert uploaded.payload.connections == 2 and uploaded.payload.download_dir is None
        upload_row = row(page, uploaded.id)
        expect(upload_row.get_by_test_id("job-name")).to_have_text("Big.Buck.Bunny.mkv")
        upload_row.get_by_test_id("job-select").check()
        page.get_by_test_id("bulk-cancel").click()
        expect(upload_row.get_by_test_id("job-state")).to_have_text("cancelled")
        assert engine.get_job(uploaded.id).status is JobStatus.CANCELLED
        clock.advance(1.0)

        # A job made elsewhere appears by itself; its row cancels it.
        other = engine.create_job(
            "mock", {"magnet": SINTEL.replace("dd82", "ee82").replace("Sintel", quote(MARKUP))}
        )
        second = row(page, other.id)
        expect(second.get_by_test_id("job-state")).to_have_text("queued")
        expect(second.get_by_test_id("job-name")).to_have_text(MARKUP)
        expect(second.locator("img")).to_have_count(0)
        second.get_by_test_id("job-cancel").click()
        expect(second.get_by_test_id("job-state")).to_have_text("cancelled")
        assert engine.get_job(other.id).status is JobStatus.CANCELLED
        expect(second.get_by_test_id("job-retry")).to_be_enabled()

        # Two jobs fail at the provider; each row says why.
        mock.inject("remote_fail", at=JobStatus.RESOLVING, count=2)
        failing = []
        for i in (1, 2):
            failing.append(
                engine.create_job("mock", {"url": f"https://files.example/broken-{i}.zip"})
            )
            clock.advance(1.0)  # distinct added dates: the default sort is newest first
        advance_until(clock, lambda: all(engine.get_job(j.id).terminal for j in failing), step=0.5)
        for job in failing:
            failed_row = row(page, job.id)
            expect(failed_row.get_by_test_id("job-state")).to_have_text("failed")
            expect(failed_row.get_by_test_id("job-error")).to_have_text(
                "MOCK_FAILURE: mock job failed at resolving"
            )
        expect(row(page, failing[0].id).get_by_test_id("job-name")).to_have_text("broken-1.zip")
        expect(page.get_by_test_id("job-row")).to_have_count(5)
        page.get_by_test_id("notice").click()  # a toast: dismissed by a click
        expect(page.get_by_test_id("notice")).to_be_hidden()
        screenshot(page, tmp_path, "provider-test-1280x800")
        page.emulate_media(color_scheme="dark")
        screenshot(page, tmp_path, "provider-test-1280x800-dark")
        page.emulate_media(color_scheme="light")

        # At phone width the list is cards: nothing wider than the screen.
        page.set_viewport_size({"width": 390, "height": 844})
        expect(page.get_by_test_id("jobs-table").locator("thead")).to_be_hidden()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, tmp_path, "provider-test-390x844")
        screenshot(page, tmp_path, "provider-test-390x844-full", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})

        # Bulk retry of the two failed jobs: a new attempt each, then done.
        for job in failing:
            row(page, job.id).get_by_test_id("job-select").check()
        expect(page.get_by_test_id("selected-count")).to_have_text("2 selected")
        page.get_by_test_id("bulk-retry").click()
        for job in failing:
            retried = row(page, job.id)
            expect(retried.get_by_test_id("job-state")).to_have_text("queued")
            expect(retried.get_by_test_id("job-sub")).to_contain_text("attempt 2")
            expect(retried.get_by_test_id("job-error")).to_be_empty()
        expect(page.get_by_test_id("selected-count")).to_have_text("0 selected")
        advance_until(clock, lambda: all(engine.get_job(j.id).terminal for j in failing), step=0.5)
        for job in failing:
            assert engine.get_job(job.id).status is JobStatus.COMPLETED
            expect(row(page, job.id).get_by_test_id("job-state")).to_have_text("completed")

        # Test connection shows the provider's answer.
        mock_card.get_by_test_id("provider-test-button").click()
        result = mock_card.get_by_test_id("provider-test-result")
        expect(result).to_have_attribute("data-ok", "true")
        expect(result).to_contain_text("mock provider ready")
        expect(result).to_contain_text("mock-user")

        # Filters, search and sort go to the server and narrow the list.
        page.get_by_test_id("filter-status").select_option("completed")
        expect(page.get_by_test_id("job-row")).to_have_count(3)
        expect(
            page.locator('[data-testid="job-row"]:not([data-status="completed"])')
        ).to_have_count(0)
        page.get_by_test_id("filter-status").select_option("cancelled")
        expect(page.get_by_test_id("job-row")).to_have_count(2)
        expect(second).to_be_visible()
        page.get_by_test_id("filter-status").select_option("")
        expect(page.get_by_test_id("job-row")).to_have_count(5)
        page.get_by_test_id("filter-q").fill("broken-2")
        expect(page.get_by_test_id("job-row")).to_have_count(1)
        expect(row(page, failing[1].id)).to_be_visible()
        page.get_by_test_id("filter-q").fill("")
        expect(page.get_by_test_id("job-row")).to_have_count(5)
        expect(page.get_by_test_id("job-row").first).to_have_attribute("data-job-id", failing[1].id)
        page.locator('.sorter[data-sort="created_at"]').click()  # newest first -> oldest first
        expect(page.get_by_test_id("job-row").first).to_have_attribute("data-job-id", added.id)

        # Clear completed leaves the cancelled jobs.
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_test_id("clear-completed").click()
        expect(page.get_by_test_id("job-row")).to_have_count(2)
        expect(second).to_be_visible()
        assert {j.id for j in engine.list_jobs()} == {other.id, uploaded.id}

        # A 429 pauses the provider's budget: a banner with the reason and a countdown.
        polled = engine.create_job("mock", {"url": "https://files.example/paused.zip"})
        expect(row(page, polled.id)).to_be_visible()
        mock.inject("rate_limit", retry_after=600)
        advance_until(clock, lambda: bool(engine.health().providers["mock"].paused_until), step=0.5)
        page.get_by_test_id("providers-refresh").click()
        banner = page.locator('[data-testid="pause-banner"][data-provider="mock"]')
        expect(banner).to_contain_text("RATE_LIMITED")
        expect(banner).to_contain_text(re.compile(r"resumes in \d+m"))
        expect(mock_card.get_by_test_id("provider-paused")).to_contain_text("default")
        screenshot(page, tmp_path, "provider-test-paused-1280x800")

        # Select all + delete: the terminal jobs go, the active one is refused and stays.
        page.get_by_test_id("select-all").check()
        expect(page.get_by_test_id("selected-count")).to_have_text("3 selected")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_test_id("bulk-delete").click()
        expect(page.get_by_test_id("job-row")).to_have_count(1)
        expect(page.get_by_test_id("notice")).to_contain_text("1 refused")
        assert [j.id for j in engine.list_jobs()] == [polled.id]

        assert page.evaluate("window.__sameDocument") is True
        expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "live")
        context.close()
    assert console.errors(allowed=_validation_422) == []
    provoked = [m for m in console.messages if _validation_422(m[1], m[2])]
    assert len(provoked) <= 1


def test_page_shows_what_the_qbittorrent_face_refused(
    daemon: tuple[Any, Engine, MockProvider, FakeClock],
) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415

    server, engine, _, _ = daemon
    import httpx  # noqa: PLC0415

    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"Authorization": f"Bearer {server.options.token}"}) as client:
        answer = client.post("/api/v2/torrents/add",
                             data={"urls": f"gopher://x/{MARKUP}\nmagnet:?xt=urn:btih:zz"})
        assert answer.text == "Fails."
    with chromium_browser() as browser:
        page = browser.new_context().new_page()
        page.set_default_timeout(WAIT)
        console = ConsoleLog(page)
        page.goto(server.login_url())
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        panel = page.get_by_test_id("client-panel")
        expect(panel).to_be_visible()
        refusals = page.get_by_test_id("client-refusal")
        expect(refusals).to_have_count(2)
        expect(refusals.first).to_contain_text("not a valid torrent")  # newest first
        expect(refusals.nth(1)).to_contain_text("not a magnet link or an http(s) URL")
        expect(refusals.nth(1)).to_contain_text(MARKUP)  # shown as text, never run
        assert page.evaluate("window.__xss") is None
        assert console.errors() == []
    assert engine.list_jobs() == []
