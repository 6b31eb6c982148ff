"""A child process that runs an engine on ``EngineConfig()``'s defaults until it is killed.

Run as ``python kill_child.py DB COUNT``. Only the database path differs from the
defaults: the mock provider with 2-second steps, the real clock, the mock's
remote side in its default state file beside the database. The child creates
COUNT jobs in one transaction, prints ``ready COUNT ATTACHED`` as soon as the
first of them has a remote id committed (ATTACHED: how many had by then; the
others are being submitted or answered), then waits for the parent's SIGKILL.
Exit codes: 2 when no job got a remote id in time, 3 when no SIGKILL came.
"""

from __future__ import annotations

import os
import sys
import threading

from engine import Engine, EngineConfig, JobEvent

#: Jobs with a remote id before the child says it is ready to be killed: the first
#: one, so that the kill comes while submissions are still going on (events come in
#: batches: by then about 70-100 of the 100 have one).
ATTACHED_BEFORE_READY = 1


def main() -> None:
    database, count = sys.argv[1], int(sys.argv[2])
    attached: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()

    def on_event(event: JobEvent) -> None:
        if event.job.remote_id is None:
            return
        with lock:
            attached.add(event.job_id)
            if len(attached) >= ATTACHED_BEFORE_READY:
                enough.set()

    engine = Engine(EngineConfig(database=database)).start()
    engine.subscribe(on_event)
    jobs = engine.create_jobs(
        "mock", [{"magnet": f"magnet:?xt=urn:btih:{i + 0xDEAD0000:040x}"} for i in range(count)]
    )
    if not enough.wait(60):
        os._exit(2)
    with lock:
        print(f"ready {len(jobs)} {len(attached)}", flush=True)
    threading.Event().wait(120)  # the parent kills us long before
    os._exit(3)


if __name__ == "__main__":
    main()
