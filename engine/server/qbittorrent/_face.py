"""``QbitFace``: the qBittorrent face's logic over the engine and its ``ClientBook``.

Plain synchronous code: the routes call it on worker threads. It never writes a
job itself: jobs are made, cancelled and deleted through the ``Engine``; what
the face adds (category, tags, folder) is its ``ClientBook``'s.

An add is crash-safe in two commits: the item goes into the book first, with
the id its job will have and the job's payload held beside it; then the job is
made with that id; then the held payload is dropped. An item found later with
an id but no job (the process died between the two) is started again by
``recover`` before anything else is added; one held without an id is an add
made paused, started by ``resume``.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import math
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from actors.transfer._names import safe_component
from engine._engine import new_job_ids
from engine.server._paths import inside
from engine.server.qbittorrent._options import ArrTarget, CategoryOptions, QbitOptions
from engine.server.qbittorrent._view import torrent_of
from persistence import ClientBook, ClientCategory, ClientItem
from providers import (
    EngineError,
    InvalidTransition,
    Job,
    JobStatus,
    StartJobPayload,
    UnknownProvider,
    ValidationError,
    parse_start_job_payload,
)
from providers._log import get_logger
from providers._torrent import magnet_display_name, torrent_name

__all__ = ["AddOutcome", "QbitFace", "Refusal", "Source", "shown_source"]

log = get_logger("debrid.server.qbittorrent")

#: Seconds an add the engine did not confirm is left alone before it is made again.
UNSURE_SECONDS = 300.0
#: Refused adds kept for the page.
MAX_REFUSALS = 50
_CATEGORY_CHARS_REFUSED = ("\\", "//", "\x00")


class Refusal(Exception):
    """A request the face refuses: the HTTP status, and why (plain text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.frozen
class Source:
    """One thing to add: a magnet link or a .torrent's bytes, and where it came from."""

    magnet: str | None = None
    torrent: bytes | None = attrs.field(default=None, repr=False)
    origin: str = ""


@attrs.frozen
class AddOutcome:
    """What an add did: items added, already known, and the reasons of those refused."""

    added: tuple[str, ...] = ()
    known: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """qBittorrent answers ``Fails.`` only when nothing could be added."""
        return bool(self.added or self.known) or not self.refused


def shown_source(origin: str) -> str:
    """What a log line or the page may show of a source: an http(s) URL without its
    query, fragment or credentials; a magnet cut at its hash and name; at most 200 chars."""
    text = origin.strip()
    if text.lower().startswith(("http://", "https://")):
        try:
            parts = urlsplit(text)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return "(an unreadable URL)"
        tail = "?…" if parts.query else ""
        return f"{parts.scheme}://{host}{port}{parts.path}{tail}"[:200]
    return text.split("&tr=", 1)[0][:200]


def _alive(job: Job | None) -> bool:
    return job is not None and job.status is not JobStatus.CANCELLED


class QbitFace:
    """The qBittorrent face of ``engine`` (see the module docstring)."""

    def __init__(self, engine: Any, options: QbitOptions, roots: Sequence[Path]) -> None:
        self.engine = engine
        self.options = options
        self.roots = tuple(Path(r) for r in roots)
        default = options.save_path or (self.roots[0] if self.roots else None)
        self.save_path: Path | None = Path(default) if default is not None else None
        # Adds, deletes and category changes one at a time: two adds of one hash
        # must not both make a job.
        self._lock = threading.RLock()
        self._created_tags: set[str] = set()
        #: Job ids whose making the engine did not confirm, and since when (monotonic).
        self._unsure: dict[str, float] = {}
        self.refusals: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_REFUSALS)
        #: The *arr app a login named (``arr_from_login``), in memory only.
        self.login_arr: ArrTarget | None = None

    # -- helpers -----------------------------------------------------------------
    def book(self) -> ClientBook:
        """The engine's client book (raises ``EngineNotRunning`` once it stops)."""
        book: ClientBook = self.engine.client_book()
        return book

    def now_ms(self) -> int:
        """The engine clock's time, in epoch milliseconds."""
        now: int = self.engine.clock.time_ms()
        return now

    def jobs_of(self, items: Iterable[ClientItem]) -> dict[str, Job]:
        """The jobs of ``items`` that exist, by id."""
        ids = [i.job_id for i in items if i.job_id is not None]
        jobs: dict[str, Job] = self.engine.get_jobs(ids) if ids else {}
        return jobs

    def refuse(self, origin: str, reason: str) -> str:
        """Log an add that was refused and keep it for the page; returns ``reason``.

        An indexer's URL carries its API key in the query: only the scheme, host and
        path are shown.
        """
        shown = shown_source(origin)
        log.warning("qbittorrent_add_refused", source=shown, reason=reason)
        self.refusals.append({"at": self.now_ms(), "source": shown, "reason": reason})
        return reason

    # -- categories --------------------------------------------------------------
    def categories(self) -> dict[str, ClientCategory]:
        """Every category: the config's, then those made through the face."""
        found = {c.name: c for c in self.book().categories()}
        for configured in self.options.categories:
            found[configured.name] = ClientCategory(
                configured.name, str(self._category_dir(configured.name, configured))
            )
        return dict(sorted(found.items()))

    def _category_dir(self, name: str, configured: CategoryOptions | None) -> Path:
        if configured is not None and configured.save_path is not None:
            return configured.save_path
        if self.save_path is None:
            raise Refusal(409, "no download root is configured for the qBittorrent face")
        return self.save_path / (safe_component(name) or "_")

    def _checked_dir(self, raw: str, field: str) -> Path:
        if "\x00" in raw or not os.path.isabs(raw):
            raise Refusal(400, f"{field}: {raw!r} is not an absolute path")
        if not inside(raw, self.roots):
            raise Refusal(400, f"{field}: {raw!r} is outside the download roots")
        return Path(raw)

    @staticmethod
    def check_category_name(name: str) -> str:
        """A valid category name (as qBittorrent checks it), or ``Refusal``."""
        name = name.strip()
        if (
            not name
            or name.startswith("/")
            or name.endswith("/")
            or any(bad in name for bad in _CATEGORY_CHARS_REFUSED)
            or len(name) > 255
        ):
            raise Refusal(400, f"invalid category name {name!r}")
        return name

    def create_category(self, name: str, save_path: str, *, edit: bool = False) -> None:
        """``createCategory`` (``edit`` False) or ``editCategory``."""
        name = self.check_category_name(name)
        with self._lock:
            known = self.categories()
            if edit and name not in known:
                raise Refusal(409, f"category {name!r} does not exist")
            if not edit and name in known:
                raise Refusal(409, f"category {name!r} already exists")
            if self.options.category(name) is not None:
                raise Refusal(409, f"category {name!r} is set in the config file")
            directory = (
                self._checked_dir(save_path, "savePath")
                if save_path
                else self._category_dir(name, None)
            )
            created = known[name].created_at if edit else self.now_ms()
            self.book().put_category(ClientCategory(name, str(directory), created))

    def remove_categories(self, names: Iterable[str]) -> None:
        """``removeCategories`` (config categories stay)."""
        with self._lock:
            self.book().remove_categories(
                n for n in names if n and self.options.category(n) is None
            )

    def category_options(self, name: str) -> CategoryOptions | None:
        """The config's settings of category ``name``."""
        return self.options.category(name)

    # -- items -------------------------------------------------------------------
    def items(self, hashes: Iterable[str] | None = None,
              category: str | None = None) -> list[tuple[ClientItem, Job | None]]:
        """Live items (a cancelled or vanished job is a removed item) with their jobs."""
        book = self.book()
        if hashes is None:
            found = book.items(category)
        else:
            found = [i for i in book.get(h.lower() for h in hashes).values()
                     if category is None or i.category == category]
        jobs = self.jobs_of(found)
        pairs = []
        for item in found:
            job = jobs.get(item.job_id) if item.job_id is not None else None
            if job is None and item.held is None:
                continue  # its job was deleted
            if job is not None and not _alive(job):
                continue
            pairs.append((item, job))
        return pairs

    def torrents(self, category: str | None = None,
                 hashes: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """``torrents/info`` entries (unsorted, unfiltered but for category and hashes)."""
        now = self.now_ms()
        stopped = self.options.stopped_names
        return [torrent_of(i, j, now, stopped) for i, j in self.items(hashes, category)]

    def one(self, hash_: str) -> tuple[ClientItem, Job | None]:
        """The live item of ``hash_``, or ``Refusal(404)``."""
        found = self.items([hash_])
        if not found:
            raise Refusal(404, "Not Found")
        return found[0]

    def tags(self) -> list[str]:
        """Every tag: those in use and those made with ``createTags``."""
        used = {t for item in self.book().items() for t in item.tags}
        return sorted(used | self._created_tags)

    def create_tags(self, tags: Iterable[str]) -> None:
        """``createTags`` (kept in memory until an item uses them)."""
        self._created_tags.update(t for t in tags if t)

    def relabel(self, hashes: Sequence[str] | None, *, category: str | None = None,
                add_tags: Iterable[str] = (), remove_tags: Iterable[str] = ()) -> None:
        """``setCategory``, ``addTags``, ``removeTags`` (``hashes`` None: every item)."""
        adding, removing = tuple(t for t in add_tags if t), set(remove_tags)
        with self._lock:
            if category is not None and category and category not in self.categories():
                raise Refusal(409, f"category {category!r} does not exist")
            book = self.book()
            found = book.items() if hashes is None else list(
                book.get(h.lower() for h in hashes).values()
            )
            now = self.now_ms()
            changed = []
            for item in found:
                tags = tuple(dict.fromkeys(
                    [t for t in item.tags if t not in removing] + list(adding)))
                new = attrs.evolve(item, category=item.category if category is None else category,
                                   tags=tags, updated_at=now)
                if new != item:
                    changed.append(new)
            book.put(changed)

    def delete_tags(self, tags: Iterable[str]) -> None:
        """``deleteTags``: gone from every item too."""
        names = set(tags)
        self._created_tags -= names
        self.relabel(None, remove_tags=names)

    # -- add ---------------------------------------------------------------------
    def add(
        self,
        sources: Sequence[Source],
        *,
        category: str = "",
        save_path: str = "",
        paused: bool = False,
        tags: Sequence[str] = (),
        rename: str = "",
        refused: Sequence[str] = (),
    ) -> AddOutcome:
        """``torrents/add``: commit an item per source, then start its job (see the module).

        ``refused`` are reasons already found for sources that could not be read.
        """
        with self._lock:
            self.recover()
            try:
                directory, provider = self._target(category, save_path)
            except Refusal as refusal:
                reasons = [self.refuse(s.origin, refusal.message) for s in sources]
                return AddOutcome(refused=(*refused, *reasons))
            return self._add(sources, category, directory, provider, paused, tags, rename,
                             list(refused))

    def _target(self, category: str, save_path: str) -> tuple[Path, str]:
        if category:
            self.check_category_name(category)
            if category not in self.categories():
                # qBittorrent makes a category an add names.
                self.create_category(category, "")
        configured = self.options.category(category) if category else None
        if save_path:
            directory = self._checked_dir(save_path, "savepath")
        elif category:
            directory = Path(self.categories()[category].save_path)
        elif self.save_path is not None:
            directory = self.save_path
        else:
            raise Refusal(409, "no download root is configured for the qBittorrent face")
        if not inside(directory, self.roots):
            raise Refusal(400, f"save path {str(directory)!r} is outside the download roots")
        names = tuple(self.engine.provider_names())
        provider = (configured.provider if configured and configured.provider
                    else self.options.provider or (names[0] if names else ""))
        if provider not in names:
            raise Refusal(409, f"provider {provider!r} is not running")
        return directory, provider

    def _add(
        self,
        sources: Sequence[Source],
        category: str,
        directory: Path,
        provider: str,
        paused: bool,
        tags: Sequence[str],
        rename: str,
        refused: list[str],
    ) -> AddOutcome:
        book = self.book()
        parsed: list[StartJobPayload] = []
        for source in sources:
            raw: dict[str, Any] = (
                {"magnet": source.magnet} if source.magnet is not None
                else {"torrent": source.torrent}
            )
            try:
                payload = parse_start_job_payload(raw)
            except ValidationError as error:
                refused.append(self.refuse(source.origin, f"not a valid torrent: {error}"))
                continue
            parsed.append(payload)
        hashes = list(dict.fromkeys(p.info_hash or "" for p in parsed))
        existing = book.get(hashes)
        jobs = self.jobs_of(existing.values())
        known: list[str] = []
        fresh: list[tuple[ClientItem, StartJobPayload]] = []
        now = self.now_ms()
        taken: set[str] = set()
        used = {i.folder for i in book.items() if i.save_path == str(directory)}
        for payload in parsed:
            hash_ = payload.info_hash or ""
            old = existing.get(hash_)
            if hash_ in taken or (old is not None and self._still_there(old, jobs)):
                known.append(hash_)
                continue
            taken.add(hash_)
            name = rename or self._name_of(payload, hash_)
            folder = self._free_folder(used, directory, name, hash_)
            item = ClientItem(
                hash=hash_, provider=provider, name=name, save_path=str(directory),
                folder=str(folder), added_on=now, updated_at=now, category=category,
                tags=tuple(dict.fromkeys(t for t in tags if t)),
                reported_attempt=None,
            )
            fresh.append((item, payload))
        if not fresh:
            return AddOutcome(known=tuple(known), refused=tuple(refused))
        ids = new_job_ids(len(fresh)) if not paused else [None] * len(fresh)
        held = [
            attrs.evolve(item, job_id=job_id, held=_held(payload, item.folder))
            for (item, payload), job_id in zip(fresh, ids, strict=True)
        ]
        book.put(held)  # committed: from here a crash resumes the add
        failed = [] if paused else self._start(held)
        gone = set(book.get(i.hash for i in held)) if failed else {i.hash for i in held}
        return AddOutcome(added=tuple(i.hash for i in held if i.hash in gone),
                          known=tuple(known), refused=(*refused, *failed))

    def _still_there(self, item: ClientItem, jobs: dict[str, Job]) -> bool:
        if item.job_id is None:
            return item.held is not None
        job = jobs.get(item.job_id)
        if job is None:
            return item.held is not None  # being started
        return job.status not in (JobStatus.CANCELLED, JobStatus.FAILED)

    @staticmethod
    def _name_of(payload: StartJobPayload, hash_: str) -> str:
        name: str | None = None
        try:
            if payload.magnet is not None:
                name = magnet_display_name(payload.magnet)
            elif payload.torrent is not None:
                name = torrent_name(payload.torrent)
        except ValueError:
            name = None
        return name.strip() if name and name.strip() else hash_

    def _free_folder(self, used: set[str], directory: Path, name: str, hash_: str) -> Path:
        """A folder of its own for an item, directly inside ``directory``.

        The name is untrusted (a magnet's ``dn``, a torrent's name, ``rename``): its
        separators become ``_`` before it is made safe, so it is one component and
        can never climb out of the save path. ``used`` (folders of other items,
        this add's included) grows by the one chosen.
        """
        flat = name.replace("/", "_").replace("\\", "_")
        base = safe_component(flat) or hash_
        candidate, n = directory / base, 2
        while str(candidate) in used or candidate.exists():
            candidate = directory / f"{base} ({n})"
            n += 1
        if candidate.parent != directory or not inside(candidate, [directory]):
            candidate = directory / hash_  # cannot happen with one safe component
        used.add(str(candidate))
        return candidate

    def _start(self, items: Sequence[ClientItem]) -> list[str]:
        """Make the jobs of held items that carry their job id, then drop what is held.

        Returns the reasons of those the engine refused (their items are gone). An
        engine that did not answer (a timeout, a restart) may still make the jobs:
        their items stay, and ``recover`` leaves them alone for ``UNSURE_SECONDS``
        so that a late job is never made twice.
        """
        by_provider: dict[str, list[ClientItem]] = collections.defaultdict(list)
        for item in items:
            by_provider[item.provider].append(item)
        book = self.book()
        reasons: list[str] = []
        for provider, group in by_provider.items():
            payloads = [dict(i.held or {}) for i in group]
            try:
                self.engine.create_jobs(provider, payloads, ids=[i.job_id for i in group])
            except (ValidationError, UnknownProvider) as error:
                # Nothing was made: the items go, and the add is refused for them.
                book.remove(i.hash for i in group)
                reasons += [self.refuse(i.name, f"refused by the engine: {error}") for i in group]
                continue
            except EngineError as error:
                now = self.engine.clock.monotonic()
                for item in group:
                    self._unsure[item.job_id or ""] = now
                log.warning("qbittorrent_start_unsure", count=len(group),
                            error_type=type(error).__name__)
                continue
            book.release_held(((i.hash, i.job_id or "") for i in group), self.now_ms())
        return reasons

    def recover(self) -> int:
        """Start the items a crash left between their two commits; returns how many."""
        with self._lock:
            book = self.book()
            pending = [i for i in book.items() if i.job_id is not None and i.held is not None]
            if not pending:
                return 0
            jobs = self.jobs_of(pending)
            made = [i for i in pending if i.job_id in jobs]
            book.release_held(((i.hash, i.job_id or "") for i in made), self.now_ms())
            for item in made:
                self._unsure.pop(item.job_id or "", None)
            now = self.engine.clock.monotonic()
            missing = [
                i for i in pending
                if i.job_id not in jobs
                and now - self._unsure.get(i.job_id or "", -math.inf) > UNSURE_SECONDS
            ]
            if missing:
                log.info("qbittorrent_adds_recovered", count=len(missing))
                for item in missing:
                    self._unsure.pop(item.job_id or "", None)
                self._start(missing)
            return len(missing)

    def resume(self, hashes: Sequence[str] | None) -> None:
        """``resume``/``start``: start the items added paused."""
        with self._lock:
            book = self.book()
            found = book.items() if hashes is None else list(
                book.get(h.lower() for h in hashes).values())
            waiting = [i for i in found if i.job_id is None and i.held is not None]
            if not waiting:
                return
            ids = new_job_ids(len(waiting))
            started = [attrs.evolve(i, job_id=job_id, updated_at=self.now_ms())
                       for i, job_id in zip(waiting, ids, strict=True)]
            book.put(started)
            for reason in self._start(started):
                log.warning("qbittorrent_resume_refused", reason=reason)

    # -- delete ------------------------------------------------------------------
    def delete(self, hashes: Sequence[str] | None, delete_files: bool) -> int:
        """``torrents/delete``: cancel what runs, forget the jobs, remove files if asked."""
        with self._lock:
            book = self.book()
            found = book.items() if hashes is None else list(
                book.get(h.lower() for h in hashes).values())
            jobs = self.jobs_of(found)
            for item in found:
                job = jobs.get(item.job_id) if item.job_id is not None else None
                if job is not None and not job.terminal:
                    with contextlib.suppress(InvalidTransition):  # it finished meanwhile
                        self.engine.cancel_job(job.id)
            if jobs:
                for job_id, error in self.engine.delete_jobs(list(jobs)).items():
                    if error is not None:
                        log.warning("qbittorrent_job_kept", job_id=job_id,
                                    reason=type(error).__name__)
            if delete_files:
                for item in found:
                    self._remove_folder(item)
            book.remove(i.hash for i in found)
            log.info("qbittorrent_deleted", count=len(found), delete_files=delete_files)
            return len(found)

    def _remove_folder(self, item: ClientItem) -> None:
        folder = Path(item.folder)
        real = os.path.realpath(folder)
        protected = {os.path.realpath(r) for r in self.roots} | {os.path.realpath(item.save_path)}
        protected |= {os.path.realpath(c.save_path) for c in self.categories().values()}
        if real in protected or not inside(folder, self.roots):
            log.warning("qbittorrent_folder_kept", hash=item.hash, reason="outside the roots")
            return
        try:
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder)
            elif folder.exists() or folder.is_symlink():
                folder.unlink()
        except OSError as exc:
            log.warning("qbittorrent_folder_not_removed", hash=item.hash, error=exc.strerror)

    # -- figures -----------------------------------------------------------------
    def transfer(self) -> dict[str, Any]:
        """``transfer/info``: download speed and data of what runs now."""
        speed = data = 0
        for entry in self.torrents():
            speed += int(entry["dlspeed"])
            data += int(entry["downloaded"]) if entry["state"] == "downloading" else 0
        return {
            "dl_info_speed": speed,
            "dl_info_data": data,
            "up_info_speed": 0,
            "up_info_data": 0,
            "dl_rate_limit": 0,
            "up_rate_limit": 0,
            "dht_nodes": 0,
            "connection_status": "connected",
        }


def _held(payload: StartJobPayload, folder: str) -> dict[str, Any]:
    """The payload a held item's job is made from (plain data, JSON-ready)."""
    held: dict[str, Any] = {"download_dir": folder}
    if payload.magnet is not None:
        held["magnet"] = payload.magnet
    elif payload.torrent is not None:
        held["torrent"] = base64.b64encode(payload.torrent).decode("ascii")
    return held
