"""next_delay: capped exponential backoff, full jitter, Retry-After."""

from __future__ import annotations

import random

import pytest

from providers import ProviderError, RetryPolicy, is_retryable, next_delay


class HighRandom(random.Random):
    """Jitter always at the top of its range."""

    def uniform(self, a: float, b: float) -> float:
        return b


class LowRandom(random.Random):
    """Jitter always at the bottom of its range."""

    def uniform(self, a: float, b: float) -> float:
        return a


def transient(retry_after: float | None = None) -> ProviderError:
    return ProviderError("busy", "mock", "PROVIDER_UNAVAILABLE", 503, True, retry_after)


FATAL = ProviderError("bad token", "mock", "BAD_TOKEN", 401, retryable=False)
POLICY = RetryPolicy(max_retries=10, initial_delay=1.0, backoff_multiplier=2.0, max_delay=60.0)


@pytest.mark.parametrize("attempt", range(10))
def test_next_delay_stays_within_the_full_jitter_bounds(attempt: int) -> None:
    cap = min(60.0, 2.0**attempt)
    rng = random.Random(attempt)
    delays = [next_delay(attempt, transient(), POLICY, rng) for _ in range(200)]
    assert all(d is not None and 0 <= d <= cap for d in delays)


def test_next_delay_jitter_spans_zero_to_the_exponential_step() -> None:
    assert [next_delay(n, transient(), POLICY, HighRandom()) for n in range(4)] == [1, 2, 4, 8]
    assert next_delay(3, transient(), POLICY, LowRandom()) == 0


def test_next_delay_is_capped_at_max_delay() -> None:
    assert next_delay(9, transient(), POLICY, HighRandom()) == 60.0


def test_next_delay_stays_capped_after_thousands_of_attempts() -> None:
    # 2.0 ** 1100 overflows a float: a long outage must not crash the policy.
    policy = RetryPolicy(max_retries=10**6, max_delay=60.0)
    assert next_delay(1100, transient(), policy, HighRandom()) == 60.0
    still_zero = RetryPolicy(max_retries=10**6, initial_delay=0)
    assert next_delay(1100, transient(), still_zero, HighRandom()) == 0.0


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    assert next_delay(0, transient(retry_after=30), POLICY, LowRandom()) == 30
    # A shorter Retry-After does not cut the backoff.
    assert next_delay(5, transient(retry_after=1), POLICY, HighRandom()) == 32


def test_retry_after_is_capped_at_max_retry_after() -> None:
    policy = RetryPolicy(max_retry_after=600)
    assert next_delay(0, transient(retry_after=10**9), policy, LowRandom()) == 600


def test_non_retryable_errors_get_no_retry() -> None:
    assert next_delay(0, FATAL, POLICY) is None
    assert next_delay(0, ValueError("bug"), POLICY) is None
    assert not is_retryable(RuntimeError("x"))
    assert is_retryable(transient())


def test_no_retry_once_max_retries_is_reached() -> None:
    policy = RetryPolicy(max_retries=3)
    assert next_delay(2, transient(), policy, LowRandom()) == 0
    assert next_delay(3, transient(), policy) is None
