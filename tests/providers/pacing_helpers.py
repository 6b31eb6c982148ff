"""Driving the rate limiter and the retry policy from a test as the engine does."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from providers import Clock, RateLimiter, RetryPolicy, WaitTimeout, next_delay

T = TypeVar("T")


def take_if_ready(limiter: RateLimiter) -> bool:
    """Take a token if one is there now (``acquire`` with no wait); never blocks."""
    try:
        limiter.acquire(timeout=0)
    except WaitTimeout:
        return False
    return True


def with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    clock: Clock,
    *,
    rng: random.Random | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, waiting on ``clock`` what ``next_delay`` says between
    tries (as the job actor schedules its retries); the error escapes when it says stop."""
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as error:
            delay = next_delay(attempt, error, policy, rng)
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(error)
            clock.sleep(delay)
            attempt += 1
