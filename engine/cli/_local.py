"""``LocalBackend``: the engine opened in this process, on the configured database."""

from __future__ import annotations

import builtins
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from engine.cli._backend import TERMINAL, JobData, is_newer
from engine.cli._errors import CliError, from_engine_error
from providers import EngineError, JobStatus

if TYPE_CHECKING:
    from actors import JobEvent
    from engine import Engine, EngineConfig

__all__ = ["LocalBackend"]

T = TypeVar("T")


class LocalBackend:
    """An ``Engine`` started on first use and stopped by ``close`` (see ``Backend``).

    While it runs it works the jobs too: ``add --wait`` downloads in this
    process. Jobs left unfinished stay in the database for the next engine.
    """

    def __init__(self, config: EngineConfig) -> None:
        self._config = config
        self._engine: Engine | None = None
        self.where = f"database {config.database_target()}"

    def _started(self) -> Engine:
        if self._engine is None:
            from engine import Engine  # noqa: PLC0415 - the engine starts only when needed

            engine = Engine(self._config)
            self._call(engine.start)
            self._engine = engine
        return self._engine

    @staticmethod
    def _call(action: Callable[[], T]) -> T:
        try:
            return action()
        except EngineError as error:
            raise from_engine_error(error) from error

    def create_jobs(
        self, provider: str, payloads: Sequence[dict[str, Any]]
    ) -> builtins.list[JobData]:
        """See ``Backend.create_jobs``."""
        engine = self._started()
        jobs = self._call(lambda: engine.create_jobs(provider, list(payloads)))
        return [job.to_dict() for job in jobs]

    def get(self, job_id: str) -> JobData:
        """See ``Backend.get``."""
        engine = self._started()
        return self._call(lambda: engine.get_job(job_id)).to_dict()

    def list(
        self,
        *,
        status: Sequence[str] = (),
        provider: str | None = None,
        search: str | None = None,
        limit: int = 50,
    ) -> tuple[builtins.list[JobData], int]:
        """See ``Backend.list``."""
        engine = self._started()
        statuses = [_status(value) for value in status] or None
        jobs = self._call(lambda: engine.list_jobs(
            status=statuses, provider=provider, limit=limit, text=search,
            order="created_at", descending=True,
        ))
        total = self._call(lambda: engine.count_jobs(status=statuses, provider=provider,
                                                     text=search))
        return [job.to_dict() for job in jobs], total

    def cancel(self, job_id: str) -> JobData:
        """See ``Backend.cancel``."""
        engine = self._started()
        return self._call(lambda: engine.cancel_job(job_id)).to_dict()

    def retry(self, job_id: str) -> JobData:
        """See ``Backend.retry``."""
        engine = self._started()
        return self._call(lambda: engine.retry_job(job_id)).to_dict()

    def clear(self) -> int:
        """See ``Backend.clear``."""
        engine = self._started()
        return self._call(engine.clear_completed)

    def providers(self) -> builtins.list[dict[str, Any]]:
        """See ``Backend.providers``."""
        engine = self._started()
        report: dict[str, Any] = self._call(engine.health).to_dict()
        return list(report.get("providers", {}).values())

    def test(self, name: str) -> dict[str, Any]:
        """See ``Backend.test``."""
        from providers._convert import converter  # noqa: PLC0415

        engine = self._started()
        result = self._call(lambda: engine.test_connection(name))
        data: dict[str, Any] = converter.unstructure(result)
        return data

    def wait_events(self, job_ids: Sequence[str], deadline: float) -> Iterator[JobData]:
        """See ``Backend.wait_events``."""
        engine = self._started()
        wanted = set(job_ids)
        changes: queue.Queue[JobEvent] = queue.Queue()

        def on_event(event: JobEvent) -> None:
            if event.job.id in wanted:
                changes.put(event)

        # Subscribed before the first read: no change falls between the two.
        unsubscribe = engine.subscribe(on_event)
        try:
            current = {job_id: self.get(job_id) for job_id in job_ids}
            yield from current.values()
            while not all(job["status"] in TERMINAL for job in current.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    event = changes.get(timeout=min(left, 1.0))
                except queue.Empty:
                    continue
                data = event.job.to_dict()
                if is_newer(data, current.get(data["id"])):
                    current[data["id"]] = data
                    yield data
        finally:
            unsubscribe()

    def close(self) -> None:
        """See ``Backend.close``."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.stop()


def _status(value: str) -> JobStatus:
    try:
        return JobStatus(value.lower())
    except ValueError:
        names = ", ".join(s.value for s in JobStatus)
        raise CliError(2, "validation", f"--status: {value!r} is not a status ({names})",
                       "status") from None
