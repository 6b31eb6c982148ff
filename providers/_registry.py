"""Providers by name: registered in code, or discovered by entry point.

A package adds a provider without touching this one by declaring an entry point
in the group ``debrid_engine.providers`` (``ENTRY_POINT_GROUP``) whose name is
the provider's name and whose object is its factory, a class implementing the
``Provider`` protocol::

    [project.entry-points."debrid_engine.providers"]
    example = "debrid_example_provider:ExampleProvider"

A registry made with ``entry_points=True`` (``default_registry()`` is) looks a
name up there only when nothing was registered under it, and loads (imports)
the entry point then, once: the built-ins never depend on a third-party
package importing cleanly, and an entry point named like a built-in is ignored
(logged). A broken entry point (its module does not import, its object is not
a provider factory, two distributions claim the name) is a
``ProviderLoadError`` naming the entry point and its distribution, raised for
that name alone.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from typing import Any

from providers._errors import DuplicateProvider, UnknownProvider, ValidationError
from providers._log import get_logger
from providers._protocol import Provider

__all__ = [
    "ENTRY_POINT_GROUP",
    "ProviderFactory",
    "ProviderLoadError",
    "ProviderRegistry",
    "default_registry",
]

#: The entry-point group that third-party providers are declared in.
ENTRY_POINT_GROUP = "debrid_engine.providers"

#: Builds a provider from its options (``providers={"mock": {...}}`` in the config).
ProviderFactory = Callable[..., Provider]

log = get_logger("debrid.providers.registry")

#: What a class must have to be taken for a provider factory (the protocol's calls).
_PROTOCOL_CALLS = (
    "bind",
    "rate_limits",
    "budgets",
    "start_job",
    "get_status",
    "list_statuses",
    "find_existing",
    "cancel",
    "get_file_links",
    "resolve_download_url",
    "test_connection",
    "close",
)


class ProviderLoadError(UnknownProvider):
    """An entry point for a provider name exists but does not give a usable provider.

    ``entry_point`` is its declaration (``name = module:object``), ``distribution``
    the installed package that declares it (name and version), ``reason`` what went
    wrong. A subclass of ``UnknownProvider``: the name stays unavailable.
    """

    def __init__(
        self, name: str, entry_point: str = "", distribution: str = "", reason: str = ""
    ) -> None:
        super().__init__(name)
        self.entry_point = entry_point
        self.distribution = distribution
        self.reason = reason

    def __str__(self) -> str:
        where = f"entry point {self.entry_point!r} in group {ENTRY_POINT_GROUP!r}"
        if self.distribution:
            where += f" (distribution {self.distribution})"
        return f"provider {self.name!r}: {where} is broken: {self.reason}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.entry_point, self.distribution, self.reason))


class ProviderRegistry:
    """Maps a provider name to a provider instance or to a factory that builds one.

    With ``entry_points=True``, a name that nothing was registered under is looked
    up in the ``debrid_engine.providers`` entry points (see the module docstring).
    """

    def __init__(self, *, entry_points: bool = False) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Provider | ProviderFactory] = {}
        self._use_entry_points = entry_points
        # name -> entry points declaring it; None until the first scan.
        self._found: dict[str, list[importlib.metadata.EntryPoint]] | None = None
        # Names loaded from an entry point (their factories' products are checked).
        self._plugged: set[str] = set()

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
        """What was registered under ``name``, else (with entry points) what its entry
        point names, loaded now; an unknown name raises ``UnknownProvider``, a broken
        entry point ``ProviderLoadError``."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                return entry
            found = self._scan() if self._use_entry_points else {}
            candidates = found.get(name)
            if not candidates:
                raise UnknownProvider(name, tuple(sorted({*self._entries, *found})))
        loaded = _load(name, candidates)  # imports a module: outside the lock
        with self._lock:
            # Another thread may have loaded (or registered) it meanwhile: first one wins.
            entry = self._entries.setdefault(name, loaded)
            if entry is loaded:
                self._plugged.add(name)
        return entry

    def discover(self) -> tuple[str, ...]:
        """Scan the ``debrid_engine.providers`` entry points again (after an install);
        returns the names they offer that are not registered otherwise, sorted.

        Nothing is imported: each is loaded on its first ``get``. A no-op on a registry
        made without ``entry_points``.
        """
        with self._lock:
            if not self._use_entry_points:
                return ()
            self._found = None
            return tuple(sorted(n for n in self._scan() if n not in self._entries))

    def _scan(self) -> dict[str, list[importlib.metadata.EntryPoint]]:
        """Entry points by name, read once (call with the lock held)."""
        if self._found is not None:
            return self._found
        found: dict[str, list[importlib.metadata.EntryPoint]] = {}
        try:
            points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as error:  # noqa: BLE001 - a corrupt metadata file must not hide the built-ins
            log.warning(
                "provider_entry_points_unreadable", error=f"{type(error).__name__}: {error}"
            )
            points = importlib.metadata.EntryPoints(())
        for point in points:
            if point.name in self._entries and point.name not in self._plugged:
                log.warning(
                    "provider_entry_point_shadowed",
                    provider=point.name,
                    entry_point=_describe(point),
                    distribution=_distribution(point),
                )
                continue
            same = found.setdefault(point.name, [])
            # The same package seen twice on the path declares the same object: one.
            if all(p.value != point.value for p in same):
                same.append(point)
        self._found = found
        return found

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
        try:
            provider = entry(**(options or {}))
        except ValidationError:
            raise
        except (TypeError, ValueError) as error:
            # An unknown option or a value of the wrong kind, named for the user (a
            # config file's [providers.<name>] table), not a traceback.
            raise ValidationError(
                f"providers.{name}", f"the provider refused its options: {error}",
                expected=f"the options {name} takes",
            ) from None
        if name in self._plugged and not isinstance(provider, Provider):
            raise ProviderLoadError(
                name,
                reason=f"its factory returned a {type(provider).__name__}, not a Provider",
            )
        return provider

    def names(self) -> tuple[str, ...]:
        """Registered names and (with entry points) the names entry points offer, sorted."""
        with self._lock:
            found = self._scan() if self._use_entry_points else {}
            return tuple(sorted({*self._entries, *found}))

    def __contains__(self, name: object) -> bool:
        with self._lock:
            if name in self._entries:
                return True
            return self._use_entry_points and name in self._scan()


