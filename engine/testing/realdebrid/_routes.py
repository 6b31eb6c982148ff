"""The route handlers of ``FakeRealDebrid``: one method per endpoint of facts sections 2-6."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from engine.testing._fakehttp import FakeRequest, FakeResponse
from engine.testing._torrentfile import read_torrent
from engine.testing.realdebrid._errors import ERRORS, OAUTH, REST, rd_error
from engine.testing.realdebrid._model import LINK_PREFIX, json_date, link_view
from providers._torrent import magnet_display_name, magnet_info_hash

if TYPE_CHECKING:
    from engine.testing.realdebrid._server import FakeRealDebrid

__all__ = ["PREMIUM_ROUTES", "PUBLIC_ROUTES", "RealDebridRoutes"]

#: Routes that need no token ([DOC]: /time, /time/iso, /unrestrict/check, /hosts*).
PUBLIC_ROUTES = frozenset({"time", "time_iso", "unrestrict_check", "hosts"})
#: Routes a free account is refused (403 permission_denied/9, facts section 6.2).
PREMIUM_ROUTES = frozenset(
    {
        "unrestrict_link",
        "torrents",
        "torrents_info",
        "torrents_add_magnet",
        "torrents_add_torrent",
        "torrents_select_files",
        "torrents_delete",
        "torrents_active_count",
        "downloads",
        "downloads_delete",
    }
)
_MAX_LIMIT = 5000  # current docs: 0-5000, default 100
_HOSTS = [{"host": "real-debrid.com", "max_file_size": 2000}]


def _field(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()


def _missing(name: str) -> FakeResponse:
    return rd_error(400, "parameter_missing", 1, error_details=f"{{{name}}} is missing")


def _bad_parameter(status: int = 400) -> FakeResponse:
    return rd_error(status, "wrong_parameter", 2)


class RealDebridRoutes:
    """Registers and serves every endpoint of one ``FakeRealDebrid``."""

    def __init__(self, fake: FakeRealDebrid) -> None:
        self.fake = fake
        self.account = fake.account

    def register(self) -> None:
        """Add every route to the fake (names are the keys of its request counters)."""
        add, rest, oauth = self.fake.route, re.escape(REST), re.escape(OAUTH)
        add("GET", rest + "/user", "user", self.user)
        add("GET", rest + "/time", "time", self.time)
        add("GET", rest + "/time/iso", "time_iso", self.time_iso)
        add("GET", rest + "/hosts", "hosts", self.hosts)
        add("GET", rest + "/traffic", "traffic", self.traffic)
        add("GET", rest + "/disable_access_token", "disable_access_token", self.disable_token)
        add("POST", rest + "/unrestrict/check", "unrestrict_check", self.unrestrict_check)
        add("POST", rest + "/unrestrict/link", "unrestrict_link", self.unrestrict_link)
        add("GET", rest + "/torrents", "torrents", self.list_torrents)
        add("GET", rest + "/torrents/info/{id}", "torrents_info", self.torrent_info)
        add("POST", rest + "/torrents/addMagnet", "torrents_add_magnet", self.add_magnet)
        add("PUT", rest + "/torrents/addTorrent", "torrents_add_torrent", self.add_torrent)
        add("POST", rest + "/torrents/selectFiles/{id}", "torrents_select_files", self.select)
        add("DELETE", rest + "/torrents/delete/{id}", "torrents_delete", self.delete_torrent)
        add("GET", rest + "/torrents/activeCount", "torrents_active_count", self.active_count)
        add("GET", rest + "/torrents/availableHosts", "torrents_available_hosts", self.hosts_list)
        # Any number of /{hash} segments; disabled since 2024-11-21 (facts section 6.1).
        add(
            "GET",
            rest + r"/torrents/instantAvailability/(?P<hashes>.+)",
            "torrents_instant_availability",
            self.instant_availability,
        )
        add("GET", rest + "/downloads", "downloads", self.list_downloads)
        add("DELETE", rest + "/downloads/delete/{id}", "downloads_delete", self.delete_download)
        add("GET", oauth + "/device/code", "oauth_device_code", self.device_code)
        add("GET", oauth + "/device/credentials", "oauth_device_credentials", self.credentials)
        add("POST", oauth + "/token", "oauth_token", self.token)
        for verb in ("GET", "HEAD"):
            add(verb, "/d/{id}/{name}", "download_file", self.download_file)
        add("POST", "/__fake__/approve", "fake_approve", self.control_approve)
        add("GET", "/__fake__/torrents", "fake_torrents", self.control_torrents)

    # -- account -------------------------------------------------------------
    def user(self, request: FakeRequest) -> FakeResponse:
        """``GET /user``."""
        fake = self.fake
        premium = max(0, fake.premium_seconds)
        return FakeResponse.json(
            {
                "id": 4242,
                "username": fake.username,
                "email": f"{fake.username}@example.invalid",
                "points": 1000,
                "locale": "en",
                "avatar": "https://fcdn.real-debrid.com/images/forum/empty.png",
                "type": "premium" if premium > 0 else "free",
                "premium": premium,
                "expiration": json_date(fake.clock.time() + premium),
            }
        )

    def time(self, request: FakeRequest) -> FakeResponse:
        """``GET /time``: plain text, server local time."""
        text = self.fake.now_json().replace("T", " ")[:19]
        return FakeResponse(200, text.encode(), {"Content-Type": "text/plain"}, raw=True)

    def time_iso(self, request: FakeRequest) -> FakeResponse:
        """``GET /time/iso``."""
        text = self.fake.now_json()[:19] + "+0000"
        return FakeResponse(200, text.encode(), {"Content-Type": "text/plain"}, raw=True)

    def hosts(self, request: FakeRequest) -> FakeResponse:
        """``GET /hosts`` (no auth)."""
        return FakeResponse.json({"1fichier.com": {"id": "1f", "name": "1fichier", "image": ""}})

    def hosts_list(self, request: FakeRequest) -> FakeResponse:
        """``GET /torrents/availableHosts``."""
        return FakeResponse.json(_HOSTS)

    def traffic(self, request: FakeRequest) -> FakeResponse:
        """``GET /traffic``."""
        used = sum(d.filesize for d in self.account.downloads.values())
        return FakeResponse.json(
            {
                "real-debrid.com": {
                    "left": max(0, 2_000_000_000_000 - used),
                    "bytes": used,
                    "links": len(self.account.downloads),
                    "limit": 2000,
                    "type": "gigabytes",
                    "extra": 0,
                    "reset": "daily",
                }
            }
        )

    def disable_token(self, request: FakeRequest) -> FakeResponse:
        """``GET /disable_access_token``: the token in use stops working."""
        token = self.fake._token(request) or ""
        self.fake.tokens.discard(token)
        self.fake.oauth.revoke(token)
        return FakeResponse.empty(204)

    # -- unrestrict ----------------------------------------------------------
    def _link_error(self, link: str) -> FakeResponse | None:
        for part, response in self.fake.link_errors.items():
            if part in link:
                return FakeResponse(response.status, response.body, dict(response.headers))
        if link.startswith(LINK_PREFIX):
            target = self.account.resolve_link(link)
            if target is None or self.account.status(target[0]) != "downloaded":
                return rd_error(503, "file_unavailable", 24)
            if target[0].broken is not None:
                return rd_error(*target[0].broken)
        elif not link.startswith(("http://", "https://")):
            return rd_error(400, "hoster_unsupported", 16)
        return None

    def unrestrict_check(self, request: FakeRequest) -> FakeResponse:
        """``POST /unrestrict/check`` (no auth): 503 (or 404) for a dead file."""
        link = _field(request.form(), "link")
        if not link:
            return _missing("link")
        error = self._link_error(link)
        if error is not None:
            return rd_error(self.fake.check_dead_status, "file_unavailable", 24)
        name = link.rstrip("/").rsplit("/", 1)[-1] or "file.bin"
        return FakeResponse.json(
            {
                "host": "real-debrid.com",
                "link": link,
                "filename": name,
                "filesize": 0,
                "supported": 1,
            }
        )

    def unrestrict_link(self, request: FakeRequest) -> FakeResponse:
        """``POST /unrestrict/link``: a direct URL on this fake, and a new /downloads entry."""
        link = _field(request.form(), "link")  # `password`, `remote` and `ip` are accepted, unused
        if not link:
            return _missing("link")
        error = self._link_error(link)
        if error is not None:
            return error
        record = self.account.unrestrict(link, self.fake.url)
        return FakeResponse.json(
            {
                **link_view(record),
                "host_icon": f"https://fcdn.real-debrid.com/images/hosters/{record.host}.png",
                "crc": 1,
            }
        )

    # -- torrents ------------------------------------------------------------
    def _page(self, request: FakeRequest, items: list[Any], view: Any) -> FakeResponse:
        """``offset`` / ``page`` / ``limit`` (page wins), ``X-Total-Count``, ``[]`` past the end."""
        try:
            limit = int(request.arg("limit") or 100)
            offset = int(request.arg("offset") or 0)
            page_arg = request.arg("page")
            page = int(page_arg) if page_arg else None
        except ValueError:
            return _bad_parameter()
        if not 0 <= limit <= _MAX_LIMIT or offset < 0 or (page is not None and page < 1):
            return _bad_parameter()
        if page is not None:
            offset = (page - 1) * limit
        total = len(items)
        header = "x-total-count" if self.fake.lowercase_total_header else "X-Total-Count"
        threshold = self.fake.empty_list_threshold
        if threshold is not None and total >= threshold and request.arg("limit") is None:
            chunk: list[Any] = []  # unchained-android#329: big accounts, no limit, empty page
        else:
            chunk = items[offset : offset + limit]
        if not chunk and self.fake.empty_page_status == 204:
            return FakeResponse.empty(204, **{header: str(total)})
        return FakeResponse(200, [view(item) for item in chunk], {header: str(total)})

    def list_torrents(self, request: FakeRequest) -> FakeResponse:
        """``GET /torrents``: newest first, ``filter=active`` for in-progress ones."""
        active = request.arg("filter") == "active"
        records = list(self.account.iter_newest_first(active_only=active))
        return self._page(request, records, lambda r: self.account.view(r, info=False))

    def torrent_info(self, request: FakeRequest) -> FakeResponse:
        """``GET /torrents/info/{id}``: the list fields plus the file list."""
        record = self.account.torrents.get(request.params["id"])
        if record is None:
            return rd_error(404, "unknown_ressource", 7)
        return FakeResponse.json(self.account.view(record, info=True))

    def _refuse_add(self, info_hash: str) -> FakeResponse | None:
        fake = self.fake
        if self.account.scenario_for(info_hash).infringing:
            return rd_error(fake.infringing_status, "infringing_file", 35)
        if fake.reject_duplicates and any(
            r.hash == info_hash and self.account.status(r) not in ("downloaded",)
            for r in self.account.torrents.values()
        ):
            return rd_error(400, "torrent_already_active", 33)
        if self.account.active_count() >= fake.active_limit:
            return rd_error(509, "too_many_active_downloads", 21)
        return None

    def _created(self, torrent_id: str) -> FakeResponse:
        uri = f"{self.fake.rest_url}/torrents/info/{torrent_id}"
        return FakeResponse.json({"id": torrent_id, "uri": uri}, 201)

    def add_magnet(self, request: FakeRequest) -> FakeResponse:
        """``POST /torrents/addMagnet``: 201, then ``magnet_conversion`` with no files."""
        form = request.form()
        magnet, host = _field(form, "magnet"), _field(form, "host")
        if not magnet:
            return _missing("magnet")
        try:
            info_hash = magnet_info_hash(magnet)
            name = magnet_display_name(magnet)
        except (ValueError, TypeError):
            return _bad_parameter()
        if host and host not in {h["host"] for h in _HOSTS}:
            return _bad_parameter()
        refused = self._refuse_add(info_hash)
        if refused is not None:
            return refused
        record = self.account.add(info_hash, name, None, source="magnet", host=host)
        return self._created(record.id)

    def add_torrent(self, request: FakeRequest) -> FakeResponse:
        """``PUT /torrents/addTorrent``: the raw .torrent bytes as the body ([RDNET])."""
        if not request.body:
            return _missing("file")
        try:
            torrent = read_torrent(request.body)
        except ValueError:
            return rd_error(400, "torrent_file_invalid", 30)
        info_hash = torrent.info_hash
        host = request.arg("host") or ""
        refused = self._refuse_add(info_hash)
        if refused is not None:
            return refused
        record = self.account.add(
            info_hash, torrent.name, list(torrent.files), source="torrent", host=host
        )
        return self._created(record.id)

    def select(self, request: FakeRequest) -> FakeResponse:
        """``POST /torrents/selectFiles/{id}``: 204; 202 ``action_already_done`` repeated; 509."""
        record = self.account.torrents.get(request.params["id"])
        if record is None:
            return rd_error(404, "unknown_ressource", 7)
        raw = _field(request.form(), "files")
        if not raw:
            return _missing("files")
        if record.selected is not None:
            # Repeated: 202 with action_already_done/31 ([DOC] 202; Umbrella's body).
            status, code = ERRORS["action_already_done"]
            return rd_error(status, "action_already_done", code)
        if self.account.status(record) != "waiting_files_selection":
            # What RD answers during magnet_conversion is UNCONFIRMED; no files to pick yet.
            return _bad_parameter()
        known = [f.id for f in record.files]
        if raw == "all":
            ids = tuple(known)
        else:
            try:
                ids = tuple(int(part) for part in raw.split(","))
            except ValueError:
                return _bad_parameter()
            if not ids or any(i not in known for i in ids):
                return _bad_parameter(404)  # [DOC]: 404 for bad file id(s)
        others = self.account.active_count() - 1
        if others >= self.fake.active_limit:
            return rd_error(509, "too_many_active_downloads", 21)
        self.account.select(record, tuple(sorted(set(ids))))
        record.select_spec = raw
        return FakeResponse.empty(204)

    def delete_torrent(self, request: FakeRequest) -> FakeResponse:
        """``DELETE /torrents/delete/{id}``: 204, or 404 when unknown."""
        if not self.account.delete(request.params["id"]):
            return rd_error(404, "unknown_ressource", 7)
        return FakeResponse.empty(204)

    def active_count(self, request: FakeRequest) -> FakeResponse:
        """``GET /torrents/activeCount``: ``{nb, limit}``."""
        body = {"nb": self.account.active_count(), "limit": self.fake.active_limit}
        return FakeResponse.json(body)

    def instant_availability(self, request: FakeRequest) -> FakeResponse:
        """Deactivated since 2024-11-21: 403 ``disabled_endpoint``/37."""
        return rd_error(403, "disabled_endpoint", 37)

    # -- downloads -----------------------------------------------------------
    def list_downloads(self, request: FakeRequest) -> FakeResponse:
        """``GET /downloads``: one entry per unrestrict, newest first."""
        records = list(reversed(self.account.downloads.values()))
        return self._page(request, records, self.account.download_view)

    def delete_download(self, request: FakeRequest) -> FakeResponse:
        """``DELETE /downloads/delete/{id}``."""
        if self.account.downloads.pop(request.params["id"], None) is None:
            return rd_error(404, "unknown_ressource", 7)
        return FakeResponse.empty(204)

    def download_file(self, request: FakeRequest) -> FakeResponse:
        """A direct link: deterministic bytes with Range; 404 once expired or deleted."""
        record = self.account.downloads.get(request.params["id"])
        if record is None or self.fake.download_expired(record):
            return FakeResponse(404, b"Not Found", {"Content-Type": "text/plain"}, raw=True)
        if record.id in self.fake.dead_downloads:
            # A dead direct link: RD's hosts answer 503 (docs/realdebrid.md).
            return FakeResponse(503, b"Service Unavailable", {"Content-Type": "text/plain"},
                                raw=True)
        return self.fake.serve_bytes(request, record.seed, record.filesize)

    # -- oauth ---------------------------------------------------------------
    def device_code(self, request: FakeRequest) -> FakeResponse:
        """``GET /oauth/v2/device/code``."""
        status, body = self.fake.oauth.start(
            request.arg("client_id"), request.arg("new_credentials") == "yes"
        )
        return FakeResponse.json(body, status)

    def credentials(self, request: FakeRequest) -> FakeResponse:
        """``GET /oauth/v2/device/credentials``."""
        status, body = self.fake.oauth.credentials(request.arg("client_id"), request.arg("code"))
        return FakeResponse.json(body, status)

    def token(self, request: FakeRequest) -> FakeResponse:
        """``POST /oauth/v2/token`` (device code or refresh token as ``code``)."""
        form = {k: v[0] for k, v in request.form().items() if v}
        status, body = self.fake.oauth.token(form)
        return FakeResponse.json(body, status)

    # -- control -------------------------------------------------------------
    def control_approve(self, request: FakeRequest) -> FakeResponse:
        """``POST /__fake__/approve {"user_code": ...}``: approve a device from a CLI."""
        try:
            code = str(request.json()["user_code"])
        except (ValueError, KeyError, TypeError):
            return FakeResponse.json({"error": 'expected {"user_code": ...}'}, 400)
        return FakeResponse.json({"approved": self.fake.oauth.approve(code)})

    def control_torrents(self, request: FakeRequest) -> FakeResponse:
        """``GET /__fake__/torrents``: every torrent with its file list."""
        return FakeResponse.json(
            [self.account.view(r, info=True) for r in self.account.iter_newest_first()]
        )
