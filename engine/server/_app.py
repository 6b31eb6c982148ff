"""``create_app``: the daemon's Starlette app (routes, security layers, error answers)."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from engine.server._errors import CatchAll, error_response, exception_handlers
from engine.server._events import EventHub
from engine.server._jobs_api import invalid, job_routes
from engine.server._metrics import make_registry, scrape
from engine.server._openapi import openapi_routes
from engine.server._providers_api import provider_routes
from engine.server._security import (
    CSRF_HEADER,
    Authenticate,
    BodyLimit,
    FailedLogins,
    HostCheck,
    Sessions,
    session_cookie_header,
    too_many_attempts,
)
from engine.server.qbittorrent import (
    ArrReporter,
    MainData,
    QbitAuth,
    QbitFace,
    QbitOptions,
    qbit_routes,
)
from engine.settings import token_proof
from providers import EngineError
from providers._log import get_logger

__all__ = ["STATIC_DIR", "ServerOptions", "create_app"]

log = get_logger("debrid.server")

#: The page and its assets, shipped with the package.
STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE = "provider-test.html"
#: The page runs only its own script and style and talks only to this daemon; the
#: browser test proves it works under exactly this policy.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": PAGE_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _paths(value: Any) -> tuple[Path, ...]:
    return tuple(Path(v) for v in value)


@attrs.frozen
class ServerOptions:
    """How the control API is served.

    ``token`` None turns authentication off (for loopback only). ``allowed_hosts``
    are extra Host header names (a reverse proxy's); ``cors_origins`` the only
    origins that get CORS headers (none by default). ``download_roots``: a
    ``download_dir`` that arrives over HTTP must resolve inside one of them.
    """

    token: str | None
    host: str = "127.0.0.1"
    port: int = 8686
    allowed_hosts: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    max_body_bytes: int = 10 * 1024 * 1024
    download_roots: tuple[Path, ...] = attrs.field(default=(), converter=_paths)
    static_dir: Path = attrs.field(default=STATIC_DIR, converter=Path)
    qbittorrent: QbitOptions = attrs.field(factory=QbitOptions)

    @property
    def qbit_bases(self) -> tuple[str, ...]:
        """Where the qBittorrent face is served (none when it is off)."""
        if not self.qbittorrent.enabled:
            return ()
        prefix = self.qbittorrent.prefix.rstrip("/")
        return ("/api/v2", f"{prefix}/api/v2") if prefix else ("/api/v2",)

    def __repr__(self) -> str:
        # The token is a secret: it never reaches a log line or an error text.
        shown = "***" if self.token is not None else None
        return (
            f"ServerOptions(token={shown!r}, host={self.host!r}, port={self.port!r}, "
            f"allowed_hosts={self.allowed_hosts!r}, cors_origins={self.cors_origins!r}, "
            f"max_body_bytes={self.max_body_bytes!r}, download_roots={self.download_roots!r}, "
            f"static_dir={self.static_dir!r}, qbittorrent={self.qbittorrent!r})"
        )


async def proof(request: Request) -> Response:
    """``GET /api/proof?nonce=N``: ``{"proof": HMAC(token, N)}``, or null with auth off.

    Public: it tells nothing without the token, and lets a client check that this is
    the daemon holding its token before it sends it (see ``token_proof``).
    """
    nonce = request.query_params.get("nonce", "")
    if not 16 <= len(nonce) <= 128:
        return error_response(422, "validation", "a nonce of 16 to 128 characters is needed",
                              field="nonce")
    token = request.app.state.options.token
    answer = None if token is None else token_proof(token, nonce)
    return JSONResponse({"proof": answer}, headers={"cache-control": "no-store"})


async def login(request: Request) -> Response:
    """``GET /login?code=C``: the session cookie, then 303 to the page."""
    sessions: Sessions = request.app.state.sessions
    failures: FailedLogins = request.app.state.failures
    address = request.client.host if request.client else "unknown"
    if request.headers.get("sec-fetch-site", "none").lower() in ("cross-site", "same-site"):
        # A login link is opened by the user (typed, or clicked in a terminal), never
        # fetched by another site; such tries are refused without being counted, so
        # a page cannot lock this address out with wrong codes.
        return error_response(403, "forbidden", "a login link opened from another site")
    wait = failures.blocked_for(address)
    if wait > 0:
        refusal: Response = too_many_attempts(wait)
        return refusal
    session = sessions.redeem(request.query_params.get("code", ""))
    if session is None:
        failures.failed(address)
        return error_response(401, "unauthorized", "a wrong, used or expired login code")
    response = RedirectResponse("/provider-test", status_code=303)
    response.headers.append("set-cookie", session_cookie_header(session))
    response.headers["cache-control"] = "no-store"
    return response


async def session_info(request: Request) -> JSONResponse:
    """``GET /api/session``: the CSRF token of the cookie's session."""
    session = request.scope.get("state", {}).get("session")
    auth = request.scope.get("state", {}).get("auth", "none")
    token = session.csrf_token if session is not None else request.app.state.csrf_token
    return JSONResponse({"csrf_token": token, "auth": auth},
                        headers={"cache-control": "no-store"})


async def events(request: Request) -> Response:
    """``GET /api/events``: the event stream (see ``EventHub``)."""
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    last: int | None = None
    if raw:
        try:
            last = int(raw.strip())
        except ValueError:
            raise invalid("last_event_id", "must be an event id (an integer)") from None
    hub: EventHub = request.app.state.events
    return StreamingResponse(
        hub.stream(last),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def client_refusals(request: Request) -> JSONResponse:
    """``GET /api/client/refusals``: the adds the qBittorrent face refused lately."""
    face: QbitFace = request.app.state.qbit_face
    return JSONResponse({"refusals": list(reversed(face.refusals))},
                        headers={"cache-control": "no-store"})


async def metrics(request: Request) -> Response:
    """``GET /metrics``: Prometheus text."""
    body = await run_in_threadpool(scrape, request.app.state.metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def page(request: Request) -> Response:
    """``GET /provider-test``: the page."""
    path = Path(request.app.state.options.static_dir) / PAGE
    if not path.is_file():
        return error_response(404, "not_found", "the page is not installed")
    return FileResponse(path, media_type="text/html", headers=PAGE_HEADERS)


async def home(_: Request) -> Response:
    """``GET /``: to the page."""
    return RedirectResponse("/provider-test", status_code=307)


def _routes(options: ServerOptions) -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login, methods=["GET"]),
        Route("/api/proof", proof, methods=["GET"]),
        Route("/provider-test", page, methods=["GET"]),
        Route("/api/session", session_info, methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/api/client/refusals", client_refusals, methods=["GET"]),
        *job_routes(),
        *provider_routes(),
        *openapi_routes(),
        *(route for base in options.qbit_bases for route in qbit_routes(base)),
        Mount("/static", StaticFiles(directory=options.static_dir, check_dir=False),
              name="static"),
    ]


def _start_face(face: QbitFace, reporter: ArrReporter) -> None:
    """Finish the adds a crash cut short, then start reporting failures."""
    try:
        face.recover()
    except EngineError as error:
        log.warning("qbittorrent_recover_failed", error_type=type(error).__name__)
    reporter.start()


def create_app(engine: Any, options: ServerOptions) -> Starlette:
    """The control API of ``engine`` (an ``engine.Engine``), served as ``options`` say.

    ``app.state`` holds ``engine``, ``options``, ``sessions`` (``new_login_code()``),
    ``events`` (the ``EventHub``) and the metrics registry. The app follows the
    engine's events from its startup to its shutdown.
    """
    clock = getattr(engine, "clock", None)
    now = clock.monotonic if clock is not None else None
    sessions = Sessions(now) if now is not None else Sessions()
    failures = FailedLogins()
    hub = EventHub()
    face = QbitFace(engine, options.qbittorrent, options.download_roots)
    reporter = ArrReporter(face)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        hub.attach(engine.subscribe)
        if options.qbit_bases:
            await run_in_threadpool(_start_face, face, reporter)
        try:
            yield
        finally:
            reporter.stop()
            hub.close()
            hub.detach()

    middleware = [Middleware(HostCheck, bound_host=options.host,
                             allowed_hosts=options.allowed_hosts)]
    if options.cors_origins:
        middleware.append(Middleware(
            CORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", CSRF_HEADER, "Last-Event-ID"],
            max_age=600,
        ))
    middleware += [
        Middleware(BodyLimit, limit=options.max_body_bytes),
        Middleware(Authenticate, token=options.token, sessions=sessions, failures=failures,
                   cors_origins=options.cors_origins,
                   own_auth=tuple(base + "/" for base in options.qbit_bases)),
        Middleware(CatchAll),
    ]
    app = Starlette(
        routes=_routes(options),
        middleware=middleware,
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.options = options
    app.state.sessions = sessions
    app.state.failures = failures
    app.state.events = hub
    app.state.metrics = make_registry(engine)
    app.state.qbit_face = face
    app.state.qbit_auth = QbitAuth(options.qbittorrent, options.token, failures,
                                   now if now is not None else time.monotonic)
    app.state.qbit_maindata = MainData()
    app.state.arr_reporter = reporter
    # The CSRF token of requests that have no session (bearer clients, auth off).
    app.state.csrf_token = secrets.token_urlsafe(32)
    return app
