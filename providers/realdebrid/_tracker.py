"""Turning RD torrent objects into ``JobStatusResponse``s, and acting on what they say.

Acting means: selecting the files of a torrent that waits for it (nothing moves
until then, rdt-client#92), giving up on one that is not cached when the caller
asked for cached only (the replacement for the disabled instantAvailability:
add, select, read it once, and delete it if it is not ``downloaded`` then,
[RIVEN]), and on one stuck in a state for longer than that state's stall
timeout (``DEFAULT_STALL_TIMEOUTS``; rdt-client#155, #85).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from providers._bounded import BoundedDict
from providers._errors import ProviderError
from providers._job import JobFile
from providers._log import WarnOnce, get_logger
from providers._payload import FileSelection, StartJobPayload
from providers._responses import JobStatusResponse
from providers._selection import select_files
from providers._status import JobStatus
from providers.realdebrid._api import RealDebridApi
from providers.realdebrid._links import LinkMaker, files_of
from providers.realdebrid._tables import STATUS_TABLE, StatusRule

__all__ = ["DEFAULT_STALL_TIMEOUTS", "Tracker", "merged_stall_timeouts"]

log = get_logger("debrid.providers.realdebrid")

#: Seen after selection, these mean the torrent was not cached: a cached one is
#: ``downloaded`` as soon as its files are selected ([RIVEN] _process_torrent).
_NOT_CACHED = frozenset({"queued", "downloading", "compressing", "uploading"})
#: Seconds a torrent may sit stuck in each of these states before it is deleted
#: and the job FAILS as STALLED. Stuck means: ``magnet_conversion`` with no seeder,
#: ``queued`` at all, ``downloading`` with its progress unmoved and no speed, at
#: every poll of the span (a seeder, any speed or any progress starts it again).
#: Each is below the engine's own stall for the job state it maps to (RESOLVING
#: 30 min, DOWNLOADING 6 h), so the torrent's slot frees first; see docs/realdebrid.md.
DEFAULT_STALL_TIMEOUTS: Final[Mapping[str, float]] = {
    # Metadata comes from peers; with none there is nothing to convert from
    # (rdt-client#155, #85). A live swarm converts in seconds to minutes.
    "magnet_conversion": 15 * 60.0,
    # Waiting for a slot on RD's side; a cached torrent never queues, and a queued
    # one holds one of the account's ~10 slots (rdt-client#633). Our decision.
    "queued": 3600.0,
    # A dead swarm: no byte in an hour (rdt-client's "N minutes to complete").
    "downloading": 3600.0,
}
_MEMORY_LIMIT = 50_000
#: Failures of the account, not of one job: they propagate out of a poll.
_ACCOUNT_WIDE = frozenset({
    "NOT_FOUND", "BAD_TOKEN", "AUTH_REQUIRED", "AUTH_FAILED", "ACCOUNT_LOCKED",
    "ACCOUNT_NOT_ACTIVATED", "PERMISSION_DENIED", "TWO_FACTOR_REQUIRED", "IP_NOT_ALLOWED",
})


def merged_stall_timeouts(
    overrides: Mapping[str, float | None] | None, every: float | None = None
) -> dict[str, float]:
    """The stall timeouts in force: the defaults, ``every`` for each state when
    given, then ``overrides`` (None for a state: never give up in it)."""
    merged: dict[str, float | None] = {
        state: (every if every is not None else limit)
        for state, limit in DEFAULT_STALL_TIMEOUTS.items()
    }
    for state, limit in (overrides or {}).items():
        if state not in DEFAULT_STALL_TIMEOUTS:
            raise ValueError(
                f"stall_timeouts: {state!r} is not a state a torrent can stall in "
                f"(one of {', '.join(sorted(DEFAULT_STALL_TIMEOUTS))})"
            )
        merged[state] = limit
    for state, limit in merged.items():
        number = isinstance(limit, int | float) and not isinstance(limit, bool)
        if limit is not None and not (number and limit > 0):
            raise ValueError(f"stall_timeouts: {state!r} must be seconds > 0 or None")
    return {state: float(limit) for state, limit in merged.items() if limit is not None}


class Tracker:
    """Per-job memory of the provider (payloads, last states) and the status mapping."""

    def __init__(
        self, api: RealDebridApi, provider: str, links: LinkMaker, *,
        cache_check_grace: float, stall_timeouts: Mapping[str, float],
        on_active_limit: Callable[[], None],
    ) -> None:
        self.api = api
        self.links = links
        self._on_active_limit = on_active_limit
        self.provider = provider
        self.cache_check_grace = cache_check_grace
        self.stall_timeouts = dict(stall_timeouts)
        self.payloads: BoundedDict[str, StartJobPayload] = BoundedDict(_MEMORY_LIMIT)
        self._last: BoundedDict[str, JobStatus] = BoundedDict(_MEMORY_LIMIT)
        self._first_seen: BoundedDict[str, float] = BoundedDict(_MEMORY_LIMIT)
        #: Torrents deleted on giving up (the job's cleanup finds them gone).
        self.deleted: BoundedDict[str, bool] = BoundedDict(_MEMORY_LIMIT)
        #: Per torrent stuck-looking: (state, progress, since when).
        self._stuck: BoundedDict[str, tuple[str, float, float]] = BoundedDict(_MEMORY_LIMIT)
        self._unknown = WarnOnce(log, "unknown_remote_status", "status", provider=provider)

    def attach(self, remote_id: str, payload: StartJobPayload) -> None:
        """Remember what was asked for ``remote_id`` (file selection, only_if_cached)."""
        self.payloads[remote_id] = payload

    def forget(self, remote_id: str) -> None:
        """Drop everything known about ``remote_id``."""
        for store in (self.payloads, self._last, self._first_seen, self._stuck, self.deleted):
            store.pop(remote_id, None)
        self.links.forget(remote_id)

    def rule(self, remote_id: str, native: str) -> StatusRule:
        """The table's rule; an unknown word keeps the job where it was (logged once per word)."""
        rule = STATUS_TABLE.get(native)
        if rule is not None:
            return rule
        self._unknown(native)
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
        self._last[remote_id] = rule.status
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
        self.links.learn_status(remote_id, item)
        clock = self.api.context_clock()
        now = clock.monotonic()
        first = self._first_seen.get(remote_id)
        if first is None:
            first = now
            self._first_seen[remote_id] = now
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
                limit = self.stall_timeouts[native]
                return self.give_up(remote_id, ident, item, "STALLED",
                                    f"stuck in {native} on Real-Debrid for {limit:g} s")
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
        """True once ``item`` has looked stuck in ``native`` for its whole stall timeout."""
        limit = self.stall_timeouts.get(native)
        if limit is None:
            self._stuck.pop(remote_id, None)
            return False
        with self.api.parsing("torrent status"):
            progress = float(item.get("progress") or 0)
            # Signs of life: a seeder to convert from, bytes arriving.
            alive = (native == "magnet_conversion" and int(item.get("seeders") or 0) > 0) or (
                native == "downloading" and float(item.get("speed") or 0) > 0
            )
        seen = self._stuck.get(remote_id)
        if alive or seen is None or seen[:2] != (native, progress):
            self._stuck[remote_id] = (native, progress, now)
            return False
        return now - seen[2] >= limit

    def _select(
        self, remote_id: str, ident: str, info: Mapping[str, Any] | None,
        payload: StartJobPayload | None,
    ) -> tuple[JobFile, ...] | JobStatusResponse:
        if info is None:  # the list has no files[]: ask /torrents/info ([DOC])
            info = self.api.get_object(f"/torrents/info/{ident}")
        files = self._files(info)
        if not files:
            return files
        # After a restart (no payload): take everything.
        chosen = select_files(payload.select if payload else FileSelection(), files)
        if not any(f.selected for f in chosen):
            return self.give_up(remote_id, ident, info, "NOTHING_SELECTED",
                                "no file of the torrent matches the selection")
        every = all(f.selected for f in chosen)
        spec = "all" if every else ",".join(str(f.id) for f in chosen if f.selected)
        try:
            # 204, or 202 / action_already_done when repeated: both are success ([DOC], Umbrella).
            self.api.call("POST", f"/torrents/selectFiles/{ident}", data={"files": spec},
                          ok=(204, 202))
            self.links.learn_selection(remote_id, chosen)
        except ProviderError as error:
            if error.code != "ALREADY_DONE":
                raise
            # Selected before, perhaps otherwise: the links will read what RD holds.
        if payload is not None and payload.only_if_cached:
            return self._cache_check(remote_id, ident, chosen)
        return chosen

    def _cache_check(
        self, remote_id: str, ident: str, files: tuple[JobFile, ...]
    ) -> JobStatusResponse:
        """Right after selection a cached torrent is ``downloaded``: one read tells.

        A later poll cannot: a torrent that downloads between two polls would look
        cached ([RIVEN] reads it at once too).
        """
        info = self.api.get_object(f"/torrents/info/{ident}")
        with self.api.parsing("GET /torrents/info"):
            native = str(info["status"])
        if native != "downloaded":
            return self.give_up(remote_id, ident, info, "NOT_CACHED",
                                "Real-Debrid does not have this torrent cached")
        self.links.learn_status(remote_id, info)
        return self.response(remote_id, info, files)

    def give_up(
        self, remote_id: str, ident: str, item: Mapping[str, Any], code: str, message: str
    ) -> JobStatusResponse:
        """Delete the torrent (freeing its slot), unless the engine keeps failed jobs'
        items, and report the job FAILED with ``code``."""
        if not self.api.keeps_failed_items():
            try:
                self.api.call("DELETE", f"/torrents/delete/{ident}", ok=(204, 404))
                # The engine's cleanup of the failed job then needs no second DELETE.
                self.deleted[remote_id] = True
            except ProviderError as error:
                log.warning("remote_delete_failed", provider=self.provider,
                            remote_id=remote_id, code=error.code)
        base = self.response(remote_id, item)
        self._last[remote_id] = JobStatus.FAILED
        return JobStatusResponse(
            remote_id=remote_id, status=JobStatus.FAILED, progress=base.progress,
            native_status=base.native_status, info_hash=base.info_hash, error_code=code,
            error_message=message, metadata=base.metadata,
        )
