"""Shared bits of the control API tests (importable, unlike conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx

from engine import Engine, Job
from engine.server import Daemon
from engine.testing import ClockDriver
from providers import FakeClock

TOKEN = "test-token-0123456789"
SECRET = "SECRET-xyz-4242"


def magnet(i: int) -> dict[str, str]:
    """A valid magnet payload, unique per ``i``."""
    return {"magnet": f"magnet:?xt=urn:btih:{i:040x}&dn=job{i}"}


@attrs.define
class Served:
    """A running engine and daemon, with a client that carries the bearer token."""

    engine: Engine
    daemon: Daemon
    clock: FakeClock
    url: str
    client: httpx.Client
    anonymous: httpx.Client
    roots: tuple[Path, ...]
    stores: list[Any]

    def create(self, i: int = 0, **payload: Any) -> Job:
        """A job made through the engine (not the API)."""
        return self.engine.create_job("mock", {**magnet(i), **payload})

    def finish(self, job: Job) -> Job:
        """Run ``job`` to its end on the fake clock."""
        with ClockDriver(self.clock, step=0.5):
            return self.engine.wait(job.id, timeout=60)

    def login(self) -> tuple[str, str]:
        """(session cookie value, CSRF token) of a fresh browser login."""
        answer = self.anonymous.get(self.daemon.login_url().removeprefix(self.url))
        assert answer.status_code == 303, answer.text
        cookie = answer.headers["set-cookie"]
        session = cookie.split(";")[0].split("=", 1)[1]
        csrf = self.anonymous.get(
            "/api/session", headers={"Cookie": f"debrid_session={session}"}
        ).json()["csrf_token"]
        return session, csrf


ServeFactory = Callable[..., Served]


