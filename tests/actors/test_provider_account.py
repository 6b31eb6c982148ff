"""The provider actor's account hold: a refusal of the whole account holds calls back.

A poll or a call refused with an account code (BAD_TOKEN, ACCOUNT_LOCKED, ...)
puts the actor in a hold: job calls are held unsent and their jobs told
(``AccountHeld``), one probe goes out after a gap that doubles from 15 s to
60 s, the first call that works ends it (``AccountResumed``, held calls sent
once), and past ``account_fail_after`` the held jobs fail with the code.
"""

from __future__ import annotations

from typing import Any

import pykka
import pytest
from test_provider_actor import Budgeted, Harness, payload

from actors._messages import (
    AccountHeld,
    AccountResumed,
    CallFailed,
    Cleanup,
    LinksRefreshed,
    RefreshLinks,
    StatusUpdate,
    Submitted,
)
from actors._provider_book import ProviderBook
from providers import FakeClock, Job, JobFile, JobStatus, ProviderError


def refused(code: str = "BAD_TOKEN") -> ProviderError:
    return ProviderError("the service refused the key", "budgeted", code=code)


def tracked_item(h: Harness, provider: Budgeted, job_id: str, n: int) -> str:
    """Submit ``job_id`` and track its item; returns the remote id."""
    request = h.submit(job_id, payload(n))
    remote_id = h.submitted(job_id, request).response.remote_id
    h.track(job_id, remote_id, payload(n))
    return remote_id


def step(h: Harness, seconds: float, every: float = 5.0) -> None:
    """Move the clock in steps, letting the actor handle what each one woke."""
    for _ in range(round(seconds / every)):
        h.advance(every)
        # What fell due is told from the scheduler's thread a moment later: wait for
        # it (CI under load once counted one probe in five minutes), then a barrier.
        h.until(h.scheduler.settled)
        h.describe()


def test_polls_refused_for_the_account_hold_calls_and_probe_a_few_a_minute(
    h: Harness,
) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    remote_id = tracked_item(h, provider, "a", 1)
    provider.faults["list_statuses"] = [refused() for _ in range(100)]
    h.advance(10.0)
    held = h.inbox("a").wait_for(AccountHeld)
    assert held.request_id is None and held.note.code == "BAD_TOKEN" and held.note.auth
    report = h.describe()
    assert report.account is not None and report.account.code == "BAD_TOKEN"
    polls = provider.log.count("list_statuses")
    step(h, 300.0)
    # Gaps of 15, 30, 60, 60, 60 s: five probes in five minutes, not thirty polls.
    assert 4 <= provider.log.count("list_statuses") - polls <= 6
    # A submission now is held, unsent; a status asked now answers at once.
    starts = provider.log.count("start_job")
    request = h.submit("b", payload(2))
    assert h.inbox("b").wait_for(AccountHeld).request_id == request
    status_request = h.status("a", remote_id)
    failed = h.inbox("a").wait_for(CallFailed, lambda m: m.request_id == status_request)
    assert failed.error.code == "BAD_TOKEN" and failed.error.retryable
    assert provider.log.count("start_job") == starts
    assert provider.log.count("get_status") == 0
    # The key works again: the next probe ends the hold, the held call goes out once.
    provider.faults["list_statuses"] = []
    step(h, 60.0)
    h.inbox("a").wait_for(AccountResumed)
    h.inbox("b").wait_for(AccountResumed)
    assert h.submitted("b", request).response.remote_id
    h.idle()
    assert provider.log.count("start_job") == starts + 1
    assert h.describe().account is None


def test_a_held_cleanup_is_not_counted_and_goes_out_when_the_account_works(
    h: Harness,
) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    remote_id = tracked_item(h, provider, "a", 1)
    provider.faults["list_statuses"] = [refused("ACCOUNT_LOCKED")]
    provider.faults["cancel"] = [refused("ACCOUNT_LOCKED") for _ in range(100)]
    h.advance(10.0)
    h.inbox("a").wait_for(AccountHeld)
    h.tell(Cleanup("a", payload(1), remote_id, False))
    h.describe()
    assert h.describe().account is not None
    cancels = provider.log.count("cancel")
    step(h, 600.0, every=10.0)  # a locked account for ten minutes: far past 5 tries
    assert remote_id in h.book.deletes  # still owed
    provider.faults["cancel"] = []
    step(h, 120.0, every=10.0)
    h.until(lambda: remote_id not in h.book.deletes)
    assert remote_id not in provider.items
    assert provider.log.count("cancel") - cancels >= 1


