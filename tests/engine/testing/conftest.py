"""Fixtures for the fake servers' own tests (``clock`` comes from tests/engine/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from engine.testing.torbox import FakeTorBox


@pytest.fixture
def client(fake: FakeTorBox) -> Iterator[httpx.Client]:
    """A plain httpx client on the module's FakeTorBox, with its API key."""
    with httpx.Client(
        base_url=fake.url, headers={"Authorization": f"Bearer {fake.api_key}"}
    ) as session:
        yield session
