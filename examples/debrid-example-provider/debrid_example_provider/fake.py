"""FakeExampleService: the tiny HTTP service that ``ExampleProvider`` talks to.

A real service would be on the internet; this one runs on 127.0.0.1 in a thread
(port 0: the OS picks one). Its API, all JSON:

- ``GET /ping``: ``{"user": ..., "slots": n}`` (401 without the right key)
- ``POST /jobs`` ``{"source": "<url or magnet>"}``: a new job, ``state`` "pending"
- ``GET /jobs?ids=a,b`` (every job without ``ids``) and ``GET /jobs/<id>``
- ``DELETE /jobs/<id>``: 204, or 404 when unknown
- ``GET /files/<id>/<n>``: a file's bytes

Each read of a job moves it one state on (pending, resolving, downloading,
done), so a client that polls sees every state without any clock. A source
containing ``fail`` ends in ``error`` (``dead_source``). Errors are
``{"error": code, "message": text}`` with an HTTP status.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeExampleService"]

_STEPS = ("pending", "resolving", "downloading", "done")
FILE_SIZE = 4096


class FakeExampleService:
    """The fake service (see the module docstring). Use as a context manager or start/stop."""

    def __init__(self, *, api_key: str = "demo", slots: int = 5, port: int = 0) -> None:
        self.api_key = api_key
        self.slots = slots
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeExampleService:
        """Serve in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeExampleService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the service ---------------------------------------------------------------
    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        """The status and JSON body (or bytes) for one request (already authenticated)."""
        parts = [p for p in path.split("/") if p]
        with self._lock:
            self.requests += 1
            if parts == ["ping"] and method == "GET":
                return 200, {"user": "demo", "slots": self.slots}
            if parts == ["jobs"] and method == "POST":
                return self._create(body)
            if parts == ["jobs"] and method == "GET":
                wanted = query.get("ids", [""])[0]
                ids = [i for i in wanted.split(",") if i] if wanted else list(self.jobs)
                return 200, {"jobs": [self._read(self.jobs[i]) for i in ids if i in self.jobs]}
            if len(parts) == 2 and parts[0] == "jobs":
                job = self.jobs.get(parts[1])
                if job is None:
                    return 404, {"error": "not_found", "message": f"no job {parts[1]}"}
                if method == "GET":
                    return 200, self._read(job)
                if method == "DELETE":
                    del self.jobs[parts[1]]
                    return 204, None
            if (
                len(parts) == 3
                and parts[0] == "files"
                and method == "GET"
                and parts[1] in self.jobs
            ):
                return 200, _file_bytes(parts[1], parts[2])
        return 404, {"error": "not_found", "message": "no such route"}

    def _create(self, body: Any) -> tuple[int, Any]:
        source = body.get("source") if isinstance(body, dict) else None
        if not isinstance(source, str) or not source:
            return 400, {"error": "bad_source", "message": "source is required"}
        active = sum(1 for j in self.jobs.values() if j["state"] not in ("done", "error"))
        if active >= self.slots:
            return 429, {"error": "busy", "message": f"{active} of {self.slots} slots in use"}
        job_id = f"ex{next(self._ids)}"
        self.jobs[job_id] = {"id": job_id, "source": source, "state": "pending", "step": 0}
        return 201, _view(self.jobs[job_id], self.url)

    def _read(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["state"] not in ("done", "error"):
            job["step"] += 1
            if "fail" in job["source"] and job["step"] >= 2:
                job["state"] = "error"
            else:
                job["state"] = _STEPS[min(job["step"], len(_STEPS) - 1)]
        return _view(job, self.url)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                # File links work without the key, as a CDN's signed links do.
                public = self.path.startswith("/files/")
                if not public and self.headers.get("Authorization") != f"Bearer {service.api_key}":
                    self._send(401, {"error": "bad_key", "message": "unknown API key"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    self._send(400, {"error": "bad_json", "message": "body is not JSON"})
                    return
                split = urlsplit(self.path)
                status, answer = service.answer(method, split.path, parse_qs(split.query), body)
                self._send(status, answer)

            def _send(self, status: int, answer: Any) -> None:
                if isinstance(answer, bytes):
                    data, kind = answer, "application/octet-stream"
                elif answer is None:
                    data, kind = b"", "application/json"
                else:
                    data, kind = json.dumps(answer).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler


def _view(job: dict[str, Any], base: str) -> dict[str, Any]:
    view: dict[str, Any] = {"id": job["id"], "source": job["source"], "state": job["state"]}
    view["progress"] = {"pending": 0, "resolving": 0, "downloading": 50, "done": 100}.get(
        job["state"], 0
    )
    if job["state"] in ("downloading", "done"):
        name = job["source"].rstrip("/").rsplit("/", 1)[-1] or "file"
        view["files"] = [
            {
                "n": 1,
                "name": name,
                "size": FILE_SIZE,
                "url": f"{base}/files/{job['id']}/1" if job["state"] == "done" else None,
            }
        ]
    if job["state"] == "error":
        view["error"] = "dead_source"
    return view


def _file_bytes(job_id: str, n: str) -> bytes:
    seed = hashlib.sha256(f"{job_id}/{n}".encode()).digest()
    return (seed * (FILE_SIZE // len(seed) + 1))[:FILE_SIZE]
