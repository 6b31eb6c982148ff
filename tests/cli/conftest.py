"""The ``cli`` fixture: the ``debrid`` command on a config, database and downloads in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """A ``Cli`` on a fresh config, database and download dir under ``tmp_path``."""
    yield Cli(tmp_path)
