"""Turning RD torrent objects into ``JobStatusResponse``s, and acting on what they say.

Acting means: selecting the files of a torrent that waits for it (nothing moves
until then, rdt-client#92), giving up on one that is not cached when the caller
asked for cached only (the replacement for the disabled instantAvailability:
add, select, and delete if it is not ``downloaded`` at once, [RIVEN]), and on
one whose progress has not moved for ``stall_timeout`` (rdt-client#155).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from providers._errors import ProviderError
from providers._job import JobFile
from providers._log import get_logger
from providers._payload import StartJobPayload
from providers._responses import JobStatusResponse
from providers._selection import select_files, selected_ids
from providers._status import JobStatus
from providers.realdebrid._api import RealDebridApi
from providers.realdebrid._links import files_of
from providers.realdebrid._tables import STATUS_TABLE, StatusRule

__all__ = ["Tracker"]

log = get_logger("debrid.providers.realdebrid")

#: Seen after selection, these mean the torrent was not cached: a cached one is
#: ``downloaded`` as soon as its files are selected ([RIVEN] _process_torrent).
_NOT_CACHED = frozenset({"queued", "downloading", "compressing", "uploading"})
#: Where a dead swarm leaves a torrent for ever (rdt-client#155, #85).
_CAN_STALL = frozenset({"magnet_conversion", "downloading"})
_MEMORY_LIMIT = 50_000
#: Failures of the account, not of one job: they propagate out of a poll.
_ACCOUNT_WIDE = frozenset({
    "NOT_FOUND", "BAD_TOKEN", "AUTH_REQUIRED", "AUTH_FAILED", "ACCOUNT_LOCKED",
    "ACCOUNT_NOT_ACTIVATED", "PERMISSION_DENIED", "TWO_FACTOR_REQUIRED", "IP_NOT_ALLOWED",
})


def _remember(store: OrderedDict[str, Any], key: str, value: Any) -> None:
    store[key] = value
    while len(store) > _MEMORY_LIMIT:
        store.popitem(last=False)  # O(1); next(iter(a dict)) walks every dropped slot


class Tracker:
    """Per-job memory of the provider (payloads, last states) and the status mapping."""

    def __init__(
        self, api: RealDebridApi, provider: str, *, cache_check_grace: float,
        stall_timeout: float | None, on_active_limit: Callable[[], None],
    ) -> None:
        self.api = api
        self._on_active_limit = on_active_limit
        self.provider = provider
        self.cache_check_grace = cache_check_grace
        self.stall_timeout = stall_timeout
        self.payloads: OrderedDict[str, StartJobPayload] = OrderedDict()
        self._last: OrderedDict[str, JobStatus] = OrderedDict()
        self._first_seen: OrderedDict[str, float] = OrderedDict()
        self._progress: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._unknown: set[str] = set()

    def attach(self, remote_id: str, payload: StartJobPayload) -> None:
        """Remember what was asked for ``remote_id`` (file selection, only_if_cached)."""
        _remember(self.payloads, remote_id, payload)

    def forget(self, remote_id: str) -> None:
        """Drop everything known about ``remote_id``."""
        for store in (self.payloads, self._last, self._first_seen, self._progress):
            store.pop(remote_id, None)

    def rule(self, remote_id: str, native: str) -> StatusRule:
        """The table's rule; an unknown word keeps the job where it was (logged once per word)."""
        rule = STATUS_TABLE.get(native)
        if rule is not None:
            return rule
        if native not in self._unknown:
            self._unknown.add(native)
            log.warning("unknown_remote_status", provider=self.provider, status=native)
        previous = self._last.get(remote_id)
        if previous is None or previous.terminal or previous is JobStatus.QUEUED:
            previous = JobStatus.DOWNLOADING
        return StatusRule(previous)

    def response(
        self, remote_id: str, item: Mapping[str, Any], files: tuple[JobFile, ...] = ()
    ) -> JobStatusResponse:
        """The mapped status of a ``/torrents`` or ``/torrents/info`` object (no requests)."""
        with self.api.parsing("torrent status"):
            native = str(item["status"])
            progress = max(0.0, min(100.0, float(item.get("progress") or 0)))
            rule = self.rule(remote_id, native)
            links = item.get("links") or []
            metadata = {
                key: item[key] for key in ("id", "filename", "bytes", "speed", "seeders", "added",
                                           "ended")
                if item.get(key) is not None
            }
            metadata["links"] = len(links)
        if rule.status is JobStatus.COMPLETED:
            progress = 100.0
        elif rule.status is JobStatus.RESOLVING:
            progress = 0.0
        _remember(self._last, remote_id, rule.status)
        return JobStatusResponse(
            remote_id=remote_id, status=rule.status, progress=progress, files=files,
            native_status=native, info_hash=str(item.get("hash") or "").lower() or None,
            error_code=rule.error_code, error_message=rule.message or None, metadata=metadata,
        )

    def process(
        self, remote_id: str, item: Mapping[str, Any], *, has_files: bool
    ) -> JobStatusResponse:
        """Map ``item`` and do what its state asks for (select files, give up).

        Retryable failures of those side requests are logged and left for the
        next poll; ``NOT_FOUND`` (the torrent went away meanwhile) and failures of
        the whole account propagate; any other refusal fails this job alone.
        """
        with self.api.parsing("torrent status"):
            native, ident = str(item["status"]), str(item["id"])
        files = self._files(item) if has_files else ()
        clock = self.api.context_clock()
        now = clock.monotonic()
        first = self._first_seen.setdefault(remote_id, now)
        payload = self.payloads.get(remote_id)
        try:
            if native == "waiting_files_selection":
                outcome = self._select(remote_id, ident, item if has_files else None, payload)
                if isinstance(outcome, JobStatusResponse):
                    return outcome
                files = outcome
            elif payload is not None and payload.only_if_cached and (
                native in _NOT_CACHED
                or (native == "magnet_conversion" and now - first >= self.cache_check_grace)
            ):
                return self.give_up(remote_id, ident, item, "NOT_CACHED",
                                    "Real-Debrid does not have this torrent cached")
            elif self._stalled(remote_id, native, item, now):
                return self.give_up(remote_id, ident, item, "STALLED",
                                    f"no progress for {self.stall_timeout:g} s")
        except ProviderError as error:
            if not error.retryable:
                if error.code in _ACCOUNT_WIDE:
                    raise
                log.warning("remote_action_refused", provider=self.provider,
                            remote_id=remote_id, code=error.code)
                return attrs.evolve(self.response(remote_id, item, files),
                                    status=JobStatus.FAILED, error_code=error.code,
                                    error_message=error.message)
            if error.code == "ACTIVE_LIMIT":  # selectFiles can get 509 too ([DECY] CheckStatus)
                self._on_active_limit()
            log.info("remote_action_deferred", provider=self.provider, remote_id=remote_id,
                     code=error.code)
        return self.response(remote_id, item, files)

    def _files(self, info: Mapping[str, Any]) -> tuple[JobFile, ...]:
        with self.api.parsing("GET /torrents/info"):
            return files_of(info)

    def _stalled(self, remote_id: str, native: str, item: Mapping[str, Any], now: float) -> bool:
        if self.stall_timeout is None or native not in _CAN_STALL:
            self._progress.pop(remote_id, None)
            return False
        progress = float(item.get("progress") or 0)
        seen = self._progress.get(remote_id)
        if seen is None or seen[0] != progress:
            _remember(self._progress, remote_id, (progress, now))
            return False
        return now - seen[1] >= self.stall_timeout

    def _select(
        self, remote_id: str, ident: str, info: Mapping[str, Any] | None,
        payload: StartJobPayload | None,
    ) -> tuple[JobFile, ...] | JobStatusResponse:
        if info is None:  # the list has no files[]: ask /torrents/info ([DOC])
            info = self.api.get_object(f"/torrents/info/{ident}")
        files = self._files(info)
        if not files:
            return files
        if payload is None or payload.select.is_all:
            spec, chosen = "all", tuple(f.id for f in files)  # after a restart: take everything
        else:
            chosen = selected_ids(payload.select, files)
            if not chosen:
                return self.give_up(remote_id, ident, info, "NOTHING_SELECTED",
                                    "no file of the torrent matches the selection")
            spec = ",".join(str(i) for i in chosen)
        try:
            # 204, or 202 / action_already_done when repeated: both are success ([DOC], Umbrella).
            self.api.call("POST", f"/torrents/selectFiles/{ident}", data={"files": spec},
                          ok=(204, 202))
        except ProviderError as error:
            if error.code != "ALREADY_DONE":
                raise
        if payload is None or payload.select.is_all:
            return tuple(attrs.evolve(f, selected=True) for f in files)
        return select_files(payload.select, files)

    def give_up(
        self, remote_id: str, ident: str, item: Mapping[str, Any], code: str, message: str
    ) -> JobStatusResponse:
        """Delete the torrent (freeing its slot) and report the job FAILED with ``code``."""
        try:
            self.api.call("DELETE", f"/torrents/delete/{ident}", ok=(204, 404))
        except ProviderError as error:
            log.warning("remote_delete_failed", provider=self.provider, remote_id=remote_id,
                        code=error.code)
        base = self.response(remote_id, item)
        _remember(self._last, remote_id, JobStatus.FAILED)
        return JobStatusResponse(
            remote_id=remote_id, status=JobStatus.FAILED, progress=base.progress,
            native_status=base.native_status, info_hash=base.info_hash, error_code=code,
            error_message=message, metadata=base.metadata,
        )
