"""A DownloadActor with stand-ins around it: a link desk for the provider actor and
an owner that records what the download tells its job actor."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import pykka

from actors._download import DownloadActor, DownloadSettings
from actors._download_messages import DownloadFailed, DownloadFinished, DownloadProgress
from actors._handle import ProviderHandle
from actors._messages import CallFailed, Op, Resolved, ResolveLink
from actors._scheduler import Scheduler
from providers import FakeClock, JobFile, ProviderError, parse_start_job_payload

WAIT = 20.0  # seconds of real time a test waits for an event before it fails


class LinkDesk(pykka.ThreadingActor):
    """Answers ResolveLink as a provider actor would: the URL ``urls`` gives for the
    file (a callable may hand out a new one each time), or a failure."""

    def __init__(self, urls: Callable[[JobFile, int], str | ProviderError]) -> None:
        super().__init__()
        self.urls = urls
        self.asked: list[ResolveLink] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ResolveLink):
            self.asked.append(message)
            count = sum(1 for m in self.asked if m.file.id == message.file.id)
            answer = self.urls(message.file, count)
            if isinstance(answer, ProviderError):
                message.reply_to.tell(CallFailed(message.request_id, Op.RESOLVE, answer))
            else:
                message.reply_to.tell(Resolved(message.request_id, message.file.id, answer))
            return None
        if message == "asked":
            return list(self.asked)
        return None


class Recorder:
    """What the owner was told, and a condition to wait on."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.cond = threading.Condition()


class Owner(pykka.ThreadingActor):
    """Records every message, and wakes whoever waits for one."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def on_receive(self, message: Any) -> None:
        with self.recorder.cond:
            self.recorder.messages.append(message)
            self.recorder.cond.notify_all()


@attrs.define
class Download:
    """One DownloadActor under test."""

    ref: pykka.ActorRef[Any]
    owner: Recorder
    desk: pykka.ActorRef[Any]
    clock: FakeClock
    root: Path

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = WAIT) -> Any:
        """The first recorded message that ``predicate`` accepts (waits for it)."""
        with self.owner.cond:
            ok = self.owner.cond.wait_for(
                lambda: any(predicate(m) for m in self.owner.messages), timeout
            )
            assert ok, f"no such message; got {[type(m).__name__ for m in self.owner.messages]}"
            return next(m for m in self.owner.messages if predicate(m))

    def end(self, timeout: float = WAIT) -> DownloadFinished | DownloadFailed:
        """How the download ended."""
        ended: DownloadFinished | DownloadFailed = self.wait_for(
            lambda m: isinstance(m, DownloadFinished | DownloadFailed), timeout
        )
        return ended

    def progress(self) -> list[DownloadProgress]:
        with self.owner.cond:
            return [m for m in self.owner.messages if isinstance(m, DownloadProgress)]

    def asked(self) -> list[ResolveLink]:
        asked: list[ResolveLink] = self.desk.ask("asked")
        return asked


class Bench:
    """Starts downloads and stops everything it started."""

    def __init__(self, clock: FakeClock, tmp: Path, *, raw_sockets: bool = True) -> None:
        self.clock = clock
        self.tmp = tmp
        #: Bodies through the wire (the default) or through httpx: the suite runs both.
        self.raw_sockets = raw_sockets
        self.scheduler = Scheduler(clock)
        self.scheduler.start()
        self.refs: list[pykka.ActorRef[Any]] = []

    def start(
        self,
        files: Iterable[JobFile],
        urls: Callable[[JobFile, int], str | ProviderError],
        *,
        settings: DownloadSettings | None = None,
        connections: int = 1,
        root: Path | None = None,
    ) -> Download:
        root = root or self.tmp / "dl"
        payload = parse_start_job_payload(
            {"url": "https://hoster.example/f", "download_dir": str(root),
             "connections": connections}
        )
        recorder = Recorder()
        owner_ref = Owner.start(recorder)
        desk = LinkDesk.start(urls)
        self.refs += [owner_ref, desk]
        ref = DownloadActor.start(
            job_id="job-1",
            provider_name="test",
            remote_id="remote-1",
            payload=payload,
            files=tuple(files),
            provider=ProviderHandle(desk),
            owner=owner_ref,
            scheduler=self.scheduler,
            settings=attrs.evolve(settings or DownloadSettings(), raw_sockets=self.raw_sockets),
            token=1,
        )
        self.refs.append(ref)
        return Download(ref, recorder, desk, self.clock, root)

    def stop(self) -> None:
        for ref in self.refs:
            ref.stop(block=False)
        for ref in self.refs:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                ref.stop(timeout=10)
        self.scheduler.stop()
