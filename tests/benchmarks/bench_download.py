"""Local download speed, CPU and memory next to curl and aria2 (run by hand; not collected).

    .venv/bin/python tests/benchmarks/bench_download.py                 # 1 GiB, 3 rounds
    .venv/bin/python tests/benchmarks/bench_download.py --size-mb 256 --runs 5 --only throughput

Needs Debian's nginx (``apt-get install -y nginx``) and, for its row, aria2
(``apt-get install -y aria2``). Everything stays on 127.0.0.1: a file of
random bytes is served by a user-level nginx (generated config, temp dir,
``sendfile on``) and every tool downloads it, each in its own subprocess, to a
fresh folder on the same disk; each result's md5 is checked against the source.

Prints:
- a table of curl, aria2 (``-x4 -s4``) and the engine with 1 and 4
  connections, each without a checksum (the engine checks the size) and with
  an md5 (``curl`` then ``md5sum -c``; ``aria2c --checksum=md5=``; the engine
  given the md5 by its provider): seconds (median of ``--runs`` interleaved
  rounds), the engine's job time, MB/s, the ratio to the peer doing the same
  checks, CPU seconds per GB and peak RSS (``wait4`` of each child, so both
  are that child's alone). An engine row is the wall time of a whole child
  process: interpreter and engine start-up, job creation, provider round trip,
  download, checks, engine stop. Goals: engine x1 >= 0.9 x curl, engine x4 >=
  1.0 x aria2 (and the same for the md5 rows against their peers);
- cap accuracy: an engine with ``bandwidth_bps=10_000_000`` downloading a
  100 MiB file: achieved rate, its error, the most bytes in any 10 s window
  (from ``files[0].bytes_done`` sampled every 0.5 s in the child);
- bytes fetched again after a SIGKILL at 50 %: an engine (1 connection,
  ``checkpoint_bytes`` 8 MiB) is killed once half the file is recorded, a
  second engine on the same database and folder finishes the job; re-fetched
  = body bytes nginx sent to both (``$body_bytes_sent`` in its access log)
  minus the file size.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench_table import print_table

MiB = 1024 * 1024
GB = 1e9
NGINX = "/usr/sbin/nginx"
FILE_NAME = "bench.bin"
CAP_BPS = 10_000_000
CAP_SIZE_MB = 100
WINDOW_S = 10.0
#: Finer checkpoints for the cap run, so that the sampled bytes_done moves in 1 MiB steps.
CAP_CHECKPOINT = MiB


# --------------------------------------------------------------------------- the engine child


def _bench_provider_class() -> type:
    """The benchmark's provider: every job is already COMPLETED, its one file linked
    to the payload's ``url`` (echoed as it is)."""
    from providers import (  # noqa: PLC0415
        BaseProvider,
        CancelJobResponse,
        FileLinksResponse,
        JobFile,
        JobStatus,
        JobStatusResponse,
        StartJobPayload,
        TestConnectionResponse,
    )

    class BenchProvider(BaseProvider):
        name = "bench"

        def __init__(self, size: int, md5: str | None = None, name: str = "bench") -> None:
            super().__init__()
            self.name = name
            self.size = size
            self.md5 = md5
            self._urls: dict[str, str] = {}

        def _files(self, remote_id: str) -> tuple[Any, ...]:
            url = self._urls.get(remote_id, remote_id.removeprefix("bench:"))
            return (JobFile(id=0, name=FILE_NAME, size=self.size, link=url, md5=self.md5),)

        def start_job(self, payload: StartJobPayload) -> JobStatusResponse:
            assert payload.url is not None
            remote_id = f"bench:{payload.url}"
            self._urls[remote_id] = payload.url
            return self.get_status(remote_id)

        def get_status(self, remote_id: str) -> JobStatusResponse:
            return JobStatusResponse(
                remote_id, JobStatus.COMPLETED, progress=100.0, files=self._files(remote_id)
            )

        def list_statuses(self, remote_ids: Sequence[str]) -> Mapping[str, JobStatusResponse]:
            return {rid: self.get_status(rid) for rid in remote_ids}

        def cancel(self, remote_id: str) -> CancelJobResponse:
            return CancelJobResponse(remote_id)

        def get_file_links(self, remote_id: str, payload: StartJobPayload) -> FileLinksResponse:
            return FileLinksResponse(remote_id, self._files(remote_id), ready=True)

        def test_connection(self) -> TestConnectionResponse:
            return TestConnectionResponse(self.name, ok=True)

    return BenchProvider


