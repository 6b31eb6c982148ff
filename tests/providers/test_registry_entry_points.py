"""Providers found by entry point (group ``debrid_engine.providers``).

Each test "installs" fake distributions: a ``*.dist-info`` directory (METADATA
and entry_points.txt) and the plugin's module in a temporary directory put on
``sys.path``, which is exactly what importlib.metadata reads for a real install.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from providers import MockProvider, Provider, ProviderRegistry, UnknownProvider, default_registry
from providers._registry import ENTRY_POINT_GROUP, ProviderLoadError

STUB = '''
from providers import (
    BaseProvider, CancelJobResponse, FileLinksResponse, JobStatus, JobStatusResponse,
    TestConnectionResponse,
)


class Stub(BaseProvider):
    name = "stub"

    def __init__(self, greeting="hello", name="stub"):
        super().__init__()
        self.greeting = greeting
        self.name = name

    def start_job(self, payload):
        return JobStatusResponse("r1", JobStatus.QUEUED)

    def get_status(self, remote_id):
        return JobStatusResponse(remote_id, JobStatus.QUEUED)

    def list_statuses(self, remote_ids):
        return {rid: self.get_status(rid) for rid in remote_ids}

    def cancel(self, remote_id):
        return CancelJobResponse(remote_id)

    def get_file_links(self, remote_id, payload):
        return FileLinksResponse(remote_id, ())

    def test_connection(self):
        return TestConnectionResponse(self.name, ok=True)


class NotAProvider:
    def start_job(self, payload):
        return None


def returns_junk(**options):
    return object()


NOT_CALLABLE = 42
'''

Install = Callable[..., str]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install(dist, {"name": "object"}, module_source)`` -> the module's (unique) name.

    ``object`` is ``attr`` (of the module installed with it) or a full ``mod:attr``.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def make(dist: str, points: dict[str, str], source: str | None = STUB) -> str:
        module = f"fakeplugin_{uuid.uuid4().hex[:8]}"
        if source is not None:
            (site / f"{module}.py").write_text(source)
            modules.append(module)
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = [f"[{ENTRY_POINT_GROUP}]"]
        for name, target in points.items():
            lines.append(f"{name} = {target if ':' in target else f'{module}:{target}'}")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()
        return module

    yield make
    for module in modules:
        sys.modules.pop(module, None)


def test_a_provider_declared_by_entry_point_is_built_by_name(install: Install) -> None:
    module = install("debrid-stub", {"stub": "Stub"})
    registry = default_registry()
    assert "stub" in registry
    assert "stub" in registry.names()
    assert module not in sys.modules  # found, not imported yet
    provider = registry.create("stub", {"greeting": "hi"})
    assert isinstance(provider, Provider)
    assert (type(provider).__name__, getattr(provider, "greeting", None)) == ("Stub", "hi")
    assert module in sys.modules
    assert registry.get("stub") is registry.get("stub")  # loaded once


def test_a_plain_registry_does_not_look_at_entry_points(install: Install) -> None:
    install("debrid-stub", {"stub": "Stub"})
    registry = ProviderRegistry()
    assert "stub" not in registry
    with pytest.raises(UnknownProvider):
        registry.get("stub")
    assert registry.discover() == ()


def test_an_entry_point_never_shadows_a_built_in(install: Install) -> None:
    module = install("debrid-evil", {"mock": "Stub"})
    registry = default_registry()
    assert registry.get("mock") is MockProvider
    assert registry.names().count("mock") == 1
    assert module not in sys.modules


def test_a_broken_entry_point_names_itself_and_leaves_the_rest_working(
    install: Install,
) -> None:
    install("debrid-broken", {"broken": "Stub"}, source="raise ImportError('needs libfoo')\n")
    install("debrid-stub", {"stub": "Stub"})
    registry = default_registry()
    assert {"broken", "stub", "mock", "realdebrid", "torbox"} <= set(registry.names())
    with pytest.raises(ProviderLoadError) as caught:
        registry.create("broken")
    error = caught.value
    assert isinstance(error, UnknownProvider)
    assert error.name == "broken"
    assert error.distribution == "debrid-broken 1.0"
    assert error.entry_point.startswith("broken = fakeplugin_")
    text = str(error)
    assert "'broken'" in text and "debrid_engine.providers" in text
    assert "debrid-broken 1.0" in text and "ImportError: needs libfoo" in text
    # The built-ins and the other plugin do not notice.
    assert isinstance(registry.create("mock", {"step_seconds": 0}), MockProvider)
    assert type(registry.create("stub")).__name__ == "Stub"


def test_a_missing_module_or_attribute_is_a_load_error(install: Install) -> None:
    install("debrid-gone", {"gone": "no_such_module_xyz:Thing"}, source=None)
    install("debrid-typo", {"typo": "Stubb"})
    registry = default_registry()
    with pytest.raises(ProviderLoadError, match="ModuleNotFoundError"):
        registry.get("gone")
    with pytest.raises(ProviderLoadError, match="AttributeError"):
        registry.get("typo")


def test_an_entry_point_that_is_not_a_provider_is_refused(install: Install) -> None:
    install(
        "debrid-odd",
        {"half": "NotAProvider", "number": "NOT_CALLABLE", "junk": "returns_junk"},
    )
    registry = default_registry()
    with pytest.raises(ProviderLoadError, match=r"does not implement the Provider protocol"):
        registry.get("half")
    with pytest.raises(ProviderLoadError, match="missing: bind, rate_limits"):
        registry.get("half")
    with pytest.raises(ProviderLoadError, match="names a int"):
        registry.get("number")
    with pytest.raises(ProviderLoadError, match="returned a object, not a Provider"):
        registry.create("junk")


def test_two_distributions_claiming_one_name_is_an_error_naming_both(install: Install) -> None:
    install("debrid-one", {"twin": "Stub"})
    install("debrid-two", {"twin": "Stub"})
    with pytest.raises(ProviderLoadError) as caught:
        default_registry().get("twin")
    text = str(caught.value)
    assert "debrid-one 1.0" in text and "debrid-two 1.0" in text


def test_discover_finds_what_was_installed_after_the_first_scan(install: Install) -> None:
    registry = default_registry()
    with pytest.raises(UnknownProvider) as caught:
        registry.get("late")
    assert "mock" in caught.value.known
    install("debrid-late", {"late": "Stub"})
    assert "late" not in registry  # the scan is cached...
    assert "late" in registry.discover()  # ...until discover() reads again
    assert type(registry.create("late")).__name__ == "Stub"


def test_unreadable_metadata_never_breaks_the_built_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_: object) -> object:
        raise OSError("corrupt RECORD")

    monkeypatch.setattr(importlib.metadata, "entry_points", broken)
    registry = default_registry()
    assert registry.names() == ("mock", "realdebrid", "torbox")
    assert registry.get("mock") is MockProvider
    with pytest.raises(UnknownProvider):
        registry.get("example")


def test_a_faked_entry_points_function_is_what_the_registry_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    point = importlib.metadata.EntryPoint(
        "fromfake", "providers.mock:MockProvider", ENTRY_POINT_GROUP
    )
    groups: list[object] = []

    def fake(**selection: object) -> importlib.metadata.EntryPoints:
        groups.append(selection.get("group"))
        return importlib.metadata.EntryPoints((point,))

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    registry = default_registry()
    assert registry.get("fromfake") is MockProvider
    assert groups == [ENTRY_POINT_GROUP]


def test_a_load_error_survives_pickling() -> None:
    error = ProviderLoadError("x", "x = m:C", "dist 1.0", "boom")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is ProviderLoadError
    assert str(again) == str(error)
