"""Helpers for the browser tests of the /provider-test page (importable, unlike conftest)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: What TESTING.md says chromium needs here: root needs no sandbox, and without
#: the networking flags it keeps trying to reach the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]


def require_chromium() -> Any:
    """The Playwright sync API, or skip saying what is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """A headless Debian chromium driven by Playwright (closed on exit)."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


class ConsoleLog:
    """Every console message and uncaught page error of a page."""

    def __init__(self, page: Any) -> None:
        self.messages: list[tuple[str, str, str]] = []  # type, text, url
        self.page_errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _console(self, message: Any) -> None:
        location = message.location or {}
        self.messages.append((message.type, message.text, location.get("url", "")))

    def errors(self, allowed: Callable[[str, str], bool] = lambda text, url: False) -> list[str]:
        """Console errors and warnings not ``allowed(text, url)``, then page errors."""
        bad = [
            f"console.{kind}: {text} ({url})"
            for kind, text, url in self.messages
            if kind in ("error", "warning") and not allowed(text, url)
        ]
        return bad + [f"page error: {error}" for error in self.page_errors]


def artifacts_dir() -> Path:
    """Where screenshots are copied for people to look at (``DEBRID_TEST_ARTIFACTS``)."""
    return Path(os.environ.get("DEBRID_TEST_ARTIFACTS", REPO / "test-artifacts"))


def screenshot(page: Any, tmp_path: Path, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot under ``tmp_path`` and copy it to ``artifacts_dir()``."""
    target = tmp_path / "screenshots" / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # sticky parts sit where they belong
    page.screenshot(path=str(target), full_page=full_page, animations="disabled")
    shared = artifacts_dir()
    shared.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, shared / target.name)
    return target


def row(page: Any, job_id: str) -> Any:
    """The list row (or phone card) of one job."""
    return page.locator(f'tr[data-testid="job-row"][data-job-id="{job_id}"]')


def provider_card(page: Any, name: str) -> Any:
    """The providers panel card of one provider."""
    return page.locator(f'[data-testid="provider"][data-provider="{name}"]')
