"""The qBittorrent Web API routes (``/api/v2/...``), over ``QbitFace``.

Answers are qBittorrent's: plain text (``Ok.``, ``Fails.``, a version) or
JSON, errors as plain text with qBittorrent's status codes (400 bad request,
403 no session, 404 unknown hash, 409 conflict). Every read route answers GET
and POST (``qbittorrent-api`` POSTs its reads); the routes that change state
take POST only (405 otherwise). Parameters come from the query string and from
a url-encoded or multipart body alike.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from engine.server.qbittorrent._auth import SID_COOKIE, QbitAuth
from engine.server.qbittorrent._face import QbitFace, Refusal, Source
from engine.server.qbittorrent._options import ArrTarget
from engine.server.qbittorrent._sync import MainData
from engine.server.qbittorrent._view import files_of, properties_of
from providers import EngineError
from providers._log import get_logger

__all__ = ["qbit_routes"]

log = get_logger("debrid.server.qbittorrent")

Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]

#: A .torrent fetched from a URL in ``urls`` may be at most this big.
MAX_TORRENT_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
FETCH_TIMEOUT = 30.0
MAX_FILES = 100
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_TRUE = ("true", "1", "yes")

SORTABLE_FILTERS: dict[str, frozenset[str]] = {
    "downloading": frozenset({"downloading", "metaDL", "queuedDL", "stalledDL", "pausedDL",
                              "stoppedDL", "forcedDL"}),
    "seeding": frozenset({"uploading", "stalledUP", "forcedUP", "queuedUP"}),
    "completed": frozenset({"pausedUP", "stoppedUP", "uploading", "stalledUP", "queuedUP",
                            "forcedUP", "missingFiles"}),
    "paused": frozenset({"pausedDL", "pausedUP", "stoppedDL", "stoppedUP"}),
    "stopped": frozenset({"pausedDL", "pausedUP", "stoppedDL", "stoppedUP"}),
    "active": frozenset({"downloading", "metaDL"}),
    "inactive": frozenset({"queuedDL", "stalledDL", "pausedDL", "stoppedDL", "pausedUP",
                           "stoppedUP", "error", "missingFiles"}),
    "resumed": frozenset({"downloading", "metaDL", "queuedDL", "stalledDL"}),
    "running": frozenset({"downloading", "metaDL", "queuedDL", "stalledDL"}),
    "stalled": frozenset({"stalledDL", "stalledUP"}),
    "stalled_uploading": frozenset({"stalledUP"}),
    "stalled_downloading": frozenset({"stalledDL"}),
    "errored": frozenset({"error", "missingFiles"}),
}


def _text(body: str, status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status)


def _face(request: Request) -> QbitFace:
    face: QbitFace = request.app.state.qbit_face
    return face


def _auth(request: Request) -> QbitAuth:
    auth: QbitAuth = request.app.state.qbit_auth
    return auth


def _flag(params: dict[str, str], *names: str) -> bool:
    return any(params.get(n, "").strip().lower() in _TRUE for n in names)


def _hashes(params: dict[str, str], name: str = "hashes") -> list[str] | None:
    """The pipe-separated hashes (None for ``all``)."""
    raw = params.get(name, "").strip()
    if raw.lower() == "all":
        return None
    return [h.strip().lower() for h in raw.split("|") if h.strip()]


def _list(raw: str, sep: str = ",") -> list[str]:
    return [part.strip() for part in raw.split(sep) if part.strip()]


async def _params(request: Request) -> dict[str, str]:
    values = dict(request.query_params)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and kind in _FORM_TYPES:
        async with request.form(max_files=MAX_FILES, max_fields=1000) as form:
            for key, value in form.multi_items():
                if isinstance(value, str):
                    values[key] = value
    return values


def _guarded(handler: Handler, *, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Auth, parameters and error answers around one route."""

    async def endpoint(request: Request) -> Response:
        if not public and not _auth(request).allowed(request):
            return _text("Forbidden", 403)
        try:
            params = await _params(request) if handler is not _add else {}
            return await handler(request, params)
        except Refusal as refusal:
            return _text(refusal.message, refusal.status)
        except EngineError as error:
            log.warning("qbittorrent_engine_error", path=request.url.path,
                        error_type=type(error).__name__)
            return _text(f"the engine refused: {type(error).__name__}", 409)

    return endpoint


def _json(value: Any) -> JSONResponse:
    return JSONResponse(value)


async def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await run_in_threadpool(function, *args, **kwargs)


# -- app ---------------------------------------------------------------------------
async def _webapi_version(request: Request, _: dict[str, str]) -> Response:
    return _text(_face(request).options.api_version)


async def _version(request: Request, _: dict[str, str]) -> Response:
    return _text(_face(request).options.app_version)