def test_past_account_fail_after_held_jobs_fail_and_new_calls_fail_unsent(
    h: Harness,
) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider, account_fail_after=100.0)
    remote_id = tracked_item(h, provider, "a", 1)
    provider.faults["start_job"] = [refused() for _ in range(100)]
    provider.faults["list_statuses"] = [refused() for _ in range(100)]
    request = h.submit("b", payload(2))
    h.advance(1.0)  # a creation token for it
    h.inbox("b").wait_for(AccountHeld)
    step(h, 100.0)
    failed = h.inbox("b").wait_for(CallFailed, lambda m: m.request_id == request)
    assert failed.error.code == "BAD_TOKEN" and not failed.error.retryable
    assert "100 s" in failed.error.message or "1.7 min" in failed.error.message
    gone = h.inbox("a").wait_for(StatusUpdate, lambda m: m.response.remote_id == remote_id)
    assert gone.response.error_code == "BAD_TOKEN"
    starts = provider.log.count("start_job")
    late = h.submit("c", payload(3))
    h.advance(1.0)
    assert h.inbox("c").wait_for(CallFailed, lambda m: m.request_id == late).error.code == (
        "BAD_TOKEN"
    )
    assert provider.log.count("start_job") == starts


def test_a_probe_whose_job_died_hands_the_probe_to_the_next_held_call(
    h: Harness,
) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    provider.faults["start_job"] = [refused()]
    first = h.submit("a", payload(1))
    assert h.inbox("a").wait_for(AccountHeld).request_id == first
    second = h.submit("b", payload(2))
    h.advance(1.0)  # a creation token for it
    h.inbox("b").wait_for(AccountHeld)
    h.job("a").stop(block=True)  # its job is gone: its held call must not block the rest
    step(h, 20.0)
    assert h.submitted("b", second).response.remote_id
    h.inbox("b").wait_for(AccountResumed)
    started = [arg.info_hash for op, arg in provider.log.calls if op == "start_job"]
    assert started == [payload(1).info_hash, payload(2).info_hash]


def test_the_accounts_deadline_outlives_a_restart_of_the_actor(
    h: Harness, clock: FakeClock
) -> None:
    book = ProviderBook()
    provider = Budgeted(create_rate=10.0)
    h.start(provider, book=book, account_fail_after=100.0)
    provider.faults["start_job"] = [refused() for _ in range(100)]
    h.submit("a", payload(1))
    note = h.inbox("a").wait_for(AccountHeld).note
    step(h, 60.0)
    assert h.actor is not None
    h.actor.stop(block=True)  # as a crash would: the supervisor starts another on the book
    h.start(provider, book=book, bind=False, account_fail_after=100.0)
    request = h.submit("a", payload(1))
    again = h.inbox("a").wait_for(AccountHeld, lambda m: m.request_id == request).note
    assert again.fail_at == note.fail_at
    step(h, 40.0)
    failed = h.inbox("a").wait_for(CallFailed, lambda m: m.request_id == request)
    assert not failed.error.retryable
    assert not h.inbox("a").of(Submitted)


class Expiring(Budgeted):
    """Links that start with ``old`` have expired; asking again gives ``new-<id>``.

    The first new link asked for also queues a status request, which must get its
    turn before the next link is asked for (one request per turn)."""

    def __init__(self, h: Harness) -> None:
        super().__init__(create_rate=10.0)
        self.h = h

    def link_expired(self, remote_id: str, file: JobFile, issued_at: float) -> bool:
        return bool(file.link and file.link.startswith("old"))

    def resolve_download_url(self, remote_id: str, file: JobFile) -> str:
        self._enter("resolve_download_url", file.id)
        if self.log.count("resolve_download_url") == 1:
            self.h.status("other", "b1")
        return f"new-{file.id}"


