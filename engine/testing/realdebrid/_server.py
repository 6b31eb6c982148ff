"""A fake Real-Debrid API on 127.0.0.1, faithful to the facts sheet (providers/realdebrid.md).

``FakeRealDebrid`` serves ``/rest/1.0`` (torrents, unrestrict, downloads, user...),
``/oauth/v2`` (the device flow) and the direct download URLs it hands out
(``/d/<id>/<name>``, deterministic bytes with Range). Torrents progress on the
injected clock (see ``engine.testing.realdebrid._model``); every error the real
service is known to send can be produced, by scenario or by script::

    clock = FakeClock()
    with FakeRealDebrid(clock=clock, step_seconds=1) as fake:
        fake.set_scenario(info_hash, Scenario(rar=True))
        fake.fail_next("torrents_add_magnet", "too_many_active_downloads")
        provider = fake.make_provider(clock=clock)

It also runs stand-alone (``FakeRealDebrid(port=8765).start()``) for a CLI, with
``/__fake__/stats``, ``/__fake__/faults``, ``/__fake__/approve`` and
``/__fake__/torrents`` as its control API.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

import attrs

from engine.testing._fakehttp import FakeFault, FakeRequest, FakeResponse, FakeServer, RateWindow
from engine.testing.realdebrid._errors import ERRORS, MAINTENANCE_TEXT, OAUTH, REST, rd_error
from engine.testing.realdebrid._model import (
    Account,
    DownloadRecord,
    Scenario,
    TorrentRecord,
    json_date,
)
from engine.testing.realdebrid._oauth import OAuthState
from engine.testing.realdebrid._routes import PREMIUM_ROUTES, PUBLIC_ROUTES, RealDebridRoutes
from providers import Clock, RateLimiter
from providers._protocol import ProviderContext
from providers._secrets import MemorySecretStore

if TYPE_CHECKING:
    from providers.realdebrid import RealDebridProvider

__all__ = ["ERRORS", "FakeRealDebrid", "Scenario"]


@attrs.define
class _ScriptedError:
    route: str | None
    response: FakeResponse
    count: int


class FakeRealDebrid(FakeServer):
    """The fake Real-Debrid server (see the module docstring for the knobs)."""

    kind = "realdebrid"

    def __init__(
        self,
        *,
        port: int = 0,
        clock: Clock | None = None,
        seed: int = 0,
        tokens: Iterable[str] = ("fake-rd-token",),
        step_seconds: float = 1.0,
        download_steps: int = 4,
        active_limit: int = 10,
        rate_limit: int = 250,
        rate_window: float = 60.0,
        cached: Iterable[str] = (),
        premium_seconds: int = 30 * 86400,
        device_interval: int = 5,
        device_expires_in: int = 1800,
        token_ttl: int = 3600,
        download_ttl: float = 48 * 3600,
    ) -> None:
        super().__init__(port=port, clock=clock, seed=seed)
        self.tokens: set[str] = set(tokens)
        self.account = Account(self.clock, step_seconds=step_seconds, download_steps=download_steps)
        for info_hash in cached:
            self.set_scenario(info_hash, Scenario(cached=True))
        self.oauth = OAuthState(
            self.clock, interval=device_interval, expires_in=device_expires_in, token_ttl=token_ttl
        )
        self.rate = RateWindow(rate_limit, rate_window, self.clock)
        #: Slots: adding past this many in-progress torrents is refused with 509/21.
        self.active_limit = active_limit
        self.premium_seconds = premium_seconds
        self.username = "fakeuser"
        self.download_ttl = download_ttl
        #: Direct links that answer 503 (``kill_download``).
        self.dead_downloads: set[str] = set()
        #: Every API request answers 503 with an HTML maintenance page.
        self.maintenance = False
        self.account_locked = False
        #: Send a Retry-After on 429 (the real service is not known to: facts section 5).
        self.retry_after_header = False
        #: The status ``infringing_file`` comes with (451, 403 and 503 have all been seen).
        self.infringing_status = 451
        #: Status of an empty page: 200 ``[]`` (default) or 204, as decypharr expects.
        self.empty_page_status = 200
        #: Send ``x-total-count`` in lower case, as over HTTP/2.
        self.lowercase_total_header = False
        #: With this many torrents or more, a list without ``limit`` comes back empty
        #: (unchained-android#329); None: never.
        self.empty_list_threshold: int | None = None
        #: Refuse a second torrent with the hash of an active one (code 33); the real
        #: service is reported to accept duplicates (zurg-public#92).
        self.reject_duplicates = False
        #: Status of ``/unrestrict/check`` for a dead link: 503 (docs) or 404 (decypharr).
        self.check_dead_status = 503
        self.link_errors: dict[str, FakeResponse] = {}
        self.status_counts: Counter[int] = Counter()
        #: The routes of the latest API requests, oldest first (for tests of order).
        self.route_log: deque[str] = deque(maxlen=100_000)
        self._rd_script: list[_ScriptedError] = []
        RealDebridRoutes(self).register()

    # -- knobs ---------------------------------------------------------------
    def set_scenario(self, info_hash: str, scenario: Scenario) -> None:
        """Make every torrent added later with ``info_hash`` follow ``scenario``."""
        with self._lock:
            self.account.scenarios[info_hash.lower()] = scenario

    def set_default_scenario(self, scenario: Scenario) -> None:
        """The scenario of every hash without its own."""
        with self._lock:
            self.account.default_scenario = scenario

    def fail_next(
        self,
        route: str | None,
        error: str,
        *,
        status: int | None = None,
        code: int | None = None,
        count: int = 1,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        """Answer the next ``count`` requests to ``route`` (any API route when None) with an error.

        ``error`` is an RD error string; its usual status and code come from
        ``ERRORS`` unless given. ``body`` sends those bytes instead (a maintenance
        page, or any answer at all), with ``headers``; ``extra`` adds fields such
        as ``error_details`` to the JSON error.
        """
        default_status, default_code = ERRORS.get(error, (400, None))
        status = default_status if status is None else status
        code = default_code if code is None else code
        if body is not None:
            response = FakeResponse(status, body, {"Content-Type": "text/html"}, raw=True)
        else:
            response = rd_error(status, error, code, **extra)
        response.headers.update(headers or {})
        with self._lock:
            self._rd_script.append(_ScriptedError(route, response, count))

    def fail_link(self, url_part: str, error: str, *, status: int | None = None) -> None:
        """Unrestricting (or checking) any link that contains ``url_part`` fails with ``error``."""
        default_status, code = ERRORS.get(error, (503, None))
        with self._lock:
            self.link_errors[url_part] = rd_error(status or default_status, error, code)

    def break_links(self, torrent_id: str, error: str = "hoster_unavailable") -> None:
        """Unrestricting this torrent's links fails (19 or 24: its RD copy is broken)."""
        status, code = ERRORS[error]
        with self._lock:
            self.account.torrents[torrent_id].broken = (status, error, code or 0)

    def approve_device(self, user_code: str) -> bool:
        """The user approves ``user_code`` on the website (OAuth device flow step 2)."""
        with self._lock:
            return self.oauth.approve(user_code)

    def expire_access_tokens(self) -> None:
        """Every OAuth access token issued so far is now expired (401 bad_token)."""
        with self._lock:
            self.oauth.expire_access_tokens()

    def add_torrent(
        self,
        info_hash: str,
        *,
        name: str | None = None,
        files: list[tuple[str, int]] | None = None,
        select: bool = True,
    ) -> str:
        """Put a torrent in the account directly (no request counted); returns its id.

        With ``select`` its files are all selected and, unless a scenario says
        otherwise, it is already ``downloaded``. For large-account tests.
        """
        with self._lock:
            if info_hash.lower() not in self.account.scenarios:
                self.account.scenarios[info_hash.lower()] = Scenario(cached=True)
            record = self.account.add(info_hash, name, files, source="torrent", host="")
            if select:
                self.account.select(record, tuple(f.id for f in record.files))
            return record.id

    @property
    def link_suffix(self) -> str:
        """Text appended to every torrent link (decypharr trims links to 39 characters)."""
        return self.account.link_suffix

    @link_suffix.setter
    def link_suffix(self, value: str) -> None:
        self.account.link_suffix = value

    # -- inspection ----------------------------------------------------------
    def torrents(self) -> list[dict[str, Any]]:
        """Every torrent on the account now, as ``/torrents/info`` shows it, newest first."""
        with self._lock:
            return [self.account.view(r, info=True) for r in self.account.iter_newest_first()]

    def torrents_by_hash(self) -> Counter[str]:
        """How many torrents the account holds per info-hash (2+ means a duplicate)."""
        with self._lock:
            return Counter(r.hash for r in self.account.torrents.values())

    def downloads(self) -> list[DownloadRecord]:
        """Every ``/downloads`` entry (one per unrestrict call)."""
        with self._lock:
            return list(self.account.downloads.values())

    def torrent_record(self, torrent_id: str) -> TorrentRecord:
        """The internal record of a torrent (for tests that poke at it)."""
        with self._lock:
            return self.account.torrents[torrent_id]

    def stats(self) -> dict[str, Any]:
        """Request counters by route, answers by status, and the account's size."""
        with self._lock:
            return {
                **super().stats(),
                "statuses": {str(k): v for k, v in sorted(self.status_counts.items())},
                "torrents": len(self.account.torrents),
                "downloads": len(self.account.downloads),
                "active": self.account.active_count(),
                "active_limit": self.active_limit,
            }

    # -- provider wiring -----------------------------------------------------
    @property
    def rest_url(self) -> str:
        """The REST base URL to give a client (``.../rest/1.0``)."""
        return self.url + REST

    @property
    def oauth_url(self) -> str:
        """The OAuth base URL to give a client (``.../oauth/v2``)."""
        return self.url + OAUTH

    def provider_options(self) -> dict[str, Any]:
        """Constructor options that point a ``RealDebridProvider`` at this fake."""
        return {
            "api_token": sorted(self.tokens)[0] if self.tokens else None,
            "base_url": self.rest_url,
            "oauth_base_url": self.oauth_url,
        }

    def make_provider(
        self, *, clock: Clock | None = None, limited: bool = True, blocking: bool = True,
        **options: Any,
    ) -> RealDebridProvider:
        """A ``RealDebridProvider`` bound to this fake and its clock, with its own buckets.

        ``blocking=False`` binds it as the engine does (requests never wait for a
        token; get_file_links sends one request a call).
        """
        from providers.realdebrid import RealDebridProvider  # noqa: PLC0415

        provider = RealDebridProvider(**{**self.provider_options(), **options})
        clock = clock or self.clock
        limiters = {}
        if limited:
            limiters = {
                name: RateLimiter(limit.rate, limit.burst, clock, name=name)
                for name, limit in provider.rate_limits().items()
            }
        provider.bind(
            ProviderContext(
                clock=clock, limiters=limiters, secrets=MemorySecretStore(), blocking=blocking
            )
        )
        return provider

    def start(self) -> Self:
        """Bind 127.0.0.1 (port 0: any free one) and serve in a background thread."""
        super().start()
        return self

    def __enter__(self) -> Self:
        return self.start()

    # -- dispatch ------------------------------------------------------------
    def dispatch(self, request: FakeRequest) -> tuple[FakeResponse | None, FakeFault | None]:
        """RD extras around the base dispatch: X-HTTP-Verb, ETag/304, status counters."""
        verb = request.header("x-http-verb")
        if verb:
            # Clients that cannot send a verb override it with this header (facts section 0).
            request.method = verb.upper()
        with self._lock:
            response, fault = super().dispatch(request)
            if response is None:
                return response, fault
            if request.path.startswith(REST) and request.method == "GET":
                response = self._etag(request, response)
            if request.path.startswith((REST, OAUTH)):
                self.status_counts[response.status] += 1
                self.route_log.append(request.route)
            return response, fault

    @staticmethod
    def _etag(request: FakeRequest, response: FakeResponse) -> FakeResponse:
        if response.status != 200 or response.raw:
            return response
        payload = json.dumps(response.body, sort_keys=True).encode()
        total = response.headers.get("X-Total-Count") or response.headers.get("x-total-count")
        digest = hashlib.sha1(payload + str(total).encode(), usedforsecurity=False).hexdigest()
        etag = f'"{digest}"'
        response.headers["ETag"] = etag
        if request.header("if-none-match") == etag:
            # The docs only say If-None-Match is honoured; 304 is the HTTP meaning.
            return FakeResponse.empty(304, **response.headers)
        return response

    def before(self, request: FakeRequest) -> FakeResponse | None:
        """Maintenance, the 250/minute window, scripted errors, auth and account checks."""
        path = request.path
        api, oauth = path.startswith(REST + "/"), path.startswith(OAUTH + "/")
        if not (api or oauth):
            return None
        if self.maintenance:
            # Not JSON: clients must not try to parse it (Umbrella _get/_post).
            return FakeResponse(503, MAINTENANCE_TEXT, {"Content-Type": "text/html"}, raw=True)
        if api:
            # Refused requests count against the limit too ([DOC] implementation details).
            wait = self.rate.hit(count_refused=True)
            if wait is not None:
                response = rd_error(429, "too_many_requests", 34)
                if self.retry_after_header:
                    response.headers["Retry-After"] = str(max(1, round(wait)))
                return response
        if api and request.route not in PUBLIC_ROUTES:
            token = self._token(request)
            if token is None or not (token in self.tokens or self.oauth.valid(token)):
                return rd_error(401, "bad_token", 8)
            if self.account_locked:
                return rd_error(403, "account_locked", 14)
        scripted = self._take_scripted(request.route)
        if scripted is not None:
            return scripted
        if api and self.premium_seconds <= 0 and request.route in PREMIUM_ROUTES:
            return rd_error(403, "permission_denied", 9)  # free accounts (MediaFusion)
        return None

    def _take_scripted(self, route: str) -> FakeResponse | None:
        for item in self._rd_script:
            if item.route is None or item.route == route:
                item.count -= 1
                if item.count <= 0:
                    self._rd_script.remove(item)
                return FakeResponse(
                    item.response.status,
                    item.response.body,
                    dict(item.response.headers),
                    item.response.raw,
                )
        return None

    @staticmethod
    def _token(request: FakeRequest) -> str | None:
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        # The less secure query form is accepted too ([DOC]).
        return request.arg("auth_token")

    def not_found(self, request: FakeRequest, *, method_not_allowed: bool) -> FakeResponse:
        """RD's own words for an unknown method (3) or a wrong verb (4)."""
        if method_not_allowed:
            return rd_error(405, "method_not_allowed", 4)
        return rd_error(404, "unknown_method", 3)

    def kill_download(self, url: str) -> None:
        """The direct URL ``url`` (an unrestrict answer's ``download``) stops working:
        it answers 503 from now on, as RD's hosts do for a dead link."""
        with self._lock:
            for record in self.account.downloads.values():
                if record.download == url:
                    self.dead_downloads.add(record.id)

    def download_expired(self, record: DownloadRecord) -> bool:
        """Direct links are assumed to live ``download_ttl`` seconds (decypharr: 48 h)."""
        return self.clock.monotonic() - record.generated_at > self.download_ttl

    def now_json(self) -> str:
        """The fake's wall-clock time as a JSON date."""
        return json_date(self.clock.time())
