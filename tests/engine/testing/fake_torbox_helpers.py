"""Shared bits of the FakeTorBox tests, spoken to with plain httpx (importable, unlike conftest)."""

from __future__ import annotations

from typing import Any

import httpx

API = "/v1/api"
HASH = "c" * 40
MAGNET = f"magnet:?xt=urn:btih:{HASH}&dn=Some.Show"


def add_magnet(client: httpx.Client, magnet: str = MAGNET, **fields: str) -> httpx.Response:
    parts: dict[str, Any] = {"magnet": (None, magnet)}
    parts.update({k: (None, v) for k, v in fields.items()})
    return client.post(f"{API}/torrents/createtorrent", files=parts)


def data(response: httpx.Response) -> Any:
    body = response.json()
    assert body["success"] is True, body
    return body["data"]
