"""next_delay (capped exponential backoff, full jitter, Retry-After) and the retry loop."""

from __future__ import annotations

import random

import pytest

from providers import FakeClock, ProviderError, RetryPolicy, is_retryable, next_delay, retry


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


def test_retry_succeeds_after_transient_errors_waiting_on_the_clock() -> None:
    clock = FakeClock(autojump=True)
    calls: list[int] = []
    waits: list[tuple[int, BaseException, float]] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise transient()
        return "ok"

    result = retry(
        flaky,
        max_retries=5,
        clock=clock,
        rng=HighRandom(),
        on_retry=lambda attempt, error, delay: waits.append((attempt, error, delay)),
    )
    assert result == "ok"
    assert len(calls) == 3
    assert [(attempt, delay) for attempt, _, delay in waits] == [(0, 1.0), (1, 2.0)]
    assert all(isinstance(error, ProviderError) for _, error, _ in waits)
    assert clock.monotonic() == 3.0


def test_retry_reraises_a_non_retryable_error_at_once() -> None:
    clock = FakeClock(autojump=True)
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise FATAL

    with pytest.raises(ProviderError) as info:
        retry(broken, clock=clock)
    assert info.value is FATAL
    assert len(calls) == 1
    assert clock.monotonic() == 0


def test_retry_reraises_the_last_error_when_retries_run_out() -> None:
    clock = FakeClock(autojump=True)
    errors = [transient() for _ in range(3)]
    remaining = list(errors)

    def always_busy() -> None:
        raise remaining.pop(0)

    with pytest.raises(ProviderError) as info:
        retry(always_busy, max_retries=2, clock=clock, rng=LowRandom())
    assert info.value is errors[2]
    assert remaining == []


def test_retry_waits_the_providers_retry_after() -> None:
    clock = FakeClock(autojump=True)
    outcomes: list[ProviderError | None] = [transient(retry_after=45), None]

    def once_limited() -> str:
        error = outcomes.pop(0)
        if error is not None:
            raise error
        return "done"

    assert retry(once_limited, clock=clock, rng=LowRandom()) == "done"
    assert clock.monotonic() == 45
