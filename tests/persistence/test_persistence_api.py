"""The public surface of ``persistence`` changes only on purpose."""

from __future__ import annotations

import persistence


def test_public_names_are_pinned() -> None:
    assert persistence.__all__ == [
        "SCHEMA_VERSION", "ClientBook", "ClientCategory", "ClientItem", "DatabaseOwner",
        "JobStore", "open_database",
    ]
    for name in persistence.__all__:
        assert getattr(persistence, name).__doc__ or name == "SCHEMA_VERSION"