def default_registry() -> ProviderRegistry:
    """A registry with the built-in providers (mock, realdebrid, torbox) that also finds
    providers declared by entry point in ``debrid_engine.providers``."""
    from providers import _builtin  # noqa: PLC0415

    registry = ProviderRegistry(entry_points=True)
    for name, factory in _builtin.FACTORIES.items():
        registry.register_provider(name, factory)
    return registry


def _load(name: str, candidates: list[importlib.metadata.EntryPoint]) -> Provider | ProviderFactory:
    """The factory (or instance) an entry point names, checked; ``ProviderLoadError`` else."""
    point = candidates[0]
    described, distribution = _describe(point), _distribution(point)
    if len(candidates) > 1:
        others = ", ".join(f"{_describe(p)} ({_distribution(p)})" for p in candidates[1:])
        raise ProviderLoadError(
            name, described, distribution, f"the name is also declared by {others}"
        )
    try:
        loaded = point.load()
    except Exception as error:  # whatever its import raises is the plugin's fault
        log.warning(
            "provider_entry_point_broken",
            provider=name,
            entry_point=described,
            distribution=distribution,
            error=type(error).__name__,
        )
        raise ProviderLoadError(
            name, described, distribution, f"loading it raised {type(error).__name__}: {error}"
        ) from error
    if isinstance(loaded, type):
        missing = [call for call in _PROTOCOL_CALLS if not callable(getattr(loaded, call, None))]
        if missing:
            raise ProviderLoadError(
                name,
                described,
                distribution,
                f"{loaded.__qualname__} does not implement the Provider protocol "
                f"(missing: {', '.join(missing)})",
            )
    elif not isinstance(loaded, Provider) and not callable(loaded):
        raise ProviderLoadError(
            name,
            described,
            distribution,
            f"it names a {type(loaded).__name__}, not a provider class or factory",
        )
    log.info(
        "provider_entry_point_loaded",
        provider=name,
        entry_point=described,
        distribution=distribution,
    )
    return loaded  # type: ignore[no-any-return]


def _describe(point: importlib.metadata.EntryPoint) -> str:
    return f"{point.name} = {point.value}"


def _distribution(point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    if dist is None:
        return ""
    try:
        return f"{dist.name} {dist.version}"
    except Exception:  # noqa: BLE001 - metadata without a name or version
        return "?"
