"""``HttpBackend``: a running daemon, over the control API (docs/faces.md)."""

from __future__ import annotations

import builtins
import hmac
import json
import math
import secrets
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from engine.cli._backend import TERMINAL, JobData, is_newer
from engine.cli._errors import (
    BAD_INPUT,
    CONFLICT,
    FAILED,
    NOT_FOUND,
    UNREACHABLE,
    CliError,
)
from engine.settings import token_proof

__all__ = ["HttpBackend", "check_proof", "daemon_answers"]

#: The daemon's error statuses, as exit codes (anything else is a failure, 1).
_EXIT_BY_STATUS = {
    400: BAD_INPUT,
    401: UNREACHABLE,
    403: UNREACHABLE,
    404: NOT_FOUND,
    409: CONFLICT,
    413: BAD_INPUT,
    422: BAD_INPUT,
    429: UNREACHABLE,
    503: UNREACHABLE,
    504: FAILED,
}

#: How long to wait for the daemon to answer an ordinary request.
_TIMEOUT = 60.0


def daemon_answers(url: str, timeout: float = 1.0) -> bool:
    """True when something answers ``GET {url}/api/health`` (any status) within ``timeout``."""
    try:
        httpx.get(f"{url}/api/health", timeout=timeout)
    except (httpx.HTTPError, ValueError):
        return False
    return True


def check_proof(url: str, token: str, timeout: float = 5.0) -> None:
    """Make sure the daemon at ``url`` holds ``token`` before sending it there.

    Review finding: the command line sent its bearer token to whatever answered on
    the daemon's port; another user's process listening there while the daemon was
    down received a token that never changes. The daemon answers a fresh nonce with
    an HMAC only the token's holder can make; anything else is refused (exit 3).
    """
    nonce = secrets.token_urlsafe(24)
    try:
        answer = httpx.get(f"{url}/api/proof", params={"nonce": nonce}, timeout=timeout)
        proof = answer.json().get("proof") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        proof = None
    if not isinstance(proof, str) or not hmac.compare_digest(proof, token_proof(token, nonce)):
        raise CliError(UNREACHABLE, "not_the_daemon",
                       f"{url} answers but cannot prove it holds this daemon's API token; "
                       "the token was not sent (another process on that port?)")


