"""Retry with capped exponential backoff and full jitter, honouring Retry-After.

``next_delay`` is the pure policy: the job actor asks it how long to wait and
schedules a retry message instead of sleeping.
"""

from __future__ import annotations

import random

import attrs

from providers._errors import ProviderError

__all__ = ["RetryPolicy", "is_retryable", "next_delay"]


@attrs.frozen
class RetryPolicy:
    """How often and how long to wait between tries.

    The n-th retry (n from 0) waits a random time between 0 and
    ``min(max_delay, initial_delay * backoff_multiplier ** n)`` (full jitter), or
    the provider's ``retry_after`` when that is longer, itself capped at
    ``max_retry_after`` so that a hostile header cannot park a job for a year.
    """

    max_retries: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    initial_delay: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    backoff_multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    max_delay: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(default=3600.0, validator=attrs.validators.ge(0))


def is_retryable(error: BaseException) -> bool:
    """Only a ``ProviderError`` that says so is worth another try."""
    return isinstance(error, ProviderError) and error.retryable


def next_delay(
    attempt: int,
    error: BaseException,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (0-based), or None: give up.

    None when the error is not retryable or ``attempt`` has reached
    ``policy.max_retries``.
    """
    policy = policy or RetryPolicy()
    if attempt >= policy.max_retries or not is_retryable(error):
        return None
    try:
        cap = min(policy.max_delay, policy.initial_delay * policy.backoff_multiplier**attempt)
    except OverflowError:  # some thousand doublings in (a long outage): the cap was reached
        cap = policy.max_delay if policy.initial_delay > 0 else 0.0
    delay = (rng or random).uniform(0, cap)
    retry_after = error.retry_after if isinstance(error, ProviderError) else None
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, policy.max_retry_after))
    return delay

