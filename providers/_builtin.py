"""The providers that ship with debrid-engine, by name (one line each)."""

from __future__ import annotations

from providers._registry import ProviderFactory
from providers.mock import MockProvider
from providers.realdebrid import RealDebridProvider
from providers.torbox import TorBoxProvider

FACTORIES: dict[str, ProviderFactory] = {
    "mock": MockProvider,
    "realdebrid": RealDebridProvider,
    "torbox": TorBoxProvider,
}