def test_a_completed_jobs_expired_links_are_asked_again_one_per_turn(h: Harness) -> None:
    provider = Expiring(h)
    h.start(provider)
    files = (
        JobFile(1, "a.mkv", 10, link="old-1"),
        JobFile(2, "b.mkv", 10, link="fresh-2"),
        JobFile(3, "c.mkv", 10, link="old-3"),
    )
    job = Job("j", "test", JobStatus.COMPLETED, payload(1), files=files, remote_id="b1",
              updated_at=1)
    reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    h.tell(RefreshLinks(job, reply))
    done = h.supervisor.wait_for(LinksRefreshed)
    assert done.replies == (reply,) and done.job_id == "j" and done.remote_id == "b1"
    assert done.files is not None
    assert [f.link for f in done.files] == ["new-1", "fresh-2", "new-3"]
    ops = [op for op in provider.log.ops() if op in ("resolve_download_url", "get_status")]
    assert ops == ["resolve_download_url", "get_status", "resolve_download_url"]


def test_links_that_did_not_expire_are_answered_without_a_request(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    job = Job("j", "test", JobStatus.COMPLETED, payload(1),
              files=(JobFile(1, "a.mkv", 10, link="https://x/1"),), remote_id="b1")
    reply: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
    h.tell(RefreshLinks(job, reply))
    assert h.supervisor.wait_for(LinksRefreshed).files is None
    assert provider.log.ops() == []


# -- regressions found in review ------------------------------------------------------
def test_a_probe_withdrawn_from_the_line_does_not_stop_the_probes(h: Harness) -> None:
    provider = Budgeted(create_rate=1 / 60)  # the probe waits in line for its token
    h.start(provider)
    provider.faults["start_job"] = [refused()]
    h.submit("a", payload(1))
    h.inbox("a").wait_for(AccountHeld)
    step(h, 20.0)  # a's submission is the probe, waiting for the token due at t=60
    h.tell(Cleanup("a", payload(1), None, False))  # cancelled: its probe leaves the line
    provider.faults["start_job"] = [refused() for _ in range(4)]  # refused a while yet
    second = h.submit("b", payload(2))
    step(h, 60.0)
    h.inbox("b").wait_for(AccountHeld)
    step(h, 600.0, every=10.0)  # the key works: a probe lets b through within minutes
    assert h.submitted("b", second).response.remote_id
    assert h.describe().account is None
    assert provider.log.count("start_job") == 1 + 4 + 1  # a; b refused 4 times; b


def test_the_start_of_an_old_hold_does_not_date_the_next_one(h: Harness) -> None:
    book = ProviderBook()
    provider = Budgeted(create_rate=10.0)
    h.start(provider, book=book, account_fail_after=100.0)
    provider.faults["start_job"] = [refused()]
    h.submit("a", payload(1))
    h.inbox("a").wait_for(AccountHeld)
    assert h.actor is not None
    h.actor.stop(block=True)  # the actor dies during the hold
    h.start(provider, book=book, bind=False, account_fail_after=100.0)
    request = h.submit("a", payload(1))  # the account works again
    h.advance(1.0)
    h.submitted("a", request)
    assert book.account_since is None
    step(h, 1000.0, every=100.0)
    provider.faults["start_job"] = [refused()]
    late = h.submit("c", payload(3))  # a fresh refusal, much later: a fresh deadline
    h.advance(1.0)
    held = h.inbox("c").wait_for(AccountHeld, lambda m: m.request_id == late)
    assert held.note.fail_at == held.note.since + 100.0
    assert held.note.since >= h.clock.time() - 2.0
    assert not h.inbox("c").of(CallFailed)


def test_a_probe_still_in_line_at_the_deadline_fails_with_the_rest(h: Harness) -> None:
    provider = Budgeted(create_rate=1 / 60)
    h.start(provider, account_fail_after=30.0)
    provider.faults["start_job"] = [refused() for _ in range(1000)]
    request = h.submit("a", payload(1))
    h.inbox("a").wait_for(AccountHeld)
    step(h, 120.0)  # the deadline at t=30 while a's probe waits for its token (t=60)
    failed = h.inbox("a").wait_for(CallFailed, lambda m: m.request_id == request)
    assert not failed.error.retryable


def test_a_hold_given_up_while_jobs_wait_tells_them_to_go_on(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    provider.faults["start_job"] = [
        refused(), ProviderError("bad gateway", "budgeted", code="SERVER_ERROR", retryable=True)
    ]
    request = h.submit("a", payload(1))
    h.inbox("a").wait_for(AccountHeld)
    step(h, 20.0)  # the probe meets another failure: the job hears it and retries itself
    h.inbox("a").wait_for(CallFailed, lambda m: m.request_id == request)
    step(h, 60.0)  # nothing held or tracked any more: the hold ends
    # (The last timer may still be on its way from the scheduler's thread.)
    h.until(lambda: h.describe().account is None)
    h.inbox("a").wait_for(AccountResumed)


def test_a_job_that_tracks_its_item_after_the_deadline_fails_at_once(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider, account_fail_after=30.0)
    mine = h.submitted("z", h.submit("z", payload(9))).response.remote_id
    h.advance(1.0)
    other = h.submitted("y", h.submit("y", payload(8))).response.remote_id
    for op in ("cancel", "start_job", "list_statuses"):
        provider.faults[op] = [refused() for _ in range(1000)]
    h.submit("a", payload(1))
    h.advance(1.0)
    h.inbox("a").wait_for(AccountHeld)
    h.tell(Cleanup("y", payload(8), other, False))  # an owed cleanup keeps the hold on
    step(h, 60.0)
    h.inbox("a").wait_for(CallFailed)
    h.restart_job("z")  # z's job actor comes back after the deadline and tracks again
    h.track("z", mine, payload(9))
    update = h.inbox("z").wait_for(StatusUpdate)
    assert update.response.status is JobStatus.FAILED
    assert update.response.error_code == "BAD_TOKEN"


def test_the_report_says_why_each_bucket_is_paused(h: Harness) -> None:
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    provider.faults["get_status"] = [
        ProviderError("slow down", "budgeted", code="RATE_LIMITED", http_status=429)
    ]
    h.status("a", "b1")
    h.inbox("a").wait_for(CallFailed)
    report = h.describe()
    assert report.pause_reasons == {"default": "RATE_LIMITED: slow down"}
    assert set(report.paused_until) == {"default"}


def test_a_creation_rate_limit_grows_though_status_reads_go_through(h: Harness) -> None:
    """Review of issue 10: the count of hint-less 429s was reset by any call that
    worked, so a creation limit that lasted waited 2 s each time."""
    provider = Budgeted(create_rate=10.0)
    h.start(provider)
    slow_down = ProviderError("slow down", "budgeted", code="RATE_LIMITED", http_status=429)
    reader_item = provider.start_job(payload(9)).remote_id
    provider.faults["start_job"] = [slow_down, slow_down]
    pauses = []
    for n in (1, 2):
        h.submit(f"j{n}", payload(n))
        h.advance(0.2)
        h.inbox(f"j{n}").wait_for(CallFailed)
        report = h.describe()
        pauses.append(report.paused_until["create"] - h.clock.time())
        h.advance(pauses[-1] + 0.5)
        h.status("reader", reader_item)  # a status read (the default bucket alone) works
        h.inbox("reader").wait_for(StatusUpdate, count=n)
    assert pauses == [pytest.approx(2.0, abs=0.25), pytest.approx(4.0, abs=0.25)]


def test_the_hintless_refusal_hold_grows_up_to_slot_retry_delay(h: Harness) -> None:
    """Review of issue 10: once the refused job heard the hold, the configured
    slot_retry_delay no longer did anything; it is now the hold's cap."""
    full = ProviderError("full", "budgeted", code="ACTIVE_LIMIT", retryable=True)
    provider = Budgeted(create_rate=10.0)
    h.start(provider, slot_retry_delay=12.0)
    provider.faults["start_job"] = [full for _ in range(4)]
    holds = []
    for n in range(4):
        h.submit(f"j{n}", payload(n + 1))
        h.advance(0.2)
        holds.append(h.inbox(f"j{n}").wait_for(CallFailed).error.retry_after)
        h.advance(holds[-1])
    assert holds == [5.0, 10.0, 12.0, 12.0]