def engine_child(args: argparse.Namespace) -> int:
    """``--engine-child URL CONNECTIONS OUTDIR``: one job, to the end; 0 when verified.

    Prints ``bytes N`` every 0.2 s with ``--progress``, and a last line of JSON
    (status, verified, elapsed, the 0.5 s samples of ``bytes_done``)."""
    from actors import DownloadSettings  # noqa: PLC0415
    from engine import Engine, EngineConfig, JobStatus  # noqa: PLC0415
    from providers import ProviderRegistry  # noqa: PLC0415

    url, connections, outdir = args.engine_child
    registry = ProviderRegistry()
    registry.register_provider("bench", _bench_provider_class())
    settings: dict[str, Any] = {}
    if args.checkpoint_bytes is not None:
        settings["checkpoint_bytes"] = args.checkpoint_bytes
    config = EngineConfig(
        database=args.db,
        registry=registry,
        providers={"bench": {"size": args.file_size, "md5": args.md5, "poll_interval": 0.2}},
        downloads=DownloadSettings(**settings),
        bandwidth_bps=args.bandwidth,
    )
    samples: list[tuple[float, int]] = []
    with Engine(config) as engine:
        if args.job_id:
            job_id = args.job_id
        else:
            payload = {"url": url, "download_dir": outdir, "connections": int(connections)}
            job_id = engine.create_job("bench", payload).id
            print(f"job {job_id}", flush=True)
        stop = threading.Event()

        def sample() -> None:
            start = time.monotonic()
            next_sample = start
            while not stop.is_set():
                done = engine.get_job(job_id).files
                n = done[0].bytes_done if done else 0
                now = time.monotonic()
                if now >= next_sample:
                    samples.append((now - start, n))
                    next_sample += 0.5
                if args.progress:
                    print(f"bytes {n}", flush=True)
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        t0 = time.monotonic()
        sampler.start()
        job = engine.wait(job_id, timeout=args.timeout)
        elapsed = time.monotonic() - t0
        stop.set()
        sampler.join()
        samples.append((elapsed, job.files[0].bytes_done if job.files else 0))
        ok = (
            job.status is JobStatus.COMPLETED
            and bool(job.files)
            and job.files[0].verified is not None
        )
        report = {
            "status": job.status.value,
            "verified": job.files[0].verified if job.files else None,
            "local_path": job.files[0].local_path if job.files else None,
            "error": str(job.error) if job.error else None,
            "elapsed": elapsed,
            "samples": samples,
        }
    print(json.dumps(report), flush=True)
    return 0 if ok else 1


# --------------------------------------------------------------------------- nginx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """\
{user}daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 256; }}
http {{
    log_format bench '$remote_addr [$time_local] "$request" $status '
                     '$bytes_sent $body_bytes_sent "$http_range"';
    access_log {tmp}/access.log bench;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
    }}
}}
"""


def start_nginx(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port))
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10.0
    while True:
        if proc.poll() is not None:
            log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            if time.monotonic() > deadline:
                proc.terminate()
                raise RuntimeError("nginx did not listen within 10 s") from None
            time.sleep(0.02)


def body_bytes_since(log: Path, offset: int) -> tuple[int, int]:
    """Sum of ``$body_bytes_sent`` in the access log after ``offset``; and the lines."""
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode().splitlines()
    # ... $status $bytes_sent $body_bytes_sent "$http_range"
    return sum(int(line.rsplit('"', 2)[0].split()[-1]) for line in lines if line), len(lines)


def settle_log(log: Path, expect_lines: int, offset: int, timeout: float = 5.0) -> None:
    """Wait until nginx has logged ``expect_lines`` requests after ``offset`` (it logs
    a request when its connection ends, which can lag a killed client)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if body_bytes_since(log, offset)[1] >= expect_lines:
            return
        time.sleep(0.05)


# --------------------------------------------------------------------------- measuring


def make_file(path: Path, size: int) -> str:
    """``size`` random bytes written in 8 MiB chunks; their md5."""
    digest = hashlib.md5()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(8 * MiB, left))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


class Child:
    """A subprocess reaped with ``wait4``: its own CPU time and peak RSS."""

    def __init__(self, argv: Sequence[str], *, capture: bool = False) -> None:
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.stderr_text = ""
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        self.wall = 0.0
        self.cpu = 0.0
        self.rss_mb = 0.0
        self.code: int | None = None

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr_text = self.proc.stderr.read().decode(errors="replace")

    def reap(self) -> int:
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.wall = time.monotonic() - self.start
        self.code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.code
        self.cpu = usage.ru_utime + usage.ru_stime
        self.rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
        self._stderr_reader.join(5.0)
        return self.code


