"""A child process that runs an engine and dies with ``os._exit(1)`` at a chosen point.

Run as ``python crash_child.py DB STATE_FILE POINT N``. The mock provider keeps
its "remote" side in STATE_FILE, so the parent can check after the crash that
no job was submitted twice. Points:

- ``after_create``: right after create_jobs returned (rows committed, some
  submissions perhaps sent);
- ``in_submit``: inside the provider, after the remote job was made and saved
  but before the engine heard of it (the most dangerous window);
- ``at_resolving`` / ``at_downloading``: when the first job's RESOLVING or
  DOWNLOADING is committed.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from engine import Engine, EngineConfig, JobEvent, JobStatus
from engine.testing import ClockDriver
from providers import FakeClock, MockProvider, ProviderRegistry, StartJobPayload


class CrashingMock(MockProvider):
    """Dies inside ``start_job`` once the remote job exists, on the k-th submission."""

    def __init__(self, *args: Any, die_on: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.die_on = die_on
        self.started = 0

    def start_job(self, payload: StartJobPayload) -> Any:
        response = super().start_job(payload)
        self.started += 1
        if self.die_on is not None and self.started >= self.die_on:
            os._exit(1)
        return response


def main() -> None:
    database, state_file, point, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    clock = FakeClock(start_wall=1_800_000_000.0)
    mock = CrashingMock(1.0, state_file=state_file, die_on=3 if point == "in_submit" else None)
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    config = EngineConfig(
        database=database,
        registry=registry,
        clock=clock,
        providers={"mock": {"poll_interval": 0.5}},
    )
    target = {"at_resolving": JobStatus.RESOLVING, "at_downloading": JobStatus.DOWNLOADING}.get(
        point
    )

    def on_event(event: JobEvent) -> None:
        if target is not None and event.job.status is target:
            os._exit(1)

    engine = Engine(config).start()
    engine.subscribe(on_event)
    # One transaction, so every row exists before the first submission can crash us.
    engine.create_jobs("mock", [{"magnet": f"magnet:?xt=urn:btih:{i:040x}"} for i in range(count)])
    if point == "after_create":
        os._exit(1)
    with ClockDriver(clock, step=0.25):
        for job in engine.list_jobs(limit=None):
            engine.wait(job.id, timeout=60)
    os._exit(3)  # reaching the end means the crash point was never hit


if __name__ == "__main__":
    main()
