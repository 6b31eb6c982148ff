"""Restart intensity: the limit, the window, and nothing kept for months."""

from __future__ import annotations

from actors import RestartIntensity
from providers import FakeClock


def test_more_restarts_than_allowed_within_the_window_is_too_many() -> None:
    clock = FakeClock()
    intensity = RestartIntensity(3, 30.0, clock)
    assert [intensity.record("a") for _ in range(4)] == [False, False, False, True]
    clock.advance(31)
    assert intensity.record("a") is False
    assert intensity.count("a") == 1


def test_histories_are_forgotten_and_swept() -> None:
    clock = FakeClock()
    intensity = RestartIntensity(3, 30.0, clock)
    for n in range(1000):
        intensity.record(f"job-{n}")
        clock.advance(1)
    # Every key older than the window has been swept (a sweep runs every 256 records).
    assert len(intensity) <= 256 + 30
    intensity.forget("job-999")
    assert intensity.count("job-999") == 0