def engine_argv(
    url: str, connections: int, outdir: Path, db: Path, size: int, md5: str | None, *extra: str
) -> list[str]:
    checksum = ["--md5", md5] if md5 else []
    return [
        sys.executable, str(Path(__file__).resolve()), "--engine-child",
        url, str(connections), str(outdir),
        "--db", str(db), "--file-size", str(size), *checksum, *extra,
    ]  # fmt: skip


#: Each tool's row: what it checks, and the row it is measured against (its peer
#: doing the same work: no checksum against no checksum, md5 against md5).
TOOLS: dict[str, tuple[str, str | None]] = {
    "curl": ("none", None),
    "aria2": ("none", None),
    "engine x1": ("size", "curl"),
    "engine x4": ("size", "aria2"),
    "curl + md5sum": ("md5", None),
    "aria2 --checksum": ("md5", None),
    "engine x1 md5": ("size+md5", "curl + md5sum"),
    "engine x4 md5": ("size+md5", "aria2 --checksum"),
}
#: The goals of issue 11: engine row, its peer, the least ratio (peer s / engine s).
GOALS = (
    ("engine x1", "curl", 0.9),
    ("engine x4", "aria2", 1.0),
    ("engine x1 md5", "curl + md5sum", 0.9),
    ("engine x4 md5", "aria2 --checksum", 1.0),
)


def tool_argv(tool: str, url: str, outdir: Path, db: Path, size: int, md5: str) -> list[str]:
    out = outdir / FILE_NAME
    aria2 = ["aria2c", "-x4", "-s4", "-d", str(outdir), "-o", FILE_NAME, "-q",
             "--allow-overwrite=true", "--file-allocation=none"]  # fmt: skip
    match tool:
        case "curl":
            return ["curl", "-s", "-o", str(out), url]
        case "curl + md5sum":  # what a user of curl does to check the file
            script = f'curl -s -o "$1" "$2" && echo "{md5}  $1" | md5sum --quiet -c -'
            return ["sh", "-c", script, "sh", str(out), url]
        case "aria2":
            return [*aria2, url]
        case "aria2 --checksum":
            return [*aria2, f"--checksum=md5={md5}", url]
    connections = int(tool.split()[1].removeprefix("x"))
    return engine_argv(url, connections, outdir, db, size, md5 if "md5" in tool else None)


def run_tool(
    tool: str, url: str, tmp: Path, size: int, md5: str, run: int
) -> tuple[float, float, float, dict[str, Any] | None]:
    """One download by ``tool``: wall seconds, CPU seconds, peak RSS MB; engine report."""
    slug = tool.replace(" ", "-").replace("+", "").replace("--", "")
    outdir = tmp / f"out-{slug}-{run}"
    outdir.mkdir()
    out = outdir / FILE_NAME
    report = None
    engine = tool.startswith("engine")
    argv = tool_argv(tool, url, outdir, tmp / f"{slug}-{run}.db", size, md5)
    child = Child(argv, capture=engine)
    stdout = child.proc.stdout.read().decode() if child.proc.stdout else ""
    code = child.reap()
    if engine:
        report = last_json(stdout)
        if report and report.get("local_path"):
            out = Path(report["local_path"])
    if code != 0:
        raise RuntimeError(
            f"{tool} exited with {code}: {child.stderr_text[-2000:]}{stdout[-2000:]}"
        )
    if engine and report is not None:
        expected = "size+md5" if "md5" in tool else "size"
        if report.get("verified") != expected:
            raise RuntimeError(f"{tool}: verified {report.get('verified')!r}, not {expected}")
    got = md5_of(out)
    if got != md5:
        raise RuntimeError(f"{tool}: md5 {got} != source {md5}")
    shutil.rmtree(outdir)
    return child.wall, child.cpu, child.rss_mb, report


def last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def max_window(samples: Sequence[Sequence[float]], window: float) -> int:
    """Most bytes between two samples at most ``window`` seconds apart."""
    best = 0
    for i, (t0, b0) in enumerate(samples):
        for t1, b1 in samples[i:]:
            if t1 - t0 > window + 1e-9:
                break
            best = max(best, int(b1 - b0))
    return best