class HttpBackend:
    """The control API of the daemon at ``url``, with the bearer ``token`` (see ``Backend``)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.where = f"daemon {url}"
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=_TIMEOUT)

    def _request(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **options)
        except httpx.HTTPError as error:
            raise CliError(UNREACHABLE, "unreachable",
                           f"daemon {self.url} did not answer: {type(error).__name__}") from error
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise _api_error(response.status_code, body)
        if not isinstance(body, dict):
            raise CliError(FAILED, "bad_answer",
                           f"daemon {self.url} answered {method} {path} with no JSON object")
        return body

    def create_jobs(
        self, provider: str, payloads: Sequence[dict[str, Any]]
    ) -> builtins.list[JobData]:
        """See ``Backend.create_jobs`` (one request per job: the API creates one at a time;
        the command checked every payload first, so a refusal is rare past the first)."""
        return [
            self._request("POST", "/api/jobs", json={"provider": provider, "payload": p})["job"]
            for p in payloads
        ]

    def get(self, job_id: str) -> JobData:
        """See ``Backend.get``."""
        job: JobData = self._request("GET", f"/api/jobs/{_segment(job_id)}")["job"]
        return job

    def list(
        self,
        *,
        status: Sequence[str] = (),
        provider: str | None = None,
        search: str | None = None,
        limit: int = 50,
    ) -> tuple[builtins.list[JobData], int]:
        """See ``Backend.list``."""
        params: dict[str, str | int] = {"limit": limit, "sort": "created_at", "order": "desc"}
        if status:
            params["status"] = ",".join(s.lower() for s in status)
        if provider:
            params["provider"] = provider
        if search:
            params["q"] = search
        body = self._request("GET", "/api/jobs", params=params)
        jobs: builtins.list[JobData] = body["jobs"]
        return jobs, int(body.get("total", len(jobs)))

    def cancel(self, job_id: str) -> JobData:
        """See ``Backend.cancel``."""
        job: JobData = self._request("POST", f"/api/jobs/{_segment(job_id)}/cancel")["job"]
        return job

    def retry(self, job_id: str) -> JobData:
        """See ``Backend.retry``."""
        job: JobData = self._request("POST", f"/api/jobs/{_segment(job_id)}/retry")["job"]
        return job

    def clear(self) -> int:
        """See ``Backend.clear``."""
        return int(self._request("DELETE", "/api/jobs", params={"status": "completed"})["deleted"])

    def providers(self) -> builtins.list[dict[str, Any]]:
        """See ``Backend.providers``."""
        body = self._request("GET", "/api/providers")
        providers: builtins.list[dict[str, Any]] = body["providers"]
        return providers

    def test(self, name: str) -> dict[str, Any]:
        """See ``Backend.test``."""
        result: dict[str, Any] = self._request(
            "POST", f"/api/providers/{_segment(name)}/test")["result"]
        return result

    def wait_events(self, job_ids: Sequence[str], deadline: float) -> Iterator[JobData]:
        """See ``Backend.wait_events``: the event stream, read again from the last id it gave."""
        current: dict[str, JobData] = {}
        last_id: str | None = None
        snapshot = True
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # The daemon sends a keepalive every 15 s: a longer silence is the deadline.
            read = None if math.isinf(left) else left
            try:
                with self._client.stream(
                    "GET", "/api/events", headers=headers,
                    timeout=httpx.Timeout(10.0, read=read),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        yield from self._poll(job_ids, deadline, current)
                        return
                    # Read after the stream is open: no change falls between the two.
                    if snapshot:
                        for job_id in job_ids:
                            current[job_id] = self.get(job_id)
                            yield current[job_id]
                        snapshot = False
                        if _all_done(current):
                            return
                    for kind, event_id, data in _events(response.iter_lines()):
                        if event_id is not None:
                            last_id = event_id
                        if kind == "reset":
                            for job_id in job_ids:
                                current[job_id] = self.get(job_id)
                                yield current[job_id]
                        elif kind == "job" and isinstance(data, dict):
                            job = data.get("job")
                            if (isinstance(job, dict) and job.get("id") in job_ids
                                    and is_newer(job, current.get(job["id"]))):
                                current[job["id"]] = job
                                yield job
                        if _all_done(current):
                            return
                        if time.monotonic() >= deadline:
                            return
            except httpx.ReadTimeout:
                return
            except httpx.HTTPError as error:
                if not daemon_answers(self.url):
                    raise CliError(UNREACHABLE, "unreachable",
                                   f"daemon {self.url} went away: {type(error).__name__}"
                                   ) from error

    def _poll(
        self, job_ids: Sequence[str], deadline: float, current: dict[str, JobData]
    ) -> Iterator[JobData]:
        """Without an event stream: ask for each job once a second."""
        while True:
            for job_id in job_ids:
                job = self.get(job_id)
                if current.get(job_id) != job:
                    current[job_id] = job
                    yield job
            if _all_done(current) or time.monotonic() >= deadline:
                return
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """See ``Backend.close``."""
        self._client.close()


def _all_done(current: dict[str, JobData]) -> bool:
    return bool(current) and all(job.get("status") in TERMINAL for job in current.values())


def _segment(value: str) -> str:
    """``value`` as one URL path segment (an id with a slash must not change the route)."""
    from urllib.parse import quote  # noqa: PLC0415

    return quote(value, safe="")


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str | None, Any]]:
    """Server-sent events as (event name, id, parsed JSON data or None)."""
    kind: str = "message"
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                try:
                    parsed = json.loads("\n".join(data))
                except ValueError:
                    parsed = None
                yield kind, event_id, parsed
            elif kind == "reset":
                yield kind, event_id, None
            kind, event_id, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "id":
            event_id = value
        elif name == "data":
            data.append(value)


def _api_error(status: int, body: object) -> CliError:
    error = body.get("error") if isinstance(body, dict) else None
    exit_code = _EXIT_BY_STATUS.get(status, FAILED)
    if isinstance(error, dict):
        field = error.get("field")
        return CliError(
            exit_code,
            str(error.get("code") or f"http_{status}"),
            str(error.get("message") or f"HTTP {status}"),
            str(field) if field is not None else None,
        )
    return CliError(exit_code, f"http_{status}", f"the daemon answered HTTP {status}")
