"""A refused credential is not sent again at once: the hold after a BAD_TOKEN.

Without it every call with a revoked token costs the service a refused request
(three on Real-Debrid in OAuth mode: the request, the refresh, the repeat), as
fast as the engine calls. After a refusal, calls with the same credentials fail
at once with the same error, sending nothing, for ``FIRST_HOLD`` seconds; a
refusal again after that holds twice as long, up to ``MAX_HOLD``. A change of
credentials (another generation of the provider's ``SecretView``: a new key, a
new login, the secrets file rewritten by another process) or an answer that
accepts them ends the hold at once.
"""

from __future__ import annotations

from collections.abc import Callable

from providers._clock import Clock
from providers._errors import ProviderError

__all__ = ["FIRST_HOLD", "MAX_HOLD", "AuthHold"]

FIRST_HOLD = 15.0
MAX_HOLD = 60.0


class AuthHold:
    """The last refusal of a provider's credentials, and until when it holds (monotonic)."""

    def __init__(self, clock: Callable[[], Clock]) -> None:
        self._clock = clock
        self._refusal: ProviderError | None = None
        self._generation = -1
        self._until = 0.0
        self._hold = 0.0

    def check(self, generation: int) -> None:
        """Raise the refusal again, sending nothing, while it holds for these credentials."""
        refusal = self._refusal
        if refusal is None:
            return
        if generation != self._generation:
            self.clear()  # other credentials: they get their chance at once
            return
        left = self._until - self._clock().monotonic()
        if left > 0:
            raise ProviderError(
                f"{refusal.message} (not sent again for {left:.0f} s, or until the "
                f"credentials change)",
                refusal.provider, code=refusal.code, http_status=refusal.http_status,
                retryable=refusal.retryable, retry_after=refusal.retry_after,
            )

    def refused(self, error: ProviderError, generation: int) -> None:
        """The service refused the credentials of ``generation``: hold, longer each time."""
        again = self._refusal is not None and generation == self._generation
        self._hold = min(self._hold * 2, MAX_HOLD) if again else FIRST_HOLD
        self._refusal, self._generation = error, generation
        self._until = self._clock().monotonic() + self._hold

    def clear(self) -> None:
        """The credentials work (or changed): no hold."""
        self._refusal, self._hold = None, 0.0
