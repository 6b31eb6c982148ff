"""Helpers for embedders' own tests: the fake clock, clock drivers, fake provider servers.

``FakeRealDebrid`` and ``FakeTorBox`` are real HTTP servers on 127.0.0.1 that
behave like the services (lifecycles, quirks, rate limits) and inject faults on
demand; ``debrid fake-server NAME --port N`` runs one from the command line.
"""

from engine.testing._drive import ClockDriver, advance_until
from engine.testing._fakehttp import (
    FakeFault,
    FakeRequest,
    FakeResponse,
    FakeServer,
    RateWindow,
    deterministic_bytes,
)
from engine.testing._inject import inject_job_crash, inject_provider_crash, inject_supervisor_crash
from engine.testing.realdebrid import FakeRealDebrid
from engine.testing.torbox import FakeTorBox
from providers import FakeClock

__all__ = [
    "ClockDriver",
    "FakeClock",
    "FakeFault",
    "FakeRealDebrid",
    "FakeRequest",
    "FakeResponse",
    "FakeServer",
    "FakeTorBox",
    "RateWindow",
    "advance_until",
    "deterministic_bytes",
    "inject_job_crash",
    "inject_provider_crash",
    "inject_supervisor_crash",
]
