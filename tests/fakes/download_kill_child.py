"""A child process that downloads one TorBox job until it is killed mid-file.

Run as ``python download_kill_child.py DB OPTIONS_JSON MAGNET DIR THRESHOLD``. The
engine talks to the parent's fake TorBox (``OPTIONS_JSON``: the provider's
options); once the job's file has ``THRESHOLD`` bytes recorded on disk the child
prints ``ready BYTES`` and waits for the parent's SIGKILL. Exit codes: 2 when the
threshold was not reached in time, 3 when no SIGKILL came.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from actors import DownloadSettings
from engine import Engine, EngineConfig, JobEvent


def main() -> None:
    database, options, magnet, directory, threshold = sys.argv[1:6]
    reached = threading.Event()
    recorded: list[int] = []

    def on_event(event: JobEvent) -> None:
        files = event.job.files
        if files and files[0].bytes_done >= int(threshold):
            recorded.append(files[0].bytes_done)
            reached.set()

    config = EngineConfig(
        database=database,
        stall_timeouts={},
        providers={"torbox": {**json.loads(options), "poll_interval": 0.2}},
        downloads=DownloadSettings(min_split=64 * 1024, checkpoint_bytes=64 * 1024,
                                   chunk_size=16 * 1024),
    )
    engine = Engine(config).start()
    engine.subscribe(on_event)
    engine.create_job("torbox", {"magnet": magnet, "download_dir": directory})
    if not reached.wait(60):
        os._exit(2)
    print(f"ready {recorded[0]}", flush=True)
    threading.Event().wait(120)  # the parent kills us long before
    os._exit(3)


if __name__ == "__main__":
    main()
