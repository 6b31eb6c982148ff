"""A child process that cancels a job whose remote delete fails, then dies at once.

Run as ``python cleanup_kill_child.py DB``. The engine runs on a FakeClock that
never moves, with the mock's remote side in its state file beside the database.
One link job is created and submitted; the next delete fails (a transient
fault), then the job is cancelled, so the delete waits for its retry 5 fake
seconds away, which never come. Once the store records the delete as owed, the
child prints ``owed REMOTE_ID`` and ends with ``os._exit`` (no stop, no flush).
Exit code 2: no remote item, or the delete was not recorded, in time.
"""

from __future__ import annotations

import os
import sys
import threading

from engine import Engine, EngineConfig
from providers import FakeClock, MockProvider, ProviderRegistry


def main() -> None:
    database = sys.argv[1]
    config = EngineConfig(database=database)
    state_file = config.mock_state_file("mock")
    mock = MockProvider(2.0, state_file=state_file)
    registry = ProviderRegistry()
    registry.register_provider("mock", mock)
    engine = Engine(
        EngineConfig(
            database=database,
            registry=registry,
            clock=FakeClock(),
            providers={"mock": {"poll_interval": 1.0}},
        )
    )
    engine.start()
    job = engine.create_job("mock", {"url": "https://example.com/owed.zip"})
    gate = threading.Event()
    for _ in range(3000):  # at most 30 s
        remote_id = engine.get_job(job.id).remote_id
        if remote_id is not None:
            break
        gate.wait(0.01)
    else:
        os._exit(2)
    mock.inject("transient", op="cancel")
    engine.cancel_job(job.id)
    store = engine._store
    assert store is not None
    for _ in range(3000):
        deletes, _ = store.pending_cleanups("mock")
        if remote_id in deletes and mock.calls["cancel"] >= 1:
            print(f"owed {remote_id}", flush=True)
            os._exit(0)
        gate.wait(0.01)
    os._exit(2)


if __name__ == "__main__":
    main()
