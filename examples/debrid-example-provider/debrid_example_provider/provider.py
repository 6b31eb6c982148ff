"""``ExampleProvider``: the Provider protocol over the example service's API.

The shape every provider has: options in ``__init__``, the account's rate-limit
buckets, one table mapping the service's states onto ``JobStatus``, one table
mapping its error codes onto ``ProviderError`` codes, every answer checked
before it is believed, and every failure raised as a ``ProviderError``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs
import httpx

from providers import (
    BaseProvider,
    CancelJobResponse,
    FileLinksResponse,
    JobFile,
    JobStatus,
    JobStatusResponse,
    ProviderError,
    RateLimit,
    StartJobPayload,
    TestConnectionResponse,
    converter,
    select_files,
)

__all__ = ["ERRORS", "STATES", "ExampleProvider"]

#: The service's job states (fake.py's module docstring is its API reference).
STATES: Mapping[str, JobStatus] = {
    "pending": JobStatus.QUEUED,  # accepted, not looked at yet
    "resolving": JobStatus.RESOLVING,  # fetching the source's metadata
    "downloading": JobStatus.DOWNLOADING,  # files known, progress rising
    "done": JobStatus.COMPLETED,  # file URLs present
    "error": JobStatus.FAILED,  # ``error`` says why
}

#: The service's error codes: our code, and whether trying again later can help.
ERRORS: Mapping[str, tuple[str, bool]] = {
    "bad_key": ("BAD_TOKEN", False),  # 401: the key is wrong or revoked
    "bad_source": ("INVALID_SOURCE", False),  # 400: nothing to download
    "bad_json": ("BAD_REQUEST", False),  # 400: our bug, not worth repeating
    "not_found": ("NOT_FOUND", False),  # 404: unknown job id
    "busy": ("ACTIVE_LIMIT", True),  # 429: every slot is taken
    "dead_source": ("DEAD_SOURCE", False),  # a job's error: the source is gone
}


@attrs.frozen
class _WireFile:
    n: int
    name: str
    size: int
    url: str | None = None


@attrs.frozen
class _WireJob:
    """One job as the service sends it; structured with cattrs, so a bad answer fails here."""

    id: str
    state: str
    source: str = ""
    progress: float = 0.0
    files: tuple[_WireFile, ...] = ()
    error: str | None = None


class ExampleProvider(BaseProvider):
    """The example service. Options: ``base_url`` (without it, a ``FakeExampleService``
    is started on 127.0.0.1 for this provider and stopped by ``close``), ``api_key``
    (default ``demo``, the fake's), ``timeout``, ``requests_per_second``, ``burst``,
    ``max_active`` (slots), ``name``."""

    name = "example"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str = "demo",
        timeout: float = 10.0,
        requests_per_second: float = 10.0,
        burst: int = 20,
        max_active: int | None = 5,
        name: str = "example",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self._fake: Any = None
        if base_url is None:
            from debrid_example_provider.fake import FakeExampleService  # noqa: PLC0415

            self._fake = FakeExampleService(api_key=api_key, slots=max_active or 5).start()
            base_url = self._fake.url
        self._limits = {"default": RateLimit(requests_per_second, burst)}
        self._max_active = max_active
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}"},
            follow_redirects=False,
            transport=transport,
        )

    # -- what the engine asks before calls ---------------------------------------
    def rate_limits(self) -> Mapping[str, RateLimit]:
        """One bucket for every request (BaseProvider.budgets: one token per call)."""
        return self._limits

    # -- the protocol ------------------------------------------------------------
    def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
        """POST /jobs with the payload's URL or magnet."""
        source = payload.url or payload.magnet
        if source is None:
            raise ProviderError("torrent files are not supported", self.name, code="UNSUPPORTED")
        return self._status(self._call("POST", "/jobs", json={"source": source}))

    def get_status(self, remote_id: str) -> JobStatusResponse:
        """GET /jobs/<id>."""
        return self._status(self._call("GET", f"/jobs/{remote_id}"))

    def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
        """One GET /jobs?ids=... for every id; ids the service does not know are left out."""
        if not remote_ids:
            return {}
        body = self._call("GET", "/jobs", params={"ids": ",".join(remote_ids)})
        jobs = body.get("jobs") if isinstance(body, dict) else None
        if not isinstance(jobs, list):
            raise self._bad_response("GET /jobs", "no jobs list")
        statuses = [self._status(job) for job in jobs]
        return {s.remote_id: s for s in statuses if s.remote_id in remote_ids}

    def find_existing(
        self, payload: StartJobPayload, exclude: Collection[str] = frozenset()
    ) -> JobStatusResponse | None:
        """A job already made for this source (after a crash), from the full list."""
        source = payload.url or payload.magnet
        body = self._call("GET", "/jobs")
        jobs = body.get("jobs") if isinstance(body, dict) else None
        if not isinstance(jobs, list):
            raise self._bad_response("GET /jobs", "no jobs list")
        for job in jobs:
            status = self._status(job)
            if status.source == source and status.remote_id not in exclude:
                return status
        return None

    def cancel(self, remote_id: str) -> CancelJobResponse:
        """DELETE /jobs/<id>; an unknown id is already gone."""
        try:
            self._call("DELETE", f"/jobs/{remote_id}")
        except ProviderError as error:
            if error.code == "NOT_FOUND":
                return CancelJobResponse(remote_id, cancelled=True, already_gone=True)
            raise
        return CancelJobResponse(remote_id)

    def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
        """The job's files with their URLs, the payload's selection applied."""
        status = self.get_status(remote_id)
        if status.status is not JobStatus.COMPLETED:
            return FileLinksResponse(remote_id, status.files, ready=False)
        return FileLinksResponse(remote_id, select_files(payload.select, status.files))

    def test_connection(self) -> TestConnectionResponse:
        """GET /ping: the key works; learns the slot count."""
        body = self._call("GET", "/ping")
        if not isinstance(body, dict) or not isinstance(body.get("slots"), int):
            raise self._bad_response("GET /ping", "no slots")
        self._max_active = body["slots"]
        return TestConnectionResponse(self.name, ok=True, account=str(body.get("user")))

    def close(self) -> None:
        """Close the connections (and stop the fake this provider started)."""
        self._client.close()
        if self._fake is not None:
            self._fake.stop()
            self._fake = None

    # -- HTTP and the tables -----------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ProviderError(
                f"timed out on {method} {path}", self.name, code="TIMEOUT", retryable=True
            ) from None
        except httpx.HTTPError as error:
            raise ProviderError(
                f"{type(error).__name__} on {method} {path}",
                self.name,
                code="PROVIDER_UNAVAILABLE",
                retryable=True,
            ) from None
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            return body
        native = body.get("error") if isinstance(body, dict) else None
        code, retryable = ERRORS.get(str(native), ("", False))
        if not code:  # not in the table: the status decides
            retryable = response.status_code >= 500 or response.status_code == 429
            code = "PROVIDER_UNAVAILABLE" if retryable else "PROVIDER_ERROR"
        message = body.get("message") if isinstance(body, dict) else None
        raise ProviderError(
            str(message or f"HTTP {response.status_code} on {method} {path}"),
            self.name,
            code=code,
            http_status=response.status_code,
            retryable=retryable,
        )

    def _status(self, raw: Any) -> JobStatusResponse:
        try:
            job = converter.structure(raw, _WireJob)
        except Exception as error:  # noqa: BLE001 - cattrs raises several kinds
            raise self._bad_response("job", type(error).__name__) from None
        status = STATES.get(job.state)
        if status is None:
            raise self._bad_response("job", f"unknown state {job.state!r}")
        files = tuple(JobFile(f.n, f.name, f.size, link=f.url) for f in job.files)
        error_code = error_message = None
        if status is JobStatus.FAILED:
            error_code = ERRORS.get(job.error or "", ("REMOTE_ERROR", False))[0]
            error_message = f"the service reported {job.error or 'an error'}"
        return JobStatusResponse(
            job.id,
            status,
            progress=float(job.progress),
            files=files,
            native_status=job.state,
            source=job.source or None,
            error_code=error_code,
            error_message=error_message,
        )

    def _bad_response(self, what: str, why: str) -> ProviderError:
        return ProviderError(
            f"unexpected answer to {what}: {why}", self.name, code="BAD_RESPONSE", retryable=True
        )
