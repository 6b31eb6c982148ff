"""An add is crash-safe: killed between its two commits, the next start finishes it, once.

``QbitFace.add`` commits the item with its future job id first, then makes the
job, then drops the payload it held. The child process below is killed
(``os._exit``) at each point between; the parent then opens the same database
and checks that ``recover`` leaves exactly one job per item, under the item's id.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import Engine, EngineConfig
from engine.server.qbittorrent import QbitFace, QbitOptions

HASH = "cd" * 20

CHILD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from engine import Engine, EngineConfig
    from engine.server.qbittorrent import QbitFace, QbitOptions
    from engine.server.qbittorrent._face import Source

    database, root, point = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    engine = Engine(EngineConfig(database=database)).start()
    face = QbitFace(engine, QbitOptions(), [root])
    create = engine.create_jobs

    def dying(*args, **kwargs):
        if point == "before_job":
            os._exit(9)
        made = create(*args, **kwargs)
        os._exit(9)  # the job is committed; the item still holds its payload

    engine.create_jobs = dying
    face.add([Source(magnet="magnet:?xt=urn:btih:HASH&dn=Crash")], category="tv")
    os._exit(3)  # not reached: the add dies first
""").replace("HASH", HASH)


@pytest.mark.parametrize("point", ["before_job", "after_job"])
def test_a_crash_inside_an_add_is_finished_on_the_next_start(tmp_path: Path, point: str) -> None:
    database, root = tmp_path / "jobs.db", tmp_path / "downloads"
    root.mkdir()
    child = subprocess.run([sys.executable, "-c", CHILD, str(database), str(root), point],
                           capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 9, child.stderr[-2000:]
    with Engine(EngineConfig(database=database)) as engine:
        book = engine.client_book()
        [left] = book.items()
        assert left.held is not None and left.job_id is not None  # cut between the commits
        assert len(engine.list_jobs()) == (1 if point == "after_job" else 0)
        face = QbitFace(engine, QbitOptions(), [root])
        face.recover()
        assert face.recover() == 0  # a second start finds nothing left to do
        jobs = engine.list_jobs()
        assert [j.id for j in jobs] == [left.job_id]
        assert jobs[0].payload.info_hash == HASH
        assert jobs[0].payload.download_dir == left.folder
        [done] = book.items()
        assert done.held is None and done.category == "tv"
        assert [t["hash"] for t in face.torrents()] == [HASH]
