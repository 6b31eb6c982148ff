"""``GET /api/events``: job events in order, resumed after a reconnect, reset after a gap."""

from __future__ import annotations

import itertools
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
from server_helpers import TOKEN, Served, magnet

from engine import Job, JobEvent, JobStatus
from engine.server import EventHub

WAIT = 20.0  # real seconds: a bound for a broken test, never a measure of progress


@attrs.define
class Sse:
    """One parsed event."""

    id: int | None
    event: str
    data: Any


class Stream:
    """Reads an event stream on a thread; ``next()`` waits for the next event."""

    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 params: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[Sse | None] = queue.Queue()
        self.comments: queue.Queue[str] = queue.Queue()
        self.opened = threading.Event()
        self.ended = threading.Event()
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})},
            timeout=httpx.Timeout(WAIT, read=60.0),
        )
        self._params = params
        self.status: int | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.opened.wait(WAIT), "the stream did not open"

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/api/events", params=self._params) as answer:
                self.status = answer.status_code
                fields: dict[str, str] = {}
                for line in answer.iter_lines():
                    if line.startswith("retry:"):
                        self.opened.set()
                        continue
                    if line.startswith(":"):
                        self.comments.put(line)
                    elif line == "":
                        if "event" in fields:
                            self.events.put(Sse(int(fields["id"]) if "id" in fields else None,
                                                fields["event"], json.loads(fields["data"])))
                        fields = {}
                    else:
                        key, _, value = line.partition(":")
                        fields[key] = value.strip()
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.ended.set()
            self.events.put(None)

    def next(self) -> Sse:
        event = self.events.get(timeout=WAIT)
        assert event is not None, "the stream ended"
        return event

    def until(self, done: Any) -> list[Sse]:
        """Events until ``done(events)`` holds."""
        seen: list[Sse] = []
        while not done(seen):
            seen.append(self.next())
        return seen

    def close(self) -> None:
        self._client.close()
        self._thread.join(WAIT)


@pytest.fixture
def streams(served: Served) -> Iterator[list[Stream]]:
    """Streams the test opens; ended from the server side, then closed."""
    opened: list[Stream] = []
    yield opened
    served.daemon.app.state.events.close()
    for stream in opened:
        stream.close()


def created(ids: set[str]) -> Any:
    return lambda seen: ids <= {e.data["job"]["id"] for e in seen if e.data["kind"] == "created"}


def test_events_arrive_in_order_with_increasing_ids(served: Served, streams: list[Stream]) -> None:
    stream = Stream(served.url)
    streams.append(stream)
    jobs = [served.create(i) for i in range(3)]
    seen = stream.until(created({j.id for j in jobs}))
    assert all(e.event == "job" for e in seen)
    ids = [e.id for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(b == a + 1 for a, b in itertools.pairwise(ids))
    first = seen[0].data
    assert set(first) == {"kind", "previous", "job"} and first["job"]["id"] == jobs[0].id
    # A cancel is a transition with the status it left.
    served.engine.cancel_job(jobs[1].id)
    cancel = stream.until(lambda s: any(e.data["job"]["status"] == "cancelled" for e in s))[-1]
    assert cancel.data["kind"] == "transition" and cancel.data["previous"] is not None


def test_a_reconnect_with_last_event_id_replays_what_was_missed(
    served: Served, streams: list[Stream]
) -> None:
    first = Stream(served.url)
    streams.append(first)
    job = served.create(1)
    seen = first.until(created({job.id}))
    last = seen[-1].id
    first.close()
    missed: list[Job] = [served.create(i) for i in range(2, 4)]
    for header in (True, False):
        if header:
            again = Stream(served.url, headers={"Last-Event-ID": str(last)})
        else:
            again = Stream(served.url, params={"last_event_id": str(last)})
        streams.append(again)
        replay = again.until(created({j.id for j in missed}))
        assert replay[0].id == last + 1 and replay[0].event == "job"
        assert [e.id for e in replay] == list(range(last + 1, last + 1 + len(replay)))


def test_an_id_the_daemon_no_longer_holds_gets_a_reset(
    served: Served, streams: list[Stream]
) -> None:
    served.create(1)
    stream = Stream(served.url, headers={"Last-Event-ID": "5"})
    streams.append(stream)
    reset = stream.next()
    assert reset.event == "reset" and reset.id == served.daemon.app.state.events.last_id
    job = served.create(2)
    after = stream.until(created({job.id}))
    assert after[0].id == reset.id + 1


def test_a_bad_last_event_id_is_422(served: Served) -> None:
    answer = served.client.get("/api/events", headers={"Last-Event-ID": "abc"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "last_event_id"


def test_the_ring_keeps_the_newest_events_and_reports_gaps() -> None:
    hub = EventHub(size=3, first_id=100)
    job = Job(id="j", provider="mock", status=JobStatus.QUEUED, payload=_payload(),
              created_at=0, updated_at=0)
    for _ in range(5):
        hub.publish(JobEvent("created", job))
    assert hub.last_id == 105
    events, gap = hub.since(102)
    assert [e.id for e in events] == [103, 104, 105] and not gap
    assert hub.since(101)[1]  # 102 is gone
    assert hub.since(105) == ([], False)
    assert hub.since(999)[1]  # an id from another daemon


def test_an_earlier_daemons_id_is_a_reset_before_any_new_event() -> None:
    """Review finding: while the new daemon's ring was empty, an id from the run before
    got no reset, and the page kept a stale list until something else happened."""
    hub = EventHub(size=3, first_id=1000)
    assert hub.since(500) == ([], True)
    assert hub.since(1000) == ([], False)


def test_a_keepalive_comment_while_nothing_happens(served: Served, streams: list[Stream]) -> None:
    served.daemon.app.state.events.keepalive = 0.05
    stream = Stream(served.url)
    streams.append(stream)
    assert stream.comments.get(timeout=WAIT) == ": keepalive"


def test_stopping_the_daemon_ends_open_streams(served: Served, streams: list[Stream]) -> None:
    stream = Stream(served.url)
    streams.append(stream)
    done = threading.Event()
    stopper = threading.Thread(target=lambda: (served.daemon.stop(timeout=WAIT), done.set()))
    stopper.start()
    assert done.wait(WAIT), "Daemon.stop hung on an open event stream"
    assert stream.ended.wait(WAIT)
    stopper.join()


def _payload() -> Any:
    from providers import parse_start_job_payload  # noqa: PLC0415

    return parse_start_job_payload(magnet(1))
