"""TorBox's endpoints, one method each, over ``ProviderHttp``.

Every request takes a token from the ``default`` bucket; the three create
endpoints also take one from ``create`` (SUPPORT: 300/min everywhere, 60/hour
with a 10/min edge for creation). The key travels as ``Authorization: Bearer``
except on requestdl, which only accepts it as the ``token`` query parameter
(SPEC; PYSDK): httpx logs that URL, and ``ProviderHttp`` masks it in the log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from providers._auth_hold import AuthHold
from providers._errors import ProviderError
from providers._http import ProviderHttp
from providers._protocol import ProviderContext
from providers.torbox._errors import envelope, envelope_data
from providers.torbox._ids import ItemKind
from providers.torbox._items import REQUESTDL

__all__ = ["CREATE_BUCKETS", "TorBoxApi"]

CREATE_BUCKETS = ("default", "create")

_LIST_PATH = {"torrent": "/v1/api/torrents/mylist", "webdl": "/v1/api/webdl/mylist"}
_CHECK_PATH = {"torrent": "/v1/api/torrents/checkcached", "webdl": "/v1/api/webdl/checkcached"}
#: (path, id field) of the control endpoints; note `webdl_id` here vs `web_id` in requestdl (SPEC).
_CONTROL = {
    "torrent": ("/v1/api/torrents/controltorrent", "torrent_id"),
    "webdl": ("/v1/api/webdl/controlwebdownload", "webdl_id"),
    "queued": ("/v1/api/queued/controlqueued", "queued_id"),
}

#: The service refusing the key itself (AUTH_ERROR, seen for valid keys, is not one).
_REFUSED_KEY = frozenset({"BAD_TOKEN", "NO_AUTH"})


class TorBoxApi:
    """Thin, typed access to the endpoints the provider uses; answers are ``data``."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        api_key: Callable[[], str],
        key_generation: Callable[[], int] = lambda: 0,
        context: Callable[[], ProviderContext],
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self._key = api_key
        self._generation = key_generation
        self.hold = AuthHold(lambda: context().clock)
        self.http = ProviderHttp(
            provider,
            base_url,
            context=context,
            timeout=timeout,
            transport=transport,
            auth_headers=lambda: {"Authorization": f"Bearer {self._key()}"},
        )
        #: The slot counts of the last ACTIVE_LIMIT answer, if it carried them (POSTMAN).
        self.last_active_limit: dict[str, Any] | None = None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the envelope's ``data``, or a ``ProviderError``."""
        generation = self._checked()
        response = self.http.request(method, path, **kwargs)
        with self._pausing(response, kwargs.get("buckets", ("default",))), self._holding(
            generation
        ):
            return envelope_data(response, self.provider, self._secret(), self._note_active_limit)

    def _checked(self) -> int:
        """The key's generation (the store read once), after the hold of a refused key."""
        generation = self._generation()
        self.hold.check(generation)
        return generation

    @contextlib.contextmanager
    def _holding(self, generation: int) -> Iterator[None]:
        """A key the service refused is not sent again for a while (``AuthHold``)."""
        try:
            yield
        except ProviderError as error:
            if error.code in _REFUSED_KEY:
                self.hold.refused(error, generation)
            raise
        self.hold.clear()

    @contextlib.contextmanager
    def _pausing(self, response: httpx.Response, buckets: Sequence[str]) -> Iterator[None]:
        """A rate limit said in the body under another status than 429 (which
        ``ProviderHttp`` pauses as it comes) pauses the request's buckets here."""
        try:
            yield
            self.http.settle(buckets)  # read as a success: rate-limit counts restart
        except ProviderError as error:
            if error.code == "RATE_LIMITED" and response.status_code != 429:
                self.http.pause(
                    buckets, error.retry_after, f"{error.code} under HTTP {response.status_code}"
                )
            raise

    def _secret(self) -> str | None:
        try:
            return self._key()
        except ProviderError:
            return None

    def _note_active_limit(self, data: dict[str, Any]) -> None:
        self.last_active_limit = data

    # -- create --------------------------------------------------------------
    def create_torrent(
        self, *, magnet: str | None, torrent: bytes | None, fields: Mapping[str, str]
    ) -> tuple[Any, str]:
        """POST torrents/createtorrent as multipart/form-data (SPEC); ``(data, detail)``."""
        # (None, value) makes httpx send a plain form field inside the multipart body.
        parts: dict[str, Any] = {name: (None, value) for name, value in fields.items()}
        if magnet is not None:
            parts["magnet"] = (None, magnet)
        if torrent is not None:
            parts["file"] = ("upload.torrent", torrent, "application/x-bittorrent")
        return self._create("/v1/api/torrents/createtorrent", files=parts)

    def create_webdl(self, link: str, fields: Mapping[str, str]) -> tuple[Any, str]:
        """POST webdl/createwebdownload, urlencoded (SPEC)."""
        return self._create("/v1/api/webdl/createwebdownload", data={"link": link, **fields})

    def _create(self, path: str, **kwargs: Any) -> tuple[Any, str]:
        self.last_active_limit = None
        generation = self._checked()
        response = self.http.request(
            "POST", path, buckets=CREATE_BUCKETS, refused_by=("create",), **kwargs
        )
        with self._pausing(response, ("create",)), self._holding(generation):
            return envelope(response, self.provider, self._secret(), self._note_active_limit)

    # -- lists ---------------------------------------------------------------
    def list_page(self, kind: ItemKind, *, bypass: bool, offset: int, limit: int) -> list[Any]:
        """One page of torrents/mylist or webdl/mylist."""
        params = {"offset": offset, "limit": limit, "bypass_cache": _flag(bypass)}
        data = self.call("GET", _LIST_PATH[kind], params=params)
        return data if isinstance(data, list) else []

    def get_item(self, kind: ItemKind, item_id: int) -> dict[str, Any] | None:
        """One item by id (``id`` makes ``data`` an object, not a list: SPEC), always fresh."""
        params = {"id": item_id, "bypass_cache": "true"}
        data = self.call("GET", _LIST_PATH[kind], params=params)
        if isinstance(data, list):  # tolerate a server that answers with a list anyway
            data = next((d for d in data if isinstance(d, dict) and d.get("id") == item_id), None)
        return data if isinstance(data, dict) else None

    def queue_page(self, kind: ItemKind, *, offset: int, limit: int) -> list[Any]:
        """One page of queued/getqueued for ``kind`` (the legacy route is gone: 410)."""
        params = {"type": kind, "offset": offset, "limit": limit, "bypass_cache": "true"}
        data = self.call("GET", "/v1/api/queued/getqueued", params=params)
        return data if isinstance(data, list) else []

    # -- actions -------------------------------------------------------------
    def control(self, target: str, item_id: int, operation: str) -> None:
        """controltorrent / controlwebdownload / controlqueued with a JSON body (SPEC)."""
        path, field = _CONTROL[target]
        self.call("POST", path, json={field: item_id, "operation": operation, "all": False})

    def request_link(self, kind: ItemKind, item_id: int, file_id: int) -> str:
        """A CDN URL for one file, from requestdl without redirect (the URL is in ``data``)."""
        path, id_param = REQUESTDL[kind]
        params = {"token": self._key(), id_param: item_id, "file_id": file_id, "redirect": "false"}
        data = self.call("GET", path, params=params, authenticated=False)
        if not isinstance(data, str) or not data.startswith(("http://", "https://")):
            raise ProviderError(
                "requestdl answered without a URL",
                self.provider,
                code="PROVIDER_UNAVAILABLE",
                retryable=True,
            )
        return data

    def cached_hashes(self, kind: ItemKind, hashes: list[str]) -> set[str]:
        """Which of ``hashes`` TorBox has cached (POST with a list: SPEC)."""
        data = self.call(
            "POST",
            _CHECK_PATH[kind],
            params={"format": "object", "list_files": "false"},
            json={"hashes": hashes},
        )
        # No hit is data null (POSTMAN) or {} (decypharr fake); a list comes with format=list.
        if isinstance(data, dict):
            return {str(h).lower() for h in data}
        if isinstance(data, list):
            return {str(d.get("hash", "")).lower() for d in data if isinstance(d, dict)}
        return set()

    def user(self) -> dict[str, Any]:
        """user/me."""
        data = self.call("GET", "/v1/api/user/me", params={"settings": "false"})
        return data if isinstance(data, dict) else {}

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


def _flag(value: bool) -> str:
    return "true" if value else "false"
