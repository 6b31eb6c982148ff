"""``Daemon``: uvicorn serving the app on a thread of its own; ``run_daemon``: ``debrid serve``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import uvicorn
from starlette.applications import Starlette

from engine.server._app import ServerOptions, create_app
from engine.server.qbittorrent import ArrTarget, CategoryOptions, QbitOptions
from providers import ValidationError
from providers._log import get_logger

__all__ = ["Daemon", "run_daemon"]

log = get_logger("debrid.server")

#: Seconds uvicorn gives open requests once asked to stop, before it cancels them.
GRACEFUL_SECONDS = 5.0


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening (or gave up trying)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.settled = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.settled.set()


class Daemon:
    """The control API of ``engine`` served by uvicorn on a background thread.

    ``start()`` returns the base URL once the server accepts connections (port 0
    picks a free port); ``stop()`` ends the event streams first, so open
    browsers never hold the shutdown, then stops uvicorn. The engine is the
    caller's: start it before and stop it after.
    """

    def __init__(self, engine: Any, options: ServerOptions) -> None:
        self.engine = engine
        self.options = options
        self.app: Starlette = create_app(engine, options)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        """Serve; returns the base URL (``http://127.0.0.1:PORT``) once it listens."""
        if self._thread is not None:
            return self.url
        config = uvicorn.Config(
            self.app,
            host=self.options.host,
            port=self.options.port,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=int(GRACEFUL_SECONDS),
        )
        server = _Server(config)
        thread = threading.Thread(target=server.run, name="debrid-daemon", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        if not server.settled.wait(timeout) or not server.started:
            self.stop(timeout=5)
            raise ValidationError(
                "api.port",
                f"cannot listen on {self.options.host}:{self.options.port} (in use, or not "
                "an address of this machine)",
                value=self.options.port,
                expected="a free port on an address of this machine (0: any free port)",
            )
        port = server.servers[0].sockets[0].getsockname()[1]
        host = self.options.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - what to print for "every address"
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        self.url = f"http://{host}:{port}"
        log.info("daemon_started", url=self.url)
        return self.url

    def login_url(self) -> str:
        """A one-time login link (a new code each call, good for 10 minutes)."""
        return f"{self.url}/login?code={self.app.state.sessions.new_login_code()}"

    @property
    def page_url(self) -> str:
        """Where the provider test page is."""
        return f"{self.url}/provider-test"

    def stop(self, timeout: float = 10.0) -> None:
        """End the event streams, stop uvicorn and wait for its thread (``timeout`` s)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.app.state.events.close()
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("daemon_stop_forced")
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None
        log.info("daemon_stopped", url=self.url)

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- debrid serve ------------------------------------------------------------------


@contextlib.contextmanager
def _demo_servers(step: float) -> Iterator[dict[str, dict[str, Any]]]:
    """FakeRealDebrid and FakeTorBox on 127.0.0.1:0, as provider options by name."""
    from engine.testing import FakeRealDebrid, FakeTorBox  # noqa: PLC0415

    rd = FakeRealDebrid(port=0, step_seconds=step)
    tb = FakeTorBox(port=0, step_seconds=step)
    rd_server = rd.start()
    try:
        tb_server = tb.start()
        try:
            yield {"realdebrid": rd.provider_options(), "torbox": tb.provider_options()}
        finally:
            tb_server.stop()
    finally:
        rd_server.stop()


def _api(settings: Any, name: str, default: Any) -> Any:
    api = getattr(settings, "api", None)
    return getattr(api, name, default) if api is not None else default


def _options(settings: Any) -> ServerOptions:
    token: str | None = None
    if _api(settings, "auth", True):
        from engine.settings import api_token  # noqa: PLC0415

        token = api_token(settings)
    roots = tuple(Path(r) for r in getattr(settings, "download_roots", ()) or ())
    return ServerOptions(
        qbittorrent=_qbit_options(settings, roots),
        token=token,
        host=str(_api(settings, "host", "127.0.0.1")),
        port=int(_api(settings, "port", 8686)),
        allowed_hosts=tuple(_api(settings, "allowed_hosts", ()) or ()),
        cors_origins=tuple(_api(settings, "cors_origins", ()) or ()),
        max_body_bytes=int(_api(settings, "max_body_bytes", 10 * 1024 * 1024)),
        download_roots=roots,
    )


def _qbit_options(settings: Any, roots: tuple[Path, ...]) -> QbitOptions:
    """The qBittorrent face's options: the password from the environment or the keys
    file, each category's *arr key from the variable its table names."""
    qbit = getattr(settings, "qbittorrent", None)
    if qbit is None:
        return QbitOptions(save_path=roots[0] if roots else None)
    password = qbit.password
    if password is None and hasattr(settings, "secret_store"):
        password = settings.secret_store().get("qbittorrent.password")
    categories = []
    for category in qbit.categories:
        arr = None
        if category.arr_url is not None and category.arr_api_key_env is not None:
            key = os.environ.get(category.arr_api_key_env, "")
            if not key:
                raise ValidationError(
                    f"qbittorrent.categories.{category.name}.arr_api_key_env",
                    f"{category.arr_api_key_env} is not set",
                    expected="the *arr app's API key in that environment variable",
                )
            arr = ArrTarget(category.arr_url, key, category.arr_api_path)
        categories.append(CategoryOptions(category.name, category.save_path,
                                          category.provider, arr))
    return QbitOptions(
        enabled=qbit.enabled,
        username=qbit.username if password is not None else None,
        password=password,
        save_path=qbit.save_path or (roots[0] if roots else None),
        provider=qbit.provider,
        prefix=qbit.prefix,
        api_version=qbit.api_version,
        session_timeout=qbit.session_timeout,
        categories=tuple(categories),
        arr_from_login=qbit.arr_from_login,
    )


#: What a demo starts with, so the page shows jobs at work at once: (provider, payload).
DEMO_JOBS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("mock", {"url": "https://example.com/demo/Big.Buck.Bunny.1080p.mkv", "download": True}),
    ("realdebrid", {"magnet": "magnet:?xt=urn:btih:" + "08ada5a7a6183aae1e09d831df6748d566095a10"
                    + "&dn=Sintel", "select": {"globs": ["*.mkv"]}}),
    ("torbox", {"magnet": "magnet:?xt=urn:btih:" + "dd8255ecdc7ca55fb0bbf81323d87062db1f6d1c"
                + "&dn=Tears.of.Steel", "download": True}),
)


def _seed_demo(engine: Any, downloads: Path) -> None:
    """The demo's first jobs; the ones marked ``download`` land in ``downloads``."""
    for provider, raw in DEMO_JOBS:
        payload = {k: v for k, v in raw.items() if k != "download"}
        if raw.get("download"):
            payload["download_dir"] = str(downloads)
        engine.create_job(provider, payload)


def _demo_config(
    config: Any, servers: dict[str, dict[str, Any]], tmp: str, step: float = 2.0
) -> Any:
    from providers import MemorySecretStore  # noqa: PLC0415

    providers = {name: dict(options) for name, options in config.providers.items()}
    providers.setdefault("mock", {"step_seconds": step})
    for name, options in servers.items():
        providers[name] = {**providers.get(name, {}), **options}
    changes: dict[str, Any] = {"providers": providers, "secrets": MemorySecretStore()}
    if config.database is None:
        changes["database"] = str(Path(tmp) / "jobs.db")
    return attrs.evolve(config, **changes)


def run_daemon(
    settings: Any, *, demo: bool, out: IO[str], err: IO[str], demo_step: float = 2.0
) -> int:
    """``debrid serve``: the engine and the daemon until SIGTERM or SIGINT; exit 0.

    Prints the page URL and a one-time login link on ``err``, and one JSON line
    ``{"url", "login_url", "page_url"}`` on ``out`` for scripts. ``demo`` runs the
    fake Real-Debrid and TorBox in this process and configures them beside the
    mock, keys in memory, the database in a temporary directory unless the
    settings name one; a demo on its own temporary database starts with a job for
    each provider (``DEMO_JOBS``), downloads into that directory, and
    ``demo_step`` seconds per step of the fakes' (and the mock's) jobs.
    """
    from engine import Engine  # noqa: PLC0415
    from engine._logging import configure_logging  # noqa: PLC0415
    from engine._notify import Notifier  # noqa: PLC0415

    configure_logging(settings.log_format, settings.log_level, err)
    token_path = getattr(settings, "api_token_path", None)
    new_token = token_path is not None and not Path(token_path).exists()
    options = _options(settings)
    config = settings.engine_config()
    notifier = Notifier.from_settings(settings.notify)
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        seed: Path | None = None
        if demo:
            servers = stack.enter_context(_demo_servers(demo_step))
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="debrid-demo-"))
            if config.database is None:
                seed = Path(tmp) / "downloads"
                options = attrs.evolve(options, download_roots=(*options.download_roots, seed))
                if getattr(getattr(settings, "qbittorrent", None), "save_path", None) is None:
                    # A demo's qBittorrent adds land beside its jobs, not in the user's folder.
                    options = attrs.evolve(options, qbittorrent=attrs.evolve(
                        options.qbittorrent, save_path=seed))
            config = _demo_config(config, servers, tmp, demo_step)
        engine = Engine(config)
        if notifier.enabled:
            # Closed after the engine stops, so that what its last changes announce
            # is still delivered (within the notifier's own timeout).
            stack.callback(notifier.close, settings.notify.timeout)
            notifier.attach(engine)
        engine.start()
        stack.callback(engine.stop)
        if seed is not None:
            _seed_demo(engine, seed)
        daemon = Daemon(engine, options)
        daemon.start()
        stack.callback(daemon.stop)
        previous = _on_signals(stop)
        stack.callback(_restore_signals, previous)
        login_url = daemon.login_url()
        print(json.dumps({"url": daemon.url, "login_url": login_url,
                          "page_url": daemon.page_url}), file=out, flush=True)
        print(f"debrid daemon on {daemon.url}; page: {daemon.page_url}", file=err)
        if new_token and options.token is not None:
            # Shown this once, when it was made; it stays in the config directory.
            print(f"API token (made now, kept in {settings.api_token_path}): {options.token}",
                  file=err)
        print(f"log in (one time, 10 minutes): {login_url}", file=err, flush=True)
        try:
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            pass
        log.info("daemon_stopping")
    return 0


def _on_signals(stop: threading.Event) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for number in (signal.SIGTERM, signal.SIGINT):
        previous[number] = signal.signal(number, lambda *_: stop.set())
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)
