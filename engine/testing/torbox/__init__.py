"""The fake TorBox server: ``FakeTorBox``, its ``TorBoxSettings`` and ``SCENARIOS``.

The server is in ``_server``; the account, item model, routes, reads and wire
format sit beside it as private modules, as ``providers.torbox`` is split.
"""

from engine.testing.torbox._server import SCENARIOS, FakeTorBox, TorBoxSettings

__all__ = ["SCENARIOS", "FakeTorBox", "TorBoxSettings"]
