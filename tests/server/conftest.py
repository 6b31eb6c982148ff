"""Fixtures for the control API: a real Engine on SQLite behind a real Daemon on port 0."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import SECRET, TOKEN, Served, ServeFactory

import engine._engine as engine_module
from engine import Engine, EngineConfig
from engine.server import Daemon, ServerOptions
from persistence import JobStore
from providers import FakeClock, MemorySecretStore, MockProvider, ProviderRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from faulty_store import FaultyStore


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only the test moves."""
    return FakeClock()


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every engine started in the test opens its store wrapped in a FaultyStore."""
    made: list[Any] = []

    def open_store(target: Any, **options: Any) -> Any:
        made.append(FaultyStore(JobStore(target, **options)))
        return made[-1]

    monkeypatch.setattr(engine_module, "JobStore", open_store)
    return made


@pytest.fixture
def serve(tmp_path: Path, clock: FakeClock) -> Iterator[ServeFactory]:
    """``serve(**server_options)``: an engine (mock: 1 fake second a step) and a daemon."""
    running: list[tuple[Engine, Daemon, list[httpx.Client]]] = []

    def make(
        *,
        providers: dict[str, dict[str, Any]] | None = None,
        registry: ProviderRegistry | None = None,
        stores: list[Any] | None = None,
        **options: Any,
    ) -> Served:
        if registry is None:
            registry = ProviderRegistry()
            registry.register_provider("mock", MockProvider(1.0))
        secrets = MemorySecretStore()
        secrets.set("mock.api_key", SECRET)
        engine = Engine(
            EngineConfig(
                database=tmp_path / "jobs.db",
                providers=providers or {"mock": {"poll_interval": 0.5}},
                registry=registry,
                clock=clock,
                secrets=secrets,
                stall_timeouts={},
            )
        )
        engine.start()
        roots = tmp_path / "downloads"
        roots.mkdir(exist_ok=True)
        options.setdefault("token", TOKEN)
        options.setdefault("port", 0)
        options.setdefault("download_roots", (roots,))
        daemon = Daemon(engine, ServerOptions(**options))
        try:
            url = daemon.start()
        except BaseException:
            engine.stop()
            raise
        headers = {"Authorization": f"Bearer {options['token']}"} if options["token"] else {}
        client = httpx.Client(base_url=url, headers=headers, timeout=30)
        anonymous = httpx.Client(base_url=url, timeout=30)
        running.append((engine, daemon, [client, anonymous]))
        return Served(engine, daemon, clock, url, client, anonymous,
                      tuple(options["download_roots"]), stores or [])

    yield make
    for engine, daemon, clients in reversed(running):
        for client in clients:
            client.close()
        daemon.stop()
        engine.stop()


@pytest.fixture
def served(serve: ServeFactory) -> Served:
    """The default: bearer token on, one mock provider, a download root."""
    return serve()
