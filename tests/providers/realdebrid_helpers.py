"""Shared by the Real-Debrid credential tests: a clock that tells when it sleeps, a login."""

from __future__ import annotations

import threading
from typing import Any

from engine.testing.realdebrid import FakeRealDebrid
from providers import FakeClock
from providers.realdebrid import RealDebridProvider


class StepClock(FakeClock):
    """A FakeClock that signals when a thread starts sleeping on it, and until when."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = threading.Event()
        self.until = 0.0

    def sleep(self, seconds: float) -> None:
        self.until = self.monotonic() + seconds
        self.sleeping.set()
        super().sleep(seconds)


def secrets_of(provider: RealDebridProvider) -> dict[str, str]:
    """The credentials in the provider's store, by short name (the empty ones left out)."""
    store = provider.context.secrets
    names = ("api_token", "access_token", "refresh_token", "client_id", "client_secret")
    values = {name: store.get(f"realdebrid.{name}") for name in names}
    return {k: v for k, v in values.items() if v}


def login(provider: RealDebridProvider, fake: FakeRealDebrid, clock: StepClock) -> str:
    """Run the device flow, approving after two pending polls; returns the device code."""
    device = provider.start_device_auth()
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def poll() -> None:
        try:
            provider.poll_device_auth(device)
            outcome["done"] = True
        except Exception as error:
            outcome["error"] = error
        finished.set()

    worker = threading.Thread(target=poll)
    worker.start()
    try:
        for _ in range(200):  # bounded: 10 s of real time at most
            if finished.is_set():
                break
            if not clock.sleeping.wait(timeout=0.05):
                continue
            clock.sleeping.clear()
            if fake.counts["oauth_device_credentials"] >= 2:
                fake.approve_device(device.user_code)
            clock.set(clock.until)
    finally:
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome == {"done": True}
    return device.device_code
