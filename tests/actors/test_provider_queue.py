"""CallQueue on its own: ``run_now`` gives a call at once exactly when ``push`` then
``select`` would, on an empty line (the provider actor's shortcut past the queue)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors._provider_queue import CallQueue, Lane
from providers import FakeClock, RateLimiter


def queue_with(tokens: int, clock: FakeClock) -> tuple[CallQueue, RateLimiter]:
    limiter = RateLimiter(1.0, 2, clock, name="create")
    limiter.take(2 - tokens)
    return CallQueue({"create": limiter}), limiter


def test_run_now_on_an_empty_line_with_tokens_gives_the_call_unqueued() -> None:
    queue, _ = queue_with(1, FakeClock())
    call = queue.run_now("submit", Lane.SUBMIT, {"create": 1, "unknown": 3}, "job")
    assert call is not None
    assert (call.message, call.lane, dict(call.costs), call.job_id) == (
        "submit", Lane.SUBMIT, {"create": 1}, "job"
    )
    assert len(queue) == 0  # nothing was queued: nothing to pop or withdraw


def test_run_now_refuses_while_anything_waits_in_the_line() -> None:
    queue, _ = queue_with(2, FakeClock())
    queue.push("poll", Lane.STATUS, {})
    # Even a call of an earlier lane and other buckets goes through the line then.
    assert queue.run_now("delete", Lane.CANCEL, {}) is None
    queue.pop(queue.select().ready)  # type: ignore[arg-type]
    assert len(queue) == 0
    assert queue.run_now("delete", Lane.CANCEL, {}) is not None


def test_run_now_refuses_without_the_tokens() -> None:
    clock = FakeClock()
    queue, _ = queue_with(0, clock)
    assert queue.run_now("submit", Lane.SUBMIT, {"create": 1}) is None
    assert queue.run_now("poll", Lane.STATUS, {"create": 0}) is not None  # costs nothing
    clock.advance(1.0)
    assert queue.run_now("submit", Lane.SUBMIT, {"create": 1}) is not None


def test_the_count_follows_pushes_pops_withdrawals_and_drains() -> None:
    queue, _ = queue_with(2, FakeClock())
    for i in range(3):
        queue.push(f"c{i}", Lane.SUBMIT, {"create": 1}, "a" if i < 2 else "b")
    assert len(queue) == 3
    queue.withdraw("a")
    assert len(queue) == 1
    queue.pop(queue.select().ready)  # type: ignore[arg-type]
    assert len(queue) == 0
    queue.push("x", Lane.LINKS, {})
    queue.drain()
    assert len(queue) == 0
    assert queue.run_now("y", Lane.LINKS, {}) is not None


@given(
    tokens=st.integers(0, 2),
    cost=st.integers(0, 3),
    lane=st.sampled_from(list(Lane)),
)
def test_run_now_agrees_with_push_then_select(tokens: int, cost: int, lane: Lane) -> None:
    clock = FakeClock()
    shortcut, _ = queue_with(tokens, clock)
    line, _ = queue_with(tokens, clock)
    direct = shortcut.run_now("call", lane, {"create": cost})
    queued = line.push("call", lane, {"create": cost})
    assert (direct is not None) == (line.select().ready is queued)
