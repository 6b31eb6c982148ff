"""The domain of debrid-engine: jobs and their states, payloads, providers and their utilities.

Everything a user of this package needs is importable from here: the job model
(``Job``, ``JobStatus``, the transition table), what a caller asks for
(``StartJobPayload``, ``parse_start_job_payload``), the ``Provider`` protocol and
its answers, the registry, the exception tree (rooted at ``EngineError``), the
clock, the rate limiter and the retry policy, and the built-in ``MockProvider``.
This package imports nothing of ``persistence``, ``actors`` or ``engine``.
"""

from providers._clock import Clock, FakeClock, RealClock
from providers._convert import converter
from providers._errors import (
    DuplicateProvider,
    EngineError,
    EngineNotRunning,
    InvalidTransition,
    JobNotFound,
    ProviderError,
    StoreError,
    UnknownProvider,
    UnstorableValue,
    ValidationError,
    WaitTimeout,
)
from providers._job import FileTransfer, Job, JobErrorInfo, JobFile, Transition
from providers._payload import FileSelection, StartJobPayload
from providers._protocol import BaseProvider, Call, Provider, ProviderContext
from providers._ratelimit import LimiterClosed, RateLimiter
from providers._registry import ProviderRegistry, default_registry
from providers._responses import (
    CancelJobResponse,
    FileLinksResponse,
    JobStatusResponse,
    RateLimit,
    StartJobResponse,
    TestConnectionResponse,
)
from providers._retry import RetryPolicy, is_retryable, next_delay
from providers._secrets import MemorySecretStore, SecretStore
from providers._selection import select_files
from providers._status import TERMINAL, TRANSITIONS, JobStatus, check_transition, forward_path
from providers._telemetry import Telemetry, TelemetrySnapshot
from providers._validation import parse_start_job_payload
from providers.mock import MockProvider

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "BaseProvider",
    "Call",
    "CancelJobResponse",
    "Clock",
    "DuplicateProvider",
    "EngineError",
    "EngineNotRunning",
    "FakeClock",
    "FileLinksResponse",
    "FileSelection",
    "FileTransfer",
    "InvalidTransition",
    "Job",
    "JobErrorInfo",
    "JobFile",
    "JobNotFound",
    "JobStatus",
    "JobStatusResponse",
    "LimiterClosed",
    "MemorySecretStore",
    "MockProvider",
    "Provider",
    "ProviderContext",
    "ProviderError",
    "ProviderRegistry",
    "RateLimit",
    "RateLimiter",
    "RealClock",
    "RetryPolicy",
    "SecretStore",
    "StartJobPayload",
    "StartJobResponse",
    "StoreError",
    "Telemetry",
    "TelemetrySnapshot",
    "TestConnectionResponse",
    "Transition",
    "UnknownProvider",
    "UnstorableValue",
    "ValidationError",
    "WaitTimeout",
    "check_transition",
    "converter",
    "default_registry",
    "forward_path",
    "is_retryable",
    "next_delay",
    "parse_start_job_payload",
    "select_files",
]