def throughput(args: argparse.Namespace, tmp: Path, url: str, size: int, md5: str) -> None:
    tools = list(TOOLS)
    if not shutil.which("aria2c"):
        print("aria2c not found: apt-get install -y aria2 (its rows are skipped)")
        tools = [t for t in tools if "aria2" not in t and "x4" not in t]
    if not shutil.which("md5sum"):
        tools = [t for t in tools if t != "curl + md5sum" and t != "engine x1 md5"]
    results: dict[str, list[tuple[float, float, float, float | None]]] = {t: [] for t in tools}
    for run in range(args.runs):  # interleaved: every tool once per round
        for tool in tools:
            wall, cpu, rss, report = run_tool(tool, url, tmp, size, md5, run)
            job = float(report["elapsed"]) if report else None
            results[tool].append((wall, cpu, rss, job))
    gb = size / GB
    secs = {t: statistics.median(r[0] for r in rs) for t, rs in results.items()}
    rows = []
    for tool, rs in results.items():
        s = secs[tool]
        checks, peer = TOOLS[tool]
        ratio = f"{secs[peer] / s:.2f} x {peer}" if peer in secs else "-"
        jobs = [r[3] for r in rs if r[3] is not None]
        job = f"{statistics.median(jobs):.2f}" if jobs else "-"
        cpu = statistics.median(r[1] for r in rs)
        rss = max(r[2] for r in rs)
        rows.append((tool, checks, f"{s:.2f}", job, f"{size / 1e6 / s:.0f}", ratio,
                     f"{cpu / gb:.2f}", f"{rss:.0f}"))  # fmt: skip
    print(f"\n{size // MiB} MiB from nginx on 127.0.0.1, median of {args.runs} interleaved "
          f"round(s); {os.cpu_count()} CPUs")  # fmt: skip
    print_table(("tool", "checks", "seconds", "job s", "MB/s", "ratio (peer s / s)",
                 "CPU s/GB", "peak RSS MB"), rows)  # fmt: skip
    print("seconds: wall time of the whole child process; for the engine that is interpreter")
    print("and engine start-up, job, checks and engine stop; job s: create_job to COMPLETED")
    print("inside it. Each engine row is measured against its peer doing the same checks.")
    for tool, peer, least in GOALS:
        if tool in secs and peer in secs:
            ratio = secs[peer] / secs[tool]
            pairs = zip(results[peer], results[tool], strict=True)
            per_round = sorted(a[0] / b[0] for a, b in pairs)
            print(f"goal {tool} >= {least} x {peer}: {ratio:.2f} (rounds "
                  f"{per_round[0]:.2f}-{per_round[-1]:.2f}) -> "
                  f"{'met' if ratio >= least else 'NOT met'}")  # fmt: skip


def cap_accuracy(tmp: Path, port: int) -> None:
    size = CAP_SIZE_MB * MiB
    md5 = make_file(tmp / "www" / "cap.bin", size)
    url = f"http://127.0.0.1:{port}/cap.bin"
    outdir = tmp / "out-cap"
    outdir.mkdir()
    argv = engine_argv(
        url,
        1,
        outdir,
        tmp / "cap.db",
        size,
        md5,
        "--bandwidth",
        str(CAP_BPS),
        "--checkpoint-bytes",
        str(CAP_CHECKPOINT),
    )
    child = Child(argv, capture=True)
    stdout = child.proc.stdout.read().decode() if child.proc.stdout else ""
    if child.reap() != 0:
        raise RuntimeError(f"cap child exited with {child.code}: {child.stderr_text[-2000:]}")
    report = last_json(stdout)
    assert report is not None
    samples = report["samples"]
    # From the first sample with bytes to the last: the download itself.
    first = next((t for t, b in samples if b > 0), 0.0)
    duration = samples[-1][0] - first
    moved = samples[-1][1] - next((b for t, b in samples if b > 0), 0)
    rate = moved / duration if duration > 0 else float("nan")
    job_rate = size / report["elapsed"]
    window = max_window(samples, WINDOW_S)
    allowed = CAP_BPS * WINDOW_S
    print(f"\ncap accuracy: {CAP_SIZE_MB} MiB, 1 connection, bandwidth_bps={CAP_BPS:_}")
    print_table(
        ("measure", "value", "vs 10 MB/s"),
        [
            ("rate between samples", f"{rate / 1e6:.2f} MB/s",
             f"{(rate / CAP_BPS - 1) * 100:+.1f} %"),
            ("rate over the job (create to wait)", f"{job_rate / 1e6:.2f} MB/s",
             f"{(job_rate / CAP_BPS - 1) * 100:+.1f} %"),
            (f"max bytes in any {WINDOW_S:.0f} s window", f"{window:_}",
             f"{(window / allowed - 1) * 100:+.1f} % of {allowed:_.0f}"),
        ],
    )  # fmt: skip
    bound = CAP_BPS * WINDOW_S + 256 * 1024 + CAP_BPS
    print(f"({len(samples)} samples of files[0].bytes_done every 0.5 s, checkpoint_bytes 1 MiB;")
    print(f" docs/downloads.md bound for 10 s: rate x window + one chunk + 1 s = {bound:_.0f})")
    shutil.rmtree(outdir)


