"""``python -m engine``: the embedded default downloads its demo jobs for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.__main__ import main


def test_the_demo_lands_every_file_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--database", str(tmp_path / "jobs.db"), "--step", "0.05"]) == 0
    out = capsys.readouterr().out
    files = [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]
    assert files and not any(p.suffix == ".part" for p in files)
    assert out.count("(size+md5)") == len(files)
    assert "not verified" not in out and f"files: {tmp_path / 'downloads'}" in out
