"""EngineConfig: everything an engine needs, with embedded defaults."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import attrs
import platformdirs

from actors import DownloadSettings
from providers import (
    Clock,
    JobStatus,
    MockProvider,
    Provider,
    ProviderRegistry,
    RetryPolicy,
    SecretStore,
    ValidationError,
)

__all__ = ["DEFAULT_STALL_TIMEOUTS", "EngineConfig", "default_database_path"]

#: A job that shows no progress for this long in a state FAILS with code STALLED.
DEFAULT_STALL_TIMEOUTS: dict[JobStatus, float] = {
    JobStatus.RESOLVING: 30 * 60.0,
    JobStatus.DOWNLOADING: 6 * 3600.0,
}


def default_database_path() -> Path:
    """``jobs.db`` in the user's data directory (``DEBRID_DATA_DIR`` overrides it)."""
    base = os.environ.get("DEBRID_DATA_DIR") or platformdirs.user_data_dir("debrid-engine")
    return Path(base) / "jobs.db"


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and value > 0 and value != float("inf")):
        raise ValueError(
            f"EngineConfig.{attribute.name} must be a finite number of seconds above 0, "
            f"got {value!r}"
        )


def _cap(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            f"EngineConfig.{attribute.name}", "not a usable cap", value=value,
            expected="None or a finite number of bytes per second above 0",
        )


def _default_providers() -> dict[str, dict[str, Any]]:
    return {"mock": {"step_seconds": 2.0}}


@attrs.define(kw_only=True)
class EngineConfig:
    """How an engine runs. ``EngineConfig()`` is the embedded default.

    - ``database``: a path or URL (``sqlite:///...``, ``postgresql://...``); None means
      ``jobs.db`` in the user's data directory.
    - ``providers``: options by provider name; each name is built from the registry
      with these options. Two keys are the engine's, not the provider's:
      ``poll_interval`` (seconds between status refreshes) and ``enabled``. A mock
      built from its factory without ``state_file`` keeps its remote side beside a
      file database (see ``mock_state_file``); ``state_file: None`` keeps it in memory.
    - ``registry``: where provider names come from (the built-ins by default); add
      your own providers there.
    - ``clock``: the time source (a ``FakeClock`` in tests).
    - ``retry``: backoff for transient provider failures.
    - ``stall_timeouts``: seconds without progress, per state, before STALLED.
    - ``max_restarts`` in ``restart_window`` seconds: crash restarts allowed per actor.
    - ``max_job_actors``: job actors alive at once (the rest wait QUEUED in the store).
    - ``keep_failed_items``: leave a failed or stalled job's remote item on the
      account (deleted by default: it holds a slot).
    - ``account_fail_after``: how long jobs wait for a provider whose account refuses
      every call (a revoked key, a locked account) before they fail with its code.
    - ``seed``: seeds the retry jitter, for reproducible runs.
    - ``bandwidth_bps``: a cap in bytes per second shared by every local download
      (None: none); per-job caps and changes while running go through
      ``Engine.set_bandwidth``.
    - ``downloads``: how local downloads run (segment size, checkpoints, the speed
      floor below which a transfer is stalled, tries); see ``DownloadSettings``.

    Logging is not configured here: the engine logs through ``logging`` under
    ``debrid.*`` and follows the embedding application's setup (the command line
    uses ``engine._logging.configure_logging``).
    """

    database: str | os.PathLike[str] | None = None
    providers: dict[str, dict[str, Any]] = attrs.field(factory=_default_providers)
    registry: ProviderRegistry | None = None
    clock: Clock | None = None
    secrets: SecretStore | None = None
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    stall_timeouts: dict[JobStatus, float] = attrs.field(
        factory=lambda: dict(DEFAULT_STALL_TIMEOUTS)
    )
    default_poll_interval: float = 2.0
    max_restarts: int = 3
    restart_window: float = 30.0
    max_job_actors: int | None = 2000
    slot_retry_delay: float = 30.0
    #: Seconds the jobs of a provider whose account refuses every call (a revoked
    #: key, a lock) wait for it before they fail with the account's code.
    account_fail_after: float = attrs.field(default=24 * 3600.0, validator=_positive)
    #: Leave the remote item of a job that FAILED (or STALLED) on the account; by
    #: default it is deleted, since it holds one of the account's few slots.
    keep_failed_items: bool = False
    links_retry_interval: float = 5.0
    seed: int | None = None
    bandwidth_bps: float | None = attrs.field(default=None, validator=_cap)
    downloads: DownloadSettings = attrs.field(factory=DownloadSettings)

    def database_target(self) -> str | os.PathLike[str]:
        """The database path or URL to open."""
        return self.database if self.database is not None else default_database_path()

    def mock_state_file(self, name: str) -> Path | None:
        """Where the mock provider ``name`` keeps its remote side by default.

        ``/dir/jobs.db.mock-<name>.sqlite3`` beside a SQLite file database (a path or a
        ``sqlite:///`` URL), so that its items outlive a restart as the jobs do; None
        (in memory) for ``:memory:`` and for other URLs (``postgresql://``), which have
        no directory of their own.
        """
        target = os.fspath(self.database_target())
        if target[: len(_SQLITE_URL)].lower() == _SQLITE_URL:
            target = target[len(_SQLITE_URL) :]
        elif "://" in target:
            return None
        if target in ("", ":memory:"):
            return None
        return Path(f"{Path(target).expanduser()}.mock-{name}.sqlite3")

    def build_providers(self, registry: ProviderRegistry) -> dict[str, tuple[Provider, float]]:
        """Provider instances with their poll intervals, by name."""
        built: dict[str, tuple[Provider, float]] = {}
        for name, raw in self.providers.items():
            options = dict(raw or {})
            interval = float(options.pop("poll_interval", self.default_poll_interval))
            if not options.pop("enabled", True):
                continue
            if "state_file" not in options and _builds_mock(registry, name):
                options["state_file"] = self.mock_state_file(name)
            built[name] = (registry.create(name, options), interval)
        return built


_SQLITE_URL = "sqlite:///"


def _builds_mock(registry: ProviderRegistry, name: str) -> bool:
    """True when ``name`` is registered as the mock's factory (a class), not an instance."""
    entry = registry.get(name)
    return isinstance(entry, type) and issubclass(entry, MockProvider)