async def _build_info(_: Request, __: dict[str, str]) -> Response:
    return _json({"qt": "6.7.2", "libtorrent": "2.0.10.0", "boost": "1.86.0",
                  "openssl": "3.3.2", "zlib": "1.3.1", "bitness": 64, "platform": "linux"})


def _preferences(face: QbitFace) -> dict[str, Any]:
    save = str(face.save_path) if face.save_path is not None else ""
    return {
        "save_path": save,
        "temp_path_enabled": False,
        "temp_path": "",
        "auto_tmm_enabled": False,
        "create_subfolder_enabled": True,
        "torrent_content_layout": "Original",
        "start_paused_enabled": False,
        "add_stopped_enabled": False,
        "dht": True,
        "pex": True,
        "lsd": True,
        "queueing_enabled": True,
        "max_active_downloads": -1,
        "max_active_torrents": -1,
        "max_active_uploads": -1,
        "max_ratio_enabled": False,
        "max_ratio": -1,
        "max_ratio_act": 0,
        "max_seeding_time_enabled": False,
        "max_seeding_time": -1,
        "max_inactive_seeding_time_enabled": False,
        "max_inactive_seeding_time": -1,
        "dl_limit": 0,
        "up_limit": 0,
        "web_ui_port": 0,
        "locale": "en",
    }


async def _prefs(request: Request, _: dict[str, str]) -> Response:
    return _json(_preferences(_face(request)))


async def _set_prefs(_: Request, params: dict[str, str]) -> Response:
    # Accepted and ignored: the engine's settings live in its config file.
    try:
        json.loads(params.get("json", "{}") or "{}")
    except ValueError:
        raise Refusal(400, "json: not valid JSON") from None
    return _text("")


async def _default_save_path(request: Request, _: dict[str, str]) -> Response:
    path = _face(request).save_path
    return _text(str(path) if path is not None else "")


# -- auth --------------------------------------------------------------------------
async def _login(request: Request, params: dict[str, str]) -> Response:
    auth = _auth(request)
    face = _face(request)
    address = request.client.host if request.client else "unknown"
    if auth.cross_site(request):
        return _text("Forbidden", 403)
    wait = auth.blocked_for(address)
    if wait > 0:
        return _text("Your IP address has been banned after too many failed attempts", 403)
    username, password = params.get("username", ""), params.get("password", "")
    sid = auth.login(username, password, address)
    if sid is None:
        log.warning("qbittorrent_login_failed", address=address)
        return _text("Fails.")
    if face.options.arr_from_login and auth.open:
        parts = urlsplit(username)
        if parts.scheme in ("http", "https") and parts.hostname and password:
            face.login_arr = ArrTarget(username.rstrip("/"), password)
    response = _text("Ok.")
    response.set_cookie(SID_COOKIE, sid, httponly=True, samesite="strict", path="/")
    return response


async def _logout(request: Request, _: dict[str, str]) -> Response:
    auth = _auth(request)
    auth.logout(auth.session_of(request))
    response = _text("")
    response.delete_cookie(SID_COOKIE, path="/")
    return response


# -- torrents: reading ---------------------------------------------------------------
async def _info(request: Request, params: dict[str, str]) -> Response:
    face = _face(request)
    category = params.get("category")
    hashes = _hashes(params) if "hashes" in params else None
    entries = await _call(face.torrents, category, hashes)
    wanted = params.get("filter", "all").strip() or "all"
    if wanted != "all":
        states = SORTABLE_FILTERS.get(wanted)
        if states is None:
            raise Refusal(400, f"filter: unknown filter {wanted!r}")
        entries = [e for e in entries if e["state"] in states]
    if "tag" in params:
        tag = params["tag"]
        entries = [e for e in entries
                   if (tag in _list(e["tags"]) if tag else not e["tags"])]
    key = params.get("sort", "")
    if key:
        entries.sort(key=lambda e: (e.get(key) is None, e.get(key)),
                     reverse=_flag(params, "reverse"))
    offset, limit = _int(params, "offset", 0), _int(params, "limit", 0)
    if offset < 0:
        offset = max(0, len(entries) + offset)
    entries = entries[offset:]
    if limit > 0:
        entries = entries[:limit]
    return _json(entries)


