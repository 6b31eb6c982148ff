"""Helpers for embedders' own tests: the fake clock and fake provider servers."""

from engine.testing._drive import ClockDriver, advance_until
from engine.testing._fakehttp import (
    FakeFault,
    FakeRequest,
    FakeResponse,
    FakeServer,
    RateWindow,
    deterministic_bytes,
)
from engine.testing._inject import inject_job_crash
from providers import FakeClock

__all__ = [
    "ClockDriver",
    "FakeClock",
    "FakeFault",
    "FakeRequest",
    "FakeResponse",
    "FakeServer",
    "RateWindow",
    "advance_until",
    "deterministic_bytes",
    "inject_job_crash",
]
