"""``create_jobs(ids=...)``: ids the caller chose, checked by the facade and by the supervisor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import Engine, EngineConfig
from providers import FakeClock, JobStatus, MockProvider, ProviderRegistry, ValidationError


def make_engine(tmp_path: Path) -> Engine:
    registry = ProviderRegistry()
    registry.register_provider("mock", MockProvider(1.0))
    return Engine(EngineConfig(database=tmp_path / "jobs.db",
                               providers={"mock": {"poll_interval": 0.5}},
                               registry=registry, clock=FakeClock(), stall_timeouts={}))


def test_chosen_ids_are_used_and_checked(tmp_path: Path) -> None:
    with make_engine(tmp_path) as engine:
        [job] = engine.create_jobs("mock", [{"url": "https://x.example/a"}], ids=["my-id_1"])
        assert job.id == "my-id_1" and engine.get_job("my-id_1").status is JobStatus.QUEUED
        with pytest.raises(ValidationError, match="already a job's id"):
            engine.create_jobs("mock", [{"url": "https://x.example/b"}], ids=["my-id_1"])
        with pytest.raises(ValidationError) as bad:
            engine.create_jobs("mock", [{"url": "https://x.example/b"}], ids=["bad id!"])
        assert bad.value.field == "ids[0]"
        with pytest.raises(ValidationError, match="one id per payload"):
            engine.create_jobs("mock", [{"url": "https://x.example/b"}], ids=[])
        with pytest.raises(ValidationError, match="twice"):
            engine.create_jobs("mock", [{"url": "https://x.example/b"}] * 2, ids=["d", "d"])


def test_the_supervisor_refuses_an_id_the_facade_let_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression (review): the facade checks committed rows only, so two callers
    # with one id could both pass it; the supervisor then overwrote the first job
    # and started a second actor for it. Here the facade's check is skipped, as a
    # caller that raced another would have passed it.
    with make_engine(tmp_path) as engine:
        [first] = engine.create_jobs("mock", [{"url": "https://x.example/a"}], ids=["X"])

        def unchecked(ids: Any, _count: int) -> list[str]:
            return list(ids)

        monkeypatch.setattr(engine, "_check_new_ids", unchecked)
        with pytest.raises(ValidationError, match="already a job's id"):
            engine.create_jobs("mock", [{"url": "https://x.example/b"}], ids=["X"])
        kept = engine.get_job("X")
        assert kept.payload.url == "https://x.example/a" and kept.created_at == first.created_at
        assert [t.from_status for t in engine._running_store().transitions("X")] == [None]
        assert len(engine.list_jobs()) == 1
