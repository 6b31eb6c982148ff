"""``RealDebridProvider``: the Provider protocol over the Real-Debrid REST API.

Remote ids are ``torrent:<RD torrent id>`` (magnets and .torrent files) and
``link:<RD download id>`` (hoster links, complete as soon as they are
unrestricted). See docs/realdebrid.md for the mapping and the decisions taken
where the API's documentation is silent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence, Set
from typing import Any

import httpx

from providers._bounded import BoundedDict
from providers._errors import ProviderError
from providers._job import JobFile
from providers._log import get_logger
from providers._payload import StartJobPayload
from providers._protocol import BaseProvider, Call, ProviderContext
from providers._responses import (
    CancelJobResponse,
    FileLinksResponse,
    JobStatusResponse,
    RateLimit,
    TestConnectionResponse,
)
from providers._status import JobStatus
from providers.realdebrid import _device
from providers.realdebrid._api import RealDebridApi
from providers.realdebrid._auth import Credentials, DeviceAuthorization
from providers.realdebrid._links import LinkMaker, Unrestricted, is_torrent_link
from providers.realdebrid._listing import pages, scan_torrents
from providers.realdebrid._tracker import Tracker, merged_stall_timeouts

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_OAUTH_URL", "RealDebridProvider"]

log = get_logger("debrid.providers.realdebrid")

DEFAULT_BASE_URL = "https://api.real-debrid.com/rest/1.0"
DEFAULT_OAUTH_URL = "https://api.real-debrid.com/oauth/v2"
#: Current docs: limit 0-5000 on /torrents and /downloads (older ones said 100).
MAX_PAGE_SIZE = 5000
#: Ids missing from a listing we re-check one by one, at most (else: retry later).
_VERIFY_LIMIT = 25
#: Hoster-link jobs whose one file (and direct URL) we remember, the most recent.
_LINK_FILES_KEPT = 20_000
_SAFE_ID = re.compile(r"[A-Za-z0-9]{1,64}")
#: Requests per call as this module sends them, by bucket (``default`` guards every
#: request, ``unrestrict`` also /unrestrict/link); SUBMIT is worked out in ``budgets``.
_BUDGETS: Mapping[Call, Mapping[str, int]] = {
    Call.FIND: {"default": 1},  # one page of /torrents or /downloads on most accounts
    # One request a call inside the engine: an unrestrict (or the /torrents/info read
    # when the poll's links are not known); a pack takes one call per file.
    Call.LINKS: {"default": 1, "unrestrict": 1},
    Call.STATUS: {"default": 1},  # /torrents/info (and selectFiles once, when RD waits)
    # /torrents pages, ETag-revalidated: one on most accounts. A new torrent's first
    # sighting adds /torrents/info and selectFiles (and an info read for
    # only_if_cached), once: left to the bucket's debt.
    Call.POLL: {"default": 1},
    Call.CANCEL: {"default": 1},  # DELETE /torrents/delete or /downloads/delete
    Call.TEST: {"default": 1},  # GET /user
}


class RealDebridProvider(BaseProvider):
    """Real-Debrid, through its REST API (private token or OAuth device flow).

    Options: ``api_token`` (a private token; otherwise the OAuth tokens in the
    secret store, see ``start_device_auth``), ``base_url`` / ``oauth_base_url``,
    ``requests_per_second`` and ``burst`` (default 4/s and 5: at most 245 requests
    in any minute, under RD's 250, [DOC]), ``unrestrict_per_second`` and
    ``unrestrict_burst`` (1/s and 3), ``page_size`` (for /torrents), ``timeout``,
    ``rate_limit_pause`` (seconds to hold the bucket after a 429, which carries no
    Retry-After), ``refresh_margin`` (refresh OAuth tokens this long before they
    expire), ``late_links_timeout`` (how long a finished torrent may lack links),
    ``link_ttl`` (reuse a direct URL this long), ``cache_check_grace``,
    ``stall_timeouts`` (seconds a torrent may be stuck per RD state, over
    ``DEFAULT_STALL_TIMEOUTS``; None for a state: never give up there) and
    ``stall_timeout`` (one number for every such state).
    """

    name = "realdebrid"
    #: Every HTTP request takes its own token (ProviderHttp), not one per call.
    limits_requests = True
    #: ``max_active`` comes from /torrents/activeCount on the first submission.
    slots_learnt_lazily = True

    def __init__(
        self,
        api_token: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        oauth_base_url: str = DEFAULT_OAUTH_URL,
        requests_per_second: float = 4.0,
        burst: int = 5,
        unrestrict_per_second: float = 1.0,
        unrestrict_burst: int = 3,
        page_size: int = MAX_PAGE_SIZE,
        timeout: float = 30.0,
        rate_limit_pause: float = 60.0,
        refresh_margin: float = 60.0,
        late_links_timeout: float = 300.0,
        link_ttl: float = 24 * 3600.0,
        cache_check_grace: float = 10.0,
        stall_timeouts: Mapping[str, float | None] | None = None,
        stall_timeout: float | None = None,
        name: str = "realdebrid",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__()
        if not (requests_per_second > 0 and unrestrict_per_second > 0) or min(
            burst, unrestrict_burst
        ) < 1:
            raise ValueError("request rates must be > 0 and bursts >= 1")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(
                f"providers.realdebrid.page_size: invalid option {page_size!r} "
                f"(expected an int from 1 to {MAX_PAGE_SIZE})"
            )
        if not (isinstance(link_ttl, int | float) and 0 < link_ttl < float("inf")):
            raise ValueError(
                f"providers.realdebrid.link_ttl: invalid option {link_ttl!r} "
                "(expected a finite number of seconds above 0)"
            )
        self.name = name
        self.base_url = base_url
        self._rates = {
            "default": RateLimit(float(requests_per_second), int(burst)),
            "unrestrict": RateLimit(float(unrestrict_per_second), int(unrestrict_burst)),
        }
        self.page_size = page_size
        self._credentials = Credentials(lambda: self.context.secrets, name)
        if api_token:
            # Held by the (default) secret store until bind() moves it to the engine's.
            self._credentials.set_api_token(api_token)
        self.api = RealDebridApi(
            name, base_url=base_url, oauth_base_url=oauth_base_url, context=lambda: self.context,
            credentials=self._credentials, timeout=timeout, rate_limit_pause=rate_limit_pause,
            refresh_margin=refresh_margin, transport=transport,
        )
        self.links = LinkMaker(self.api, link_ttl=link_ttl, late_links_timeout=late_links_timeout)
        self.tracker = Tracker(
            self.api, name, self.links, cache_check_grace=cache_check_grace,
            stall_timeouts=merged_stall_timeouts(stall_timeouts, stall_timeout),
            on_active_limit=self._read_active_limit,
        )
        self._limit_read = False
        self._link_files: BoundedDict[str, JobFile] = BoundedDict(_LINK_FILES_KEPT)

    def __repr__(self) -> str:
        return f"RealDebridProvider(name={self.name!r}, base_url={self.base_url!r})"

    # -- engine wiring ---------------------------------------------------------
    def bind(self, context: ProviderContext) -> None:
        """Take the engine's context; credentials move into its secret store."""
        self._credentials.move_to(context.secrets)
        super().bind(context)

    def rate_limits(self) -> Mapping[str, RateLimit]:
        """``default`` guards every request: 250 a minute, refused ones included ([DOC]);
        ``unrestrict`` also paces /unrestrict/link, about one a second against the fair
        usage limit (rdt-client#536, #433)."""
        return dict(self._rates)

    def budgets(self, call: Call, payload: StartJobPayload | None) -> Mapping[str, int]:
        """Tokens per bucket a call takes here (see ``_BUDGETS``)."""
        is_link = payload is not None and payload.kind == "url"
        if call is Call.SUBMIT:
            if is_link:
                # One /unrestrict/link; the job's links are in its answer.
                return {"default": 1, "unrestrict": 1}
            # activeCount before the first submission, then addMagnet / addTorrent.
            return {"default": 1 if self._limit_read else 2}
        if call is Call.LINKS and is_link:
            return {"default": 1, "unrestrict": 1}  # a new direct URL once the old one aged
        if call is Call.LINKS and payload is not None and payload.download_dir is not None:
            # RD's own links: each file is unrestricted as its download starts.
            return {"default": 1}
        return _BUDGETS[call]

    def attach(self, remote_id: str, payload: StartJobPayload) -> None:
        """Tell the provider what was asked for ``remote_id`` (after an engine restart)."""
        self.tracker.attach(remote_id, payload)

    # -- the Provider protocol ---------------------------------------------------
    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        """Add the magnet or torrent (or unrestrict the link); returns the first status."""
        if payload.kind == "url":
            return self._start_link(payload)
        if not self._limit_read:
            self._read_active_limit()
        try:
            if payload.magnet is not None:
                response = self.api.call("POST", "/torrents/addMagnet",
                                         data={"magnet": payload.magnet}, ok=(201, 200))
            else:
                # Raw bytes, not multipart ([RDNET] AddFileAsync; [DECY] sets this type).
                response = self.api.call(
                    "PUT", "/torrents/addTorrent", content=payload.torrent or b"",
                    headers={"Content-Type": "application/x-bittorrent"}, ok=(201, 200),
                )
        except ProviderError as error:
            if error.code == "ACTIVE_LIMIT":
                self._read_active_limit()
            elif error.code == "ALREADY_ACTIVE":  # code 33: adopt the torrent already there
                existing = self.find_existing(payload)
                if existing is not None:
                    return existing
            raise
        body = self.api.json(response)
        with self.api.parsing("add torrent"):
            remote_id = f"torrent:{body['id']}"
        self.tracker.attach(remote_id, payload)
        return JobStatusResponse(
            remote_id=remote_id, status=JobStatus.RESOLVING, native_status="added",
            info_hash=payload.info_hash, metadata={"id": str(body["id"])},
        )

    def _start_link(self, payload: StartJobPayload) -> JobStatusResponse:
        item = self.links.unrestrict(payload.url or "", torrent_link=False)
        remote_id = f"link:{item.id}"
        self.tracker.attach(remote_id, payload)
        return self._link_status(remote_id, self._link_file(remote_id, item), payload.url)

    def _link_file(self, remote_id: str, item: Unrestricted) -> JobFile:
        file = JobFile(0, item.filename or "download.bin", item.filesize, link=item.download)
        self._link_files[remote_id] = file
        return file

    @staticmethod
    def _link_status(remote_id: str, file: JobFile | None, source: str | None) -> JobStatusResponse:
        return JobStatusResponse(
            remote_id=remote_id, status=JobStatus.COMPLETED, progress=100.0,
            files=(file,) if file else (), native_status="unrestricted", source=source,
        )

    def get_status(self, remote_id: str) -> JobStatusResponse:
        """One job: ``/torrents/info/{id}`` (a link job is complete from the start)."""
        kind, ident = self._parse(remote_id)
        if kind == "link":
            payload = self.tracker.payloads.get(remote_id)
            source = payload.url if payload else None
            return self._link_status(remote_id, self._link_files.get(remote_id), source)
        info = self.api.get_object(f"/torrents/info/{ident}")
        return self.tracker.process(remote_id, info, has_files=True)

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        """Every known job in one paged pass over ``/torrents`` (ETag-revalidated)."""
        result: dict[str, JobStatusResponse] = {}
        wanted: dict[str, str] = {}
        for remote_id in remote_ids:
            parsed = _try_parse(remote_id)
            if parsed is None:
                continue
            if parsed[0] == "link":
                result[remote_id] = self.get_status(remote_id)
            else:
                wanted[parsed[1]] = remote_id
        if not wanted:
            return result
        found, complete, pages = scan_torrents(self.api, set(wanted), self.page_size)
        missing = [ident for ident in wanted if ident not in found]
        if missing and (not complete or pages > 1):
            # An empty page before X-Total-Count (unchained-android#329) or items
            # shifting between pages: check the missing ones directly.
            if len(missing) > _VERIFY_LIMIT:
                raise ProviderError(
                    f"the torrent list came back incomplete ({len(missing)} torrents missing)",
                    self.name, code="LIST_INCOMPLETE", retryable=True,
                )
            for ident in missing:
                try:
                    found[ident] = self.api.get_object(f"/torrents/info/{ident}")
                except ProviderError as error:
                    if error.code != "NOT_FOUND":
                        raise
        for ident, item in found.items():
            remote_id = wanted[ident]
            try:
                result[remote_id] = self.tracker.process(remote_id, item, has_files="files" in item)
            except ProviderError as error:
                if error.code != "NOT_FOUND":  # deleted meanwhile: left out, as unknown
                    raise
        return result

    def find_existing(
        self, payload: StartJobPayload, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        """The torrent with this info-hash (or the download of this link) already on the account.

        Adding the same hash twice makes a second torrent (zurg-public#92), so the
        engine asks this before submitting again after a crash. The newest match
        that has not failed and is not in ``exclude`` (owned by another job) wins;
        a failed one is not adopted.
        """
        excluded = exclude if isinstance(exclude, Set) else frozenset(exclude)
        if payload.kind == "url":
            for page in pages(self.api, "/downloads", self.page_size):
                for item in page.items:
                    if item.get("link") == payload.url and f"link:{item.get('id')}" not in excluded:
                        return self._adopt_download(item, payload)
            return None
        info_hash = payload.info_hash
        for page in pages(self.api, "/torrents", self.page_size):
            for item in page.items:
                if str(item.get("hash") or "").lower() != info_hash:
                    continue
                remote_id = f"torrent:{item.get('id')}"
                if remote_id in excluded:
                    continue
                status = self.tracker.response(remote_id, item)
                if status.status is not JobStatus.FAILED:
                    self.tracker.attach(remote_id, payload)
                    return status
        return None

    def _adopt_download(
        self, item: Mapping[str, Any], payload: StartJobPayload
    ) -> JobStatusResponse:
        with self.api.parsing("GET /downloads"):
            remote_id = f"link:{item['id']}"
            file = JobFile(0, str(item.get("filename") or "download.bin"),
                           int(item.get("filesize") or 0), link=str(item["download"]))
        self._link_files[remote_id] = file
        self.tracker.attach(remote_id, payload)
        return self._link_status(remote_id, file, payload.url)

    def cancel(self, remote_id: str) -> CancelJobResponse:
        """``DELETE /torrents/delete/{id}`` (or the /downloads entry); 404 means already gone."""
        kind, ident = self._parse(remote_id)
        if remote_id in self.tracker.deleted:  # deleted when the provider gave up on it
            self.tracker.forget(remote_id)
            return CancelJobResponse(remote_id, cancelled=True, already_gone=True)
        path = f"/torrents/delete/{ident}" if kind == "torrent" else f"/downloads/delete/{ident}"
        gone = False
        try:
            self.api.call("DELETE", path, ok=(204,))
        except ProviderError as error:
            if error.code != "NOT_FOUND":
                raise
            gone = True
        self.tracker.forget(remote_id)
        self._link_files.pop(remote_id, None)
        return CancelJobResponse(remote_id, cancelled=True, already_gone=gone)

    def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
        """Direct URLs for the selected files (``ready=False`` while links are missing).

        Inside the engine (a non-blocking context) a call sends at most one request,
        so a pack never holds the provider actor: each file's unrestrict is its own
        call, and the answer says ``more`` until the last. A provider used on its own
        answers whole. A payload with ``download_dir`` gets RD's links as they are:
        ``resolve_download_url`` unrestricts each when its download starts.
        """
        kind, ident = self._parse(remote_id)
        self.tracker.payloads.setdefault(remote_id, payload)
        if kind == "link":
            file = self._link_files.get(remote_id)
            known = self.links.known(file.link) if file and file.link else None
            if file is None or (known is not None and not self.links.fresh(known)):
                if payload.url is None:
                    raise ProviderError(f"no link known for {remote_id}", self.name,
                                        code="NOT_FOUND")
                item = self.links.unrestrict(payload.url, torrent_link=False)
                file = self._link_file(remote_id, item)
            return FileLinksResponse(remote_id, (file,), ready=True)
        return self.links.file_links(
            remote_id, payload, lambda: self.api.get_object(f"/torrents/info/{ident}"),
            one_request=not self.context.blocking,
        )

    def resolve_download_url(self, remote_id: str, file: JobFile) -> str:
        """The file's direct URL while fresh, else a new one from the same RD link.

        A file given with RD's own link (a ``download_dir`` job) is unrestricted
        here, once while the answer is fresh.
        """
        kind, ident = self._parse(remote_id)
        known = self.links.known(file.link) if file.link else None
        if known is not None and self.links.fresh(known):
            return known.download
        source = known.source if known else None
        if source is None and kind == "link":
            payload = self.tracker.payloads.get(remote_id)
            source = payload.url if payload else None
        elif source is None:
            source = self.links.torrent_link_for(
                remote_id, file, lambda: self.api.get_object(f"/torrents/info/{ident}")
            )
        if source is None:
            return super().resolve_download_url(remote_id, file)
        # A known URL that aged is replaced; RD's own link may have a fresh answer cached.
        force = known is not None
        return self.links.unrestrict(source, torrent_link=kind == "torrent", force=force).download

    def forget_download_url(self, remote_id: str, file: JobFile, url: str) -> None:
        """A direct URL that stopped working is unrestricted again from its RD link."""
        self.links.forget_download(url)
        if file.link is not None and file.link != url:
            self.links.forget_download(file.link)

    def link_expired(self, remote_id: str, file: JobFile, issued_at: float) -> bool:
        """True when ``file``'s direct URL is older than ``link_ttl``: by what we know
        of it, else (after a restart) by when it was handed out. RD's own links (a
        ``download_dir`` job's) are not direct URLs, and are unrestricted per file."""
        link = file.link
        if not link or is_torrent_link(link):
            return False
        known = self.links.known(link)
        if known is not None:
            return not self.links.fresh(known)
        return self.context.clock.time() - issued_at >= self.links.link_ttl

    def test_connection(self) -> TestConnectionResponse:
        """``GET /user``: who we are and the premium left; a failure is ok=False, not a raise."""
        try:
            user = self.api.get_object("/user")
        except ProviderError as error:
            if error.code in ("BAD_TOKEN", "AUTH_REQUIRED"):
                message = ("Real-Debrid refused the token (bad_token): "
                           "set a new api_token or log in again")
                if error.code == "AUTH_REQUIRED":
                    message = error.message
            else:
                message = f"Real-Debrid did not answer properly: {error.message}"
            return TestConnectionResponse(self.name, ok=False, message=message,
                                          details={"code": error.code})
        with self.api.parsing("GET /user"):
            premium = int(user.get("premium") or 0)
            username = str(user.get("username") or "")
            details = {"premium_seconds": premium, "type": user.get("type"),
                       "expiration": user.get("expiration"), "max_active": self._max_active}
        # riven tests premium > 0; torrents and most unrestricts need it (facts section 6.2).
        if premium <= 0:
            return TestConnectionResponse(
                self.name, ok=False, account=username, details=details,
                message=f"token works for {username}, but the account has no premium left",
            )
        return TestConnectionResponse(
            self.name, ok=True, account=username, details=details,
            message=f"connected as {username}, premium for {premium // 86400} more days",
        )

    def close(self) -> None:
        """Close the HTTP connection pools."""
        self.api.close()

    # -- OAuth device flow (for a CLI) -----------------------------------------------
    def start_device_auth(self) -> DeviceAuthorization:
        """Start the device login; show ``user_code`` and ``verification_url`` to the user."""
        return _device.start(self.api)

    def poll_device_auth(self, device: DeviceAuthorization) -> None:
        """Block (on the context clock) until the user approves; raises AUTH_EXPIRED after."""
        _device.poll_until_done(self.api, device)

    def poll_device_auth_once(self, device: DeviceAuthorization) -> bool:
        """One poll: True once the tokens are stored, False while the user has not approved."""
        return _device.poll_once(self.api, device)

    def refresh_access_token(self) -> None:
        """Get a new OAuth access token with the stored refresh token now."""
        self.api.refresh()

    # -- internals -----------------------------------------------------------------
    def _read_active_limit(self) -> None:
        """``GET /torrents/activeCount`` -> ``max_active`` (best effort)."""
        try:
            body = self.api.get_object("/torrents/activeCount")
            limit = body.get("limit")
            if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
                self._max_active = limit
                self._limit_read = True
        except ProviderError as error:
            if not error.retryable:
                raise
            log.info("active_limit_unknown", provider=self.name, code=error.code)

    def _parse(self, remote_id: str) -> tuple[str, str]:
        parsed = _try_parse(remote_id)
        if parsed is None:
            raise ProviderError(f"not a Real-Debrid remote id: {remote_id!r}", self.name,
                                code="NOT_FOUND")
        return parsed


def _try_parse(remote_id: str) -> tuple[str, str] | None:
    """``("torrent" | "link", id)``; ids are checked because they go into URL paths."""
    kind, _, ident = str(remote_id).partition(":")
    if kind in ("torrent", "link") and _SAFE_ID.fullmatch(ident):
        return kind, ident
    return None