def _int(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise Refusal(400, f"{name}: {raw!r} is not an integer") from None


def _hash(params: dict[str, str]) -> str:
    value = params.get("hash", "").strip().lower()
    if not value:
        raise Refusal(400, "hash: missing")
    return value


async def _properties(request: Request, params: dict[str, str]) -> Response:
    face = _face(request)
    item, job = await _call(face.one, _hash(params))
    return _json(properties_of(item, job, face.now_ms()))


async def _files(request: Request, params: dict[str, str]) -> Response:
    face = _face(request)
    item, job = await _call(face.one, _hash(params))
    files = files_of(item, job)
    if "indexes" in params:
        wanted = {int(i) for i in _list(params["indexes"], "|") if i.isascii() and i.isdigit()}
        files = [f for f in files if f["index"] in wanted]
    return _json(files)


async def _trackers(request: Request, params: dict[str, str]) -> Response:
    await _call(_face(request).one, _hash(params))
    return _json([])


def _categories_json(face: QbitFace) -> dict[str, dict[str, Any]]:
    return {c.name: {"name": c.name, "savePath": c.save_path}
            for c in face.categories().values()}


async def _categories(request: Request, _: dict[str, str]) -> Response:
    return _json(await _call(_categories_json, _face(request)))


async def _tags(request: Request, _: dict[str, str]) -> Response:
    return _json(await _call(_face(request).tags))


# -- torrents: changing --------------------------------------------------------------
async def _fetch_torrent(url: str) -> Source:
    """A .torrent (or the magnet a tracker redirects to) from an http(s) URL."""

    def fetch() -> Source:
        target = url
        with httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False, trust_env=False) as http:
            for _ in range(MAX_REDIRECTS + 1):
                with http.stream("GET", target) as answer:
                    if answer.is_redirect:
                        location = answer.headers.get("location", "")
                        if location.lower().startswith("magnet:"):
                            return Source(magnet=location, origin=url)
                        target = str(answer.url.join(location))
                        continue
                    if answer.status_code != 200:
                        raise Refusal(400, f"the URL answered HTTP {answer.status_code}")
                    body = bytearray()
                    for chunk in answer.iter_bytes():
                        body += chunk
                        if len(body) > MAX_TORRENT_BYTES:
                            raise Refusal(400, "the .torrent is larger than 10 MB")
                    return Source(torrent=bytes(body), origin=url)
        raise Refusal(400, "too many redirects")

    try:
        result: Source = await run_in_threadpool(fetch)
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise Refusal(400, f"cannot fetch the .torrent: {type(exc).__name__}") from None
    return result


async def _add(request: Request, _: dict[str, str]) -> Response:
    face = _face(request)
    params: dict[str, str] = dict(request.query_params)
    sources: list[Source] = []
    refused: list[str] = []
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in _FORM_TYPES:
        async with request.form(max_files=MAX_FILES, max_fields=1000,
                                max_part_size=MAX_TORRENT_BYTES) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    # Any field name: Sonarr says "torrents", qbittorrent-api "torrent__0"...
                    data = await value.read()
                    sources.append(Source(torrent=data, origin=value.filename or key))
                else:
                    params[key] = value
    for line in params.get("urls", "").splitlines():
        url = line.strip()
        if not url:
            continue
        if url.lower().startswith("magnet:"):
            sources.append(Source(magnet=url, origin=url[:80]))
        elif url.lower().startswith(("http://", "https://")):
            try:
                sources.append(await _fetch_torrent(url))
            except Refusal as refusal:
                refused.append(face.refuse(url, refusal.message))
        else:
            refused.append(face.refuse(url[:80], "not a magnet link or an http(s) URL"))
    if not sources and not refused:
        return _text("Fails.")
    outcome = await _call(
        face.add,
        sources,
        category=params.get("category", "").strip(),
        save_path=params.get("savepath", "").strip(),
        paused=_flag(params, "paused", "stopped"),
        tags=_list(params.get("tags", "")),
        rename=params.get("rename", "").strip(),
        refused=refused,
    )
    log.info("qbittorrent_added", added=len(outcome.added), known=len(outcome.known),
             refused=len(outcome.refused))
    return _text("Ok." if outcome.ok else "Fails.")


async def _delete(request: Request, params: dict[str, str]) -> Response:
    hashes = _hashes(params)
    await _call(_face(request).delete, hashes, _flag(params, "deleteFiles"))
    return _text("")


async def _resume(request: Request, params: dict[str, str]) -> Response:
    await _call(_face(request).resume, _hashes(params))
    return _text("")


async def _pause(request: Request, params: dict[str, str]) -> Response:
    # A debrid service cannot pause what it runs: accepted, logged, no change.
    log.info("qbittorrent_pause_ignored", hashes=params.get("hashes", "")[:200])
    return _text("")


async def _noop(_: Request, __: dict[str, str]) -> Response:
    return _text("")


async def _set_category(request: Request, params: dict[str, str]) -> Response:
    if "category" not in params:
        raise Refusal(400, "category: missing")
    await _call(_face(request).relabel, _hashes(params), category=params["category"].strip())
    return _text("")


async def _create_category(request: Request, params: dict[str, str]) -> Response:
    await _call(_face(request).create_category, params.get("category", ""),
                params.get("savePath", "").strip())
    return _text("")


