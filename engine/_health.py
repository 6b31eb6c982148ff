"""``Engine.health()``: what a daemon's health endpoint reports, not just "the process answers"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["HealthReport", "ProviderHealth", "ProviderState", "SupervisorState"]

SupervisorState = Literal["running", "restarting", "failed", "stopped"]
#: ``auth_failed``: the service refuses the credentials; ``account_refused``: it
#: refuses the account otherwise (locked, not activated, premium gone).
ProviderState = Literal["ok", "auth_failed", "account_refused", "down"]


@attrs.frozen
class ProviderHealth:
    """One provider as the engine sees it now."""

    name: str
    #: Its actor is running (False while it is being restarted).
    alive: bool
    #: ``ok`` while the account answers; otherwise why its jobs wait.
    state: ProviderState = "ok"
    #: While not ``ok``: the refusal (code and message), since when, and when the
    #: jobs that wait for the account fail (epoch seconds).
    account_error: str | None = None
    account_since: float | None = None
    account_fail_at: float | None = None
    #: Submissions answered unsent after a slot refusal or cooldown: its code and end.
    submissions_held: tuple[str, float] | None = None
    slots_used: int = 0
    #: The slot limit in force (None: no limit known).
    slot_limit: int | None = None
    #: Until when (epoch seconds) new submissions wait after a slot refusal.
    admission_paused_until: float | None = None
    #: Bucket pauses (a 429 or a Retry-After): bucket -> until (epoch seconds).
    paused_until: Mapping[str, float] = attrs.field(factory=dict)
    #: Why each of those buckets is paused: bucket -> reason.
    pause_reasons: Mapping[str, str] = attrs.field(factory=dict)
    #: Budgets that queued calls wait for: bucket -> when the next token is due (epoch seconds).
    waiting_for: Mapping[str, float] = attrs.field(factory=dict)
    #: Calls waiting in its queue, by kind.
    queued: Mapping[str, int] = attrs.field(factory=dict)
    tracked: int = 0
    #: Jobs waiting for a slot, in memory (``backlog`` says more may be in the store).
    waiting: int = 0
    backlog: bool = False
    last_error: str | None = None


@attrs.frozen
class HealthReport:
    """Liveness and readiness of an engine, with the figures behind them.

    ``live``: the supervisor runs (or is being restarted). ``ready``: it runs,
    the store answers, and every provider actor is up with an account that
    answers (state ``ok``). ``ok`` is ``ready``.
    """

    supervisor: SupervisorState
    live: bool
    ready: bool
    store_ok: bool
    store: str
    supervisor_restarts: int = 0
    failure: str | None = None
    store_error: str | None = None
    providers: Mapping[str, ProviderHealth] = attrs.field(factory=dict)
    #: Jobs per status (from the store).
    jobs: Mapping[str, int] = attrs.field(factory=dict)
    job_actors: int = 0
    pending_writes: int = 0
    write_failures: int = 0
    events_dropped: int = 0

    @property
    def ok(self) -> bool:
        """Ready to take and run jobs."""
        return self.ready

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = attrs.asdict(self, recurse=True)
        data["ok"] = self.ok
        return data
