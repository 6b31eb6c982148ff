"""debrid-engine: hand download jobs to debrid services and never lose one.

    from engine import Engine, EngineConfig

    with Engine(EngineConfig(database="jobs.db")) as engine:
        job = engine.create_job("mock", {"url": "https://example.com/file.zip"})
        job = engine.wait(job.id, timeout=60)

Every name an embedder needs is importable from here; ``engine.testing`` has the
fake clock and fake provider servers for their own tests.
"""

from actors import JobEvent
from engine._config import EngineConfig
from engine._engine import Engine
from providers import (
    DuplicateProvider,
    EngineError,
    EngineNotRunning,
    FileSelection,
    InvalidTransition,
    Job,
    JobErrorInfo,
    JobFile,
    JobNotFound,
    JobStatus,
    ProviderError,
    StartJobPayload,
    StoreError,
    TestConnectionResponse,
    UnknownProvider,
    ValidationError,
    WaitTimeout,
)

__all__ = [
    "DuplicateProvider",
    "Engine",
    "EngineConfig",
    "EngineError",
    "EngineNotRunning",
    "FileSelection",
    "InvalidTransition",
    "Job",
    "JobErrorInfo",
    "JobEvent",
    "JobFile",
    "JobNotFound",
    "JobStatus",
    "ProviderError",
    "StartJobPayload",
    "StoreError",
    "TestConnectionResponse",
    "UnknownProvider",
    "ValidationError",
    "WaitTimeout",
]
