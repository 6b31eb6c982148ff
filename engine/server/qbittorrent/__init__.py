"""The qBittorrent-compatible face (``/api/v2``), for Sonarr, Radarr, Lidarr and Prowlarr.

``install(app, engine, options, roots, token)`` adds it to the daemon's app:
``QbitFace`` (the logic, over the engine and its ``ClientBook``), ``QbitAuth``
(login, ``SID``, Basic, Bearer; 403 for no session), ``MainData`` (``sync``
increments) and ``ArrReporter`` (failures told to the *arr app). The contract
is ``docs/qbittorrent.md``.
"""

from engine.server.qbittorrent._arr import ArrReporter
from engine.server.qbittorrent._auth import SID_COOKIE, QbitAuth
from engine.server.qbittorrent._face import QbitFace
from engine.server.qbittorrent._options import ArrTarget, CategoryOptions, QbitOptions
from engine.server.qbittorrent._routes import qbit_routes
from engine.server.qbittorrent._sync import MainData

__all__ = [
    "SID_COOKIE",
    "ArrReporter",
    "ArrTarget",
    "CategoryOptions",
    "MainData",
    "QbitAuth",
    "QbitFace",
    "QbitOptions",
    "qbit_routes",
]