def kill_resume(tmp: Path, url: str, size: int, md5: str, log: Path) -> None:
    outdir = tmp / "out-kill"
    outdir.mkdir()
    db = tmp / "kill.db"
    offset = log.stat().st_size
    first = Child(engine_argv(url, 1, outdir, db, size, md5, "--progress"), capture=True)
    assert first.proc.stdout is not None
    job_id = None
    killed_at = 0
    for raw in first.proc.stdout:
        line = raw.decode().strip()
        if line.startswith("job "):
            job_id = line.split()[1]
        elif line.startswith("bytes ") and int(line.split()[1]) >= size // 2:
            killed_at = int(line.split()[1])
            first.proc.send_signal(signal.SIGKILL)
            break
    first.proc.stdout.close()
    code = first.reap()
    if job_id is None or killed_at == 0:
        raise RuntimeError(
            f"first kill child ended ({code}) before 50 %: {first.stderr_text[-2000:]}"
        )
    settle_log(log, 1, offset)
    first_sent, first_lines = body_bytes_since(log, offset)
    mid = log.stat().st_size
    second = Child(engine_argv(url, 1, outdir, db, size, md5, "--job-id", job_id), capture=True)
    stdout = second.proc.stdout.read().decode() if second.proc.stdout else ""
    if second.reap() != 0:
        raise RuntimeError(f"resume child exited with {second.code}: {second.stderr_text[-2000:]}"
                           f"{stdout[-2000:]}")  # fmt: skip
    report = last_json(stdout) or {}
    settle_log(log, 1, mid)
    second_sent, second_lines = body_bytes_since(log, mid)
    got = md5_of(Path(report.get("local_path") or outdir / FILE_NAME))
    refetched = first_sent + second_sent - size
    print(f"\nkill at 50 %: 1 connection, checkpoint_bytes 8 MiB, {size // MiB} MiB file")
    print_table(
        ("measure", "value"),
        [
            ("bytes_done when SIGKILLed", f"{killed_at:_}"),
            ("body bytes sent to the killed engine", f"{first_sent:_} ({first_lines} requests)"),
            ("body bytes sent to the resuming engine",
             f"{second_sent:_} ({second_lines} requests)"),
            ("re-fetched bytes", f"{refetched:_} ({refetched / size * 100:.2f} % of the file)"),
            ("resumed file md5", "ok" if got == md5 else f"MISMATCH {got}"),
            ("resume wall time (whole child)", f"{second.wall:.2f} s"),
        ],
    )  # fmt: skip
    print("(bytes nginx sent to the killed engine include what sat in socket buffers unread)")
    shutil.rmtree(outdir)


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=3,
                        help="interleaved rounds of every tool (medians shown)")
    parser.add_argument("--only", choices=("throughput", "cap", "kill"),
                        help="run one part only")
    parser.add_argument("--engine-child", nargs=3, metavar=("URL", "CONNECTIONS", "OUTDIR"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--file-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--md5", help=argparse.SUPPRESS)
    parser.add_argument("--bandwidth", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint-bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--job-id", help=argparse.SUPPRESS)
    parser.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=1800.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_child:
        return engine_child(args)

    if not Path(NGINX).exists():
        print(f"{NGINX} not found: install it with  apt-get install -y nginx")
        return 2
    if not shutil.which("curl"):
        print("curl not found: install it with  apt-get install -y curl")
        return 2
    size = args.size_mb * MiB
    tmp = Path(tempfile.mkdtemp(prefix="bench-download-"))
    nginx: subprocess.Popen[bytes] | None = None
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        (tmp / "www").mkdir()
        print(f"writing {args.size_mb} MiB of random bytes to {tmp}/www ...", flush=True)
        md5 = make_file(tmp / "www" / FILE_NAME, size)
        nginx, port = start_nginx(tmp)
        url = f"http://127.0.0.1:{port}/{FILE_NAME}"
        if args.only in (None, "throughput"):
            throughput(args, tmp, url, size, md5)
        if args.only in (None, "cap"):
            cap_accuracy(tmp, port)
        if args.only in (None, "kill"):
            kill_resume(tmp, url, size, md5, tmp / "access.log")
    finally:
        if nginx is not None:
            nginx.terminate()
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - usage_before.ru_utime - usage_before.ru_stime
    print(f"\n(all children together: {cpu:.1f} CPU s)")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
