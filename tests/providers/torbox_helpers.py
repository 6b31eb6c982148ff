"""Shared bits of the TorBox provider tests (importable, unlike conftest)."""

from __future__ import annotations

from providers import StartJobPayload, parse_start_job_payload


def magnet(n: int) -> str:
    return f"magnet:?xt=urn:btih:{n:040x}&dn=Item.{n}"


def payload(**raw: object) -> StartJobPayload:
    return parse_start_job_payload(raw)
