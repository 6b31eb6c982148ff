"""Providers by name."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from providers._errors import DuplicateProvider, UnknownProvider, ValidationError
from providers._protocol import Provider

__all__ = ["ProviderFactory", "ProviderRegistry", "default_registry"]

#: Builds a provider from its options (``providers={"mock": {...}}`` in the config).
ProviderFactory = Callable[..., Provider]


class ProviderRegistry:
    """Maps a provider name to a provider instance or to a factory that builds one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Provider | ProviderFactory] = {}

    def register_provider(self, name: str, provider_or_factory: Provider | ProviderFactory) -> None:
        """Register under ``name``; a name already taken raises ``DuplicateProvider``."""
        if not isinstance(name, str) or not name or not name.replace("-", "_").isidentifier():
            raise ValidationError(
                "name",
                f"invalid provider name {name!r}",
                value=name,
                expected="letters, digits, _ or -",
            )
        with self._lock:
            if name in self._entries:
                raise DuplicateProvider(name)
            self._entries[name] = provider_or_factory

    def unregister(self, name: str) -> None:
        """Forget ``name``; an unknown name raises ``UnknownProvider``."""
        with self._lock:
            if name not in self._entries:
                raise UnknownProvider(name, tuple(self._entries))
            del self._entries[name]

    def get(self, name: str) -> Provider | ProviderFactory:
        """What was registered under ``name``; an unknown name raises ``UnknownProvider``."""
        with self._lock:
            try:
                return self._entries[name]
            except KeyError:
                raise UnknownProvider(name, tuple(sorted(self._entries))) from None

    def create(self, name: str, options: dict[str, Any] | None = None) -> Provider:
        """An instance for ``name``: the registered one, or a new one from its factory."""
        entry = self.get(name)
        if not isinstance(entry, type) and isinstance(entry, Provider):
            if options:
                raise ValidationError(
                    f"providers.{name}",
                    "options given for a provider registered as an instance",
                    expected="no options",
                )
            return entry
        return entry(**(options or {}))

    def names(self) -> tuple[str, ...]:
        """Registered names, sorted."""
        with self._lock:
            return tuple(sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._entries


def default_registry() -> ProviderRegistry:
    """A registry with the built-in providers (mock; realdebrid and torbox once present)."""
    from providers import _builtin  # noqa: PLC0415

    registry = ProviderRegistry()
    for name, factory in _builtin.FACTORIES.items():
        registry.register_provider(name, factory)
    return registry
