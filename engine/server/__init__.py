"""The daemon's control API: a Starlette app over an ``Engine``, and the runner that serves it.

    from engine import Engine, EngineConfig
    from engine.server import Daemon, ServerOptions

    with Engine(EngineConfig()) as engine:
        daemon = Daemon(engine, ServerOptions(token="..."))
        url = daemon.start()              # http://127.0.0.1:8686
        print(daemon.login_url())         # a one-time link that sets the session cookie
        ...
        daemon.stop()

``create_app`` builds the app alone (to mount elsewhere); ``run_daemon`` is
``debrid serve``. The routes, the error answers and the security rules are
those of ``docs/faces.md`` (Daemon, Control API).
"""

from engine.server._app import STATIC_DIR, ServerOptions, create_app
from engine.server._daemon import Daemon, run_daemon
from engine.server._events import EventHub
from engine.server._openapi import openapi_document

__all__ = [
    "STATIC_DIR",
    "Daemon",
    "EventHub",
    "ServerOptions",
    "create_app",
    "openapi_document",
    "run_daemon",
]
