"""The public surface of ``providers`` changes only on purpose."""

from __future__ import annotations

import providers
from providers import RateLimiter


def test_provider_package_names_change_only_on_purpose() -> None:
    assert sorted(providers.__all__) == [
        "BaseProvider", "Call", "CancelJobResponse", "Clock", "DuplicateProvider",
        "EngineError", "EngineNotRunning", "FakeClock", "FileLinksResponse", "FileSelection",
        "FileTransfer", "InvalidTransition", "Job", "JobErrorInfo", "JobFile", "JobNotFound",
        "JobStatus",
        "JobStatusResponse", "LimiterClosed", "MemorySecretStore", "MockProvider", "Provider",
        "ProviderContext", "ProviderError", "ProviderRegistry", "RateLimit", "RateLimiter",
        "RealClock", "RetryPolicy", "SecretStore", "StartJobPayload", "StartJobResponse",
        "StoreError", "TERMINAL", "TRANSITIONS", "Telemetry", "TelemetrySnapshot",
        "TestConnectionResponse", "Transition",
        "UnknownProvider", "UnstorableValue", "ValidationError", "WaitTimeout",
        "check_transition", "converter", "default_registry", "forward_path", "is_retryable",
        "next_delay", "parse_start_job_payload", "select_files",
    ]
    for name in providers.__all__:
        assert getattr(providers, name) is not None


def test_the_rate_limiter_offers_only_what_the_engine_spends_it_with() -> None:
    # acquire (a provider on its own), delay, eta + take (the provider actor), pauses
    # with their end and reason (health); the test-only try_acquire, execute and
    # pause_until are gone.
    public = {name for name in dir(RateLimiter) if not name.startswith("_")}
    assert public == {
        "acquire", "close", "delay", "eta", "pause_for", "pause_reason", "paused_until", "take"
    }
