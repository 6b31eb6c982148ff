"""ProviderRegistry: names to provider instances or factories, with clear errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from providers import (
    BaseProvider,
    CancelJobResponse,
    DuplicateProvider,
    EngineError,
    FileLinksResponse,
    JobStatus,
    JobStatusResponse,
    MockProvider,
    Provider,
    ProviderRegistry,
    StartJobPayload,
    TestConnectionResponse,
    UnknownProvider,
    ValidationError,
    default_registry,
)


class StubProvider(BaseProvider):
    """The smallest complete provider: answers everything with fixed values."""

    def __init__(self, name: str = "stub", **options: Any) -> None:
        super().__init__()
        self.name = name
        self.options = options

    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        return JobStatusResponse("r1", JobStatus.QUEUED)

    def get_status(self, remote_id: str) -> JobStatusResponse:
        return JobStatusResponse(remote_id, JobStatus.QUEUED)

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        return {rid: self.get_status(rid) for rid in remote_ids}

    def cancel(self, remote_id: str) -> CancelJobResponse:
        return CancelJobResponse(remote_id)

    def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
        return FileLinksResponse(remote_id, ())

    def test_connection(self) -> TestConnectionResponse:
        return TestConnectionResponse(self.name, ok=True)


def test_a_registered_instance_is_handed_out_as_it_is() -> None:
    registry = ProviderRegistry()
    stub = StubProvider()
    assert isinstance(stub, Provider)
    registry.register_provider("stub", stub)
    assert registry.get("stub") is stub
    assert registry.create("stub") is stub


def test_a_registered_factory_builds_a_new_provider_with_the_options() -> None:
    registry = ProviderRegistry()
    registry.register_provider("stub", StubProvider)
    first = registry.create("stub", {"name": "custom", "region": "eu"})
    second = registry.create("stub")
    assert isinstance(first, StubProvider)
    assert isinstance(second, StubProvider)
    assert first is not second
    assert (first.name, first.options) == ("custom", {"region": "eu"})


def test_a_plain_function_works_as_a_factory() -> None:
    registry = ProviderRegistry()
    registry.register_provider("stub", lambda **options: StubProvider("fn", **options))
    created = registry.create("stub", {"x": 1})
    assert isinstance(created, StubProvider)
    assert (created.name, created.options) == ("fn", {"x": 1})


def test_options_for_a_registered_instance_are_an_error() -> None:
    registry = ProviderRegistry()
    registry.register_provider("stub", StubProvider())
    with pytest.raises(ValidationError) as info:
        registry.create("stub", {"step_seconds": 1})
    assert info.value.field == "providers.stub"


def test_registering_a_name_twice_raises_duplicate_provider() -> None:
    registry = ProviderRegistry()
    registry.register_provider("stub", StubProvider)
    with pytest.raises(DuplicateProvider, match="'stub' is already registered") as info:
        registry.register_provider("stub", StubProvider())
    assert info.value.name == "stub"
    assert isinstance(info.value, EngineError)
    assert isinstance(registry.create("stub"), StubProvider)  # the first one stays


def test_an_unknown_name_raises_unknown_provider_listing_the_known_ones() -> None:
    registry = ProviderRegistry()
    registry.register_provider("zeta", StubProvider)
    registry.register_provider("alpha", StubProvider)
    with pytest.raises(UnknownProvider) as info:
        registry.create("beta")
    assert str(info.value) == "unknown provider 'beta' (registered: alpha, zeta)"
    assert info.value.name == "beta"
    assert isinstance(info.value, KeyError)


def test_an_empty_registry_says_none_are_registered() -> None:
    with pytest.raises(UnknownProvider, match=r"registered: none"):
        ProviderRegistry().get("mock")


@pytest.mark.parametrize("name", ["", "has space", "a/b", "ünï code!", 5])
def test_an_invalid_name_is_refused(name: Any) -> None:
    with pytest.raises(ValidationError) as info:
        ProviderRegistry().register_provider(name, StubProvider)
    assert info.value.field == "name"


def test_names_with_dashes_and_underscores_are_fine() -> None:
    registry = ProviderRegistry()
    registry.register_provider("real-debrid_2", StubProvider)
    assert "real-debrid_2" in registry


def test_unregister_forgets_a_name_and_refuses_an_unknown_one() -> None:
    registry = ProviderRegistry()
    registry.register_provider("stub", StubProvider)
    registry.unregister("stub")
    assert "stub" not in registry
    assert registry.names() == ()
    with pytest.raises(UnknownProvider):
        registry.unregister("stub")
    registry.register_provider("stub", StubProvider)  # the name is free again
    assert registry.names() == ("stub",)


def test_names_are_sorted() -> None:
    registry = ProviderRegistry()
    for name in ("torbox", "mock", "realdebrid"):
        registry.register_provider(name, StubProvider)
    assert registry.names() == ("mock", "realdebrid", "torbox")


def test_default_registry_has_the_mock_provider_and_fresh_registries_are_independent() -> None:
    registry = default_registry()
    assert "mock" in registry.names()
    mock = registry.create("mock", {"step_seconds": 0})
    assert isinstance(mock, MockProvider)
    registry.register_provider("extra", StubProvider)
    assert "extra" not in default_registry()