async def _edit_category(request: Request, params: dict[str, str]) -> Response:
    await _call(_face(request).create_category, params.get("category", ""),
                params.get("savePath", "").strip(), edit=True)
    return _text("")


async def _remove_categories(request: Request, params: dict[str, str]) -> Response:
    names = [n.strip() for n in params.get("categories", "").splitlines() if n.strip()]
    await _call(_face(request).remove_categories, names)
    return _text("")


async def _add_tags(request: Request, params: dict[str, str]) -> Response:
    await _call(_face(request).relabel, _hashes(params), add_tags=_list(params.get("tags", "")))
    return _text("")


async def _remove_tags(request: Request, params: dict[str, str]) -> Response:
    await _call(_face(request).relabel, _hashes(params),
                remove_tags=_list(params.get("tags", "")))
    return _text("")


async def _create_tags(request: Request, params: dict[str, str]) -> Response:
    _face(request).create_tags(_list(params.get("tags", "")))
    return _text("")


async def _delete_tags(request: Request, params: dict[str, str]) -> Response:
    await _call(_face(request).delete_tags, _list(params.get("tags", "")))
    return _text("")


# -- sync and transfer ---------------------------------------------------------------
def _server_state(face: QbitFace) -> dict[str, Any]:
    state = face.transfer()
    free = 0
    if face.save_path is not None:
        try:
            free = shutil.disk_usage(face.save_path if face.save_path.exists()
                                     else face.save_path.anchor).free
        except OSError:
            free = 0
    state.update({"free_space_on_disk": free, "queueing": True, "use_alt_speed_limits": False,
                  "refresh_interval": 1500, "alltime_dl": state["dl_info_data"],
                  "alltime_ul": 0})
    return state


async def _maindata(request: Request, params: dict[str, str]) -> Response:
    face = _face(request)
    main: MainData = request.app.state.qbit_maindata
    rid = _int(params, "rid", 0)

    def gather() -> dict[str, Any]:
        torrents = {entry["hash"]: entry for entry in face.torrents()}
        return main.answer(rid, torrents, _categories_json(face), face.tags(),
                           _server_state(face))

    return _json(await _call(gather))


async def _transfer(request: Request, _: dict[str, str]) -> Response:
    return _json(await _call(_face(request).transfer))


# -- the table -----------------------------------------------------------------------
_READS: dict[str, Handler] = {
    "app/version": _version,
    "app/buildInfo": _build_info,
    "app/preferences": _prefs,
    "app/defaultSavePath": _default_save_path,
    "torrents/info": _info,
    "torrents/properties": _properties,
    "torrents/files": _files,
    "torrents/trackers": _trackers,
    "torrents/categories": _categories,
    "torrents/tags": _tags,
    "sync/maindata": _maindata,
    "transfer/info": _transfer,
}
_WRITES: dict[str, Handler] = {
    "auth/logout": _logout,
    "app/setPreferences": _set_prefs,
    "torrents/add": _add,
    "torrents/delete": _delete,
    "torrents/pause": _pause,
    "torrents/stop": _pause,
    "torrents/resume": _resume,
    "torrents/start": _resume,
    "torrents/setCategory": _set_category,
    "torrents/createCategory": _create_category,
    "torrents/editCategory": _edit_category,
    "torrents/removeCategories": _remove_categories,
    "torrents/addTags": _add_tags,
    "torrents/removeTags": _remove_tags,
    "torrents/createTags": _create_tags,
    "torrents/deleteTags": _delete_tags,
    "torrents/setShareLimits": _noop,
    "torrents/topPrio": _noop,
    "torrents/bottomPrio": _noop,
    "torrents/increasePrio": _noop,
    "torrents/decreasePrio": _noop,
    "torrents/setForceStart": _noop,
    "torrents/setSuperSeeding": _noop,
    "torrents/setAutoManagement": _noop,
    "torrents/setDownloadLimit": _noop,
    "torrents/setUploadLimit": _noop,
    "torrents/recheck": _noop,
    "torrents/reannounce": _noop,
}


def qbit_routes(base: str = "/api/v2") -> list[Route]:
    """The routes under ``base`` (``/api/v2``, or ``<prefix>/api/v2``)."""
    routes = [
        Route(f"{base}/app/webapiVersion", _guarded(_webapi_version, public=True),
              methods=["GET", "POST"]),
        Route(f"{base}/auth/login", _guarded(_login, public=True), methods=["POST"]),
    ]
    routes += [Route(f"{base}/{path}", _guarded(handler), methods=["GET", "POST"])
               for path, handler in _READS.items()]
    routes += [Route(f"{base}/{path}", _guarded(handler), methods=["POST"])
               for path, handler in _WRITES.items()]
    return routes
