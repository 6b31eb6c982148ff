"""The fake Real-Debrid server: ``FakeRealDebrid``, its per-torrent ``Scenario`` and ``ERRORS``.

The server is in ``_server``; the account model, routes, OAuth state and error
bodies sit beside it as private modules, as ``providers.realdebrid`` is split.
"""

from engine.testing.realdebrid._server import ERRORS, FakeRealDebrid, Scenario

__all__ = ["ERRORS", "FakeRealDebrid", "Scenario"]
