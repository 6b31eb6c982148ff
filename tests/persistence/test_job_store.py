"""JobStore behaviour on every backend: round trips, upserts, queries, deletes, history."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from persistence_helpers import happy_path, make_job, rich_job

from persistence import JobStore
from persistence._database import execute
from providers._errors import JobNotFound, StoreError, ValidationError
from providers._job import FileTransfer, Job, JobErrorInfo, JobFile, Transition
from providers._payload import FileSelection, StartJobPayload
from providers._status import JobStatus


def test_round_trip_of_torrent_job_with_files_metadata_and_error_is_exact(store: JobStore) -> None:
    job = rich_job()
    store.save(job)
    loaded = store.get(job.id)
    assert loaded == job
    assert loaded.payload.torrent == job.payload.torrent


def test_round_trip_of_magnet_and_url_jobs(store: JobStore) -> None:
    magnet = make_job(
        "m", payload=StartJobPayload(magnet="magnet:?xt=urn:btih:" + "a" * 40), remote_id=None
    )
    url = make_job("u", status=JobStatus.DOWNLOADING, progress=99.5, submitted=True)
    store.save_batch([(magnet, ()), (url, ())])
    assert store.get("m") == magnet
    assert store.get("u") == url


def test_get_of_unknown_id_raises_job_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFound) as caught:
        store.get("nope")
    assert caught.value.job_id == "nope"


def test_save_replaces_the_existing_row_of_the_same_job(store: JobStore) -> None:
    job = make_job("a")
    store.save(job)
    later, _ = job.advance(JobStatus.DOWNLOADING, job.created_at + 5, progress=10.0, remote_id="R")
    store.save(later)
    assert store.get("a") == later
    assert store.count() == 1


def test_upsert_clears_error_and_remote_id_on_new_attempt(store: JobStore) -> None:
    failed = make_job(
        "a", status=JobStatus.FAILED, error=JobErrorInfo("X", "boom"), remote_id="R", attempt=1
    )
    store.save(failed)
    retried, step = failed.new_attempt(failed.updated_at + 1)
    store.save(retried, [step])
    loaded = store.get("a")
    assert loaded == retried
    assert loaded.error is None
    assert loaded.remote_id is None
    assert loaded.attempt == 2


def test_batch_with_the_same_job_twice_keeps_the_last_version(store: JobStore) -> None:
    first = make_job("a")
    second, steps = first.advance(JobStatus.RESOLVING, first.created_at + 1)
    store.save_batch([(first, [Transition("a", 1, None, JobStatus.QUEUED, 0)]), (second, steps)])
    assert store.get("a") == second
    assert [t.to_status for t in store.transitions("a")] == [
        JobStatus.QUEUED,
        JobStatus.RESOLVING,
    ]


def test_get_many_returns_the_existing_jobs_by_id(store: JobStore) -> None:
    jobs = [make_job(f"j{i}") for i in range(5)]
    store.save_batch([(job, ()) for job in jobs])
    found = store.get_many(["j1", "j3", "missing", "j3"])
    assert found == {"j1": jobs[1], "j3": jobs[3]}


def test_get_many_handles_more_ids_than_one_query_takes(store: JobStore) -> None:
    jobs = [make_job(f"j{i:04d}") for i in range(2_000)]
    store.save_batch([(job, ()) for job in jobs])
    found = store.get_many(job.id for job in jobs)
    assert len(found) == 2_000


@pytest.fixture
def mixed(store: JobStore) -> list[Job]:
    """Nine jobs of two providers in every state, created one millisecond apart."""
    specs = [
        ("a", JobStatus.QUEUED, "mock"),
        ("b", JobStatus.RESOLVING, "mock"),
        ("c", JobStatus.COMPLETED, "torbox"),
        ("d", JobStatus.FAILED, "mock"),
        ("e", JobStatus.QUEUED, "torbox"),
        ("f", JobStatus.DOWNLOADING, "torbox"),
        ("g", JobStatus.COMPLETED, "mock"),
        ("h", JobStatus.CANCELLED, "mock"),
        ("i", JobStatus.COMPLETED, "mock"),
    ]
    jobs = [
        make_job(
            job_id, status=status, provider=provider, created_at=1_000 + n, updated_at=9_000 - n
        )
        for n, (job_id, status, provider) in enumerate(specs)
    ]
    # Saved out of order so that the order asked for is the store's doing.
    store.save_batch([(job, ()) for job in reversed(jobs)])
    return jobs


def ids(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


def test_list_without_filters_returns_every_job_oldest_first(
    store: JobStore, mixed: list[Job]
) -> None:
    assert store.list() == mixed


def test_list_filters_by_one_status(store: JobStore, mixed: list[Job]) -> None:
    assert ids(store.list(status=JobStatus.COMPLETED)) == ["c", "g", "i"]


def test_list_filters_by_several_statuses_and_provider(store: JobStore, mixed: list[Job]) -> None:
    found = store.list(status=[JobStatus.QUEUED, JobStatus.COMPLETED], provider="torbox")
    assert ids(found) == ["c", "e"]


def test_list_accepts_status_values_as_text(store: JobStore, mixed: list[Job]) -> None:
    assert ids(store.list(status="queued")) == ["a", "e"]  # type: ignore[arg-type]


def test_list_with_no_statuses_matches_nothing(store: JobStore, mixed: list[Job]) -> None:
    assert store.list(status=[]) == []
    assert store.count(status=[]) == 0


def test_list_orders_by_the_column_asked_for(store: JobStore, mixed: list[Job]) -> None:
    assert ids(store.list(order="updated_at")) == list("ihgfedcba")
    assert ids(store.list(order="created_at", descending=True)) == list("ihgfedcba")
    by_status = ids(store.list(order="status"))
    assert by_status == ["h", "c", "g", "i", "f", "d", "a", "e", "b"]


def test_list_pages_with_limit_and_offset_without_overlap(
    store: JobStore, mixed: list[Job]
) -> None:
    pages = [ids(store.list(order="provider", limit=4, offset=offset)) for offset in (0, 4, 8)]
    assert [len(page) for page in pages] == [4, 4, 1]
    flat = [job_id for page in pages for job_id in page]
    assert sorted(flat) == sorted(ids(mixed))
    # Ties on provider are broken by id.
    assert flat == ["a", "b", "d", "g", "h", "i", "c", "e", "f"]


def test_list_offset_without_limit_skips_the_first_rows(store: JobStore, mixed: list[Job]) -> None:
    assert ids(store.list(offset=7)) == ["h", "i"]
    assert store.list(limit=0) == []


@pytest.mark.parametrize("order", ["payload", "created_at; DROP TABLE jobs", "", "CREATED_AT"])
def test_list_refuses_an_unknown_order_column(store: JobStore, order: str) -> None:
    with pytest.raises(ValidationError) as caught:
        store.list(order=order)
    assert caught.value.field == "order"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"limit": -1}, "limit"), ({"offset": -2}, "offset"), ({"status": "stuck"}, "status")],
)
def test_list_refuses_bad_arguments(store: JobStore, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        store.list(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_count_filters_like_list(store: JobStore, mixed: list[Job]) -> None:
    assert store.count() == 9
    assert store.count(status=JobStatus.COMPLETED) == 3
    assert store.count(provider="torbox") == 3
    assert store.count(status={JobStatus.QUEUED, JobStatus.DOWNLOADING}, provider="torbox") == 2
    assert store.count(provider="nobody") == 0


def test_non_terminal_orders_by_priority_then_age(store: JobStore) -> None:
    jobs = [
        make_job("old-low", created_at=1, priority=0),
        make_job("new-high", created_at=5, priority=10, status=JobStatus.DOWNLOADING),
        make_job("old-high", created_at=2, priority=10, status=JobStatus.RESOLVING),
        make_job("negative", created_at=0, priority=-5),
        make_job("done-high", created_at=0, priority=99, status=JobStatus.COMPLETED),
        make_job("failed", created_at=0, status=JobStatus.FAILED),
        make_job("cancelled", created_at=0, status=JobStatus.CANCELLED),
        make_job("new-low", created_at=3, priority=0, provider="torbox"),
    ]
    store.save_batch([(job, ()) for job in jobs])
    assert ids(store.non_terminal()) == ["old-high", "new-high", "old-low", "new-low", "negative"]
    assert ids(store.non_terminal(provider="torbox")) == ["new-low"]


def test_delete_terminal_removes_completed_jobs_and_their_history(store: JobStore) -> None:
    done, done_steps = happy_path(make_job("done"), 10)
    active = make_job("active", status=JobStatus.DOWNLOADING)
    failed = make_job("failed", status=JobStatus.FAILED)
    store.save_batch([(done, done_steps), (active, ()), (failed, ())])

    assert store.delete_terminal() == 1

    assert ids(store.list()) == ["active", "failed"]
    with pytest.raises(JobNotFound):
        store.transitions("done")
    assert (
        execute(
            store.database,  # no orphaned history rows
            f'SELECT count(*) FROM "{store.tables.transitions._meta.table_name}"',
        ).fetchone()[0]
        == 0
    )


def test_delete_terminal_takes_several_terminal_statuses(store: JobStore, mixed: list[Job]) -> None:
    assert store.delete_terminal([JobStatus.FAILED, JobStatus.CANCELLED]) == 2
    assert store.count() == 7
    assert store.delete_terminal([]) == 0


def test_delete_terminal_refuses_unfinished_statuses(store: JobStore, mixed: list[Job]) -> None:
    with pytest.raises(ValidationError) as caught:
        store.delete_terminal([JobStatus.COMPLETED, JobStatus.QUEUED])
    assert "queued" in str(caught.value)
    assert store.count() == 9


def test_delete_removes_the_given_jobs_and_says_how_many(store: JobStore, mixed: list[Job]) -> None:
    assert store.delete(["a", "b", "unknown"]) == 2
    assert store.delete("c") == 1
    assert sorted(ids(store.list())) == list("defghi")


def test_transitions_are_returned_in_the_order_they_were_saved(store: JobStore) -> None:
    job = make_job("a")
    created = Transition("a", 1, None, JobStatus.QUEUED, 100)
    store.save(job, [created])
    # A cached item reported done at once walks every state between.
    done, walked = job.advance(JobStatus.COMPLETED, 100)
    store.save(done, walked)
    retried, step = (
        make_job("a", status=JobStatus.COMPLETED).evolve(status=JobStatus.FAILED).new_attempt(200)
    )
    store.save(retried, [step])
    history = store.transitions("a")
    assert history == [created, *walked, step]
    assert [(t.from_status, t.to_status) for t in history] == [
        (None, JobStatus.QUEUED),
        (JobStatus.QUEUED, JobStatus.RESOLVING),
        (JobStatus.RESOLVING, JobStatus.DOWNLOADING),
        (JobStatus.DOWNLOADING, JobStatus.COMPLETED),
        (JobStatus.FAILED, JobStatus.QUEUED),
    ]


def test_transitions_of_a_job_without_history_is_empty(store: JobStore) -> None:
    store.save(make_job("quiet"))
    assert store.transitions("quiet") == []


def test_transitions_of_another_job_are_refused(store: JobStore) -> None:
    stray = Transition("other", 1, None, JobStatus.QUEUED, 0)
    with pytest.raises(ValidationError):
        store.save(make_job("a"), [stray])
    assert store.count() == 0


def test_metadata_that_is_not_json_is_refused_before_writing(store: JobStore) -> None:
    store.save(make_job("ok"))
    bad = make_job("bad", metadata={"when": object()})
    with pytest.raises(ValidationError) as caught:
        store.save_batch([(make_job("also-ok"), ()), (bad, ())])
    assert caught.value.field == "metadata"
    assert ids(store.list()) == ["ok"]


def test_calls_on_a_closed_store_raise_store_error(store: JobStore) -> None:
    store.close()
    store.close()  # twice is harmless
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.get("a")
    with pytest.raises(StoreError, match="closed"):
        store.save(make_job("a"))


# -- property: any job survives the round trip --------------------------------

_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_files = st.lists(
    st.builds(
        JobFile,
        id=st.integers(0, 10_000),
        name=_text,
        size=st.integers(0, 2**62),
        link=st.none() | _text,
        selected=st.booleans(),
        local_path=st.none() | _text,
        bytes_done=st.integers(0, 2**62),
        md5=st.none() | _text,
    ),
    max_size=3,
).map(tuple)
# A payload has exactly one source (StartJobPayload refuses anything else).
_source = st.one_of(
    st.fixed_dictionaries({"url": _text}),
    st.fixed_dictionaries({"magnet": _text}),
    st.fixed_dictionaries({"torrent": st.binary(max_size=64)}),
)
_payload = _source.flatmap(
    lambda source: st.builds(
        StartJobPayload,
        **{name: st.just(value) for name, value in source.items()},
        select=st.builds(
            FileSelection,
            ids=st.lists(st.integers(0, 100), max_size=3).map(tuple),
            globs=st.lists(_text.filter(bool), max_size=2).map(tuple),
            min_size=st.integers(0, 2**40),
            largest_only=st.booleans(),
        ),
        download_dir=st.none() | _text,
        connections=st.integers(1, 16),
        only_if_cached=st.booleans(),
        priority=st.integers(-1000, 1000),
    )
)
_jobs = st.builds(
    Job,
    id=_text.filter(bool),
    provider=_text,
    status=st.sampled_from(JobStatus),
    payload=_payload,
    progress=st.floats(0, 100),
    files=_files,
    metadata=st.dictionaries(_text, _json, max_size=4),
    error=st.none() | st.builds(JobErrorInfo, code=_text, message=_text),
    attempt=st.integers(1, 1000),
    remote_id=st.none() | _text,
    submitted=st.booleans(),
    created_at=st.integers(0, 2**62),
    updated_at=st.integers(0, 2**62),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(job=_jobs)
def test_any_job_reads_back_equal_to_what_was_saved(sqlite_store: JobStore, job: Job) -> None:
    # The store outlives the examples, and ids repeat: start each from no row
    # (a second save would keep the first one's identity, see above).
    sqlite_store.delete([job.id])
    sqlite_store.save(job)
    assert sqlite_store.get(job.id) == job


def test_non_terminal_with_a_limit_takes_the_first_in_order(store: JobStore) -> None:
    jobs = [make_job(f"j{n}", created_at=n, priority=n % 3) for n in range(9)]
    store.save_batch([(job, ()) for job in jobs])
    assert ids(store.non_terminal(limit=4)) == ["j2", "j5", "j8", "j1"]


def test_values_the_database_cannot_hold_raise_store_error(store: JobStore) -> None:
    with pytest.raises(StoreError):
        store.save(make_job("huge", created_at=2**70))
    with pytest.raises(StoreError):
        store.save(make_job("bad\ud800id"))
    assert store.count() == 0


def test_file_names_of_any_text_read_back_exactly(store: JobStore) -> None:
    # Non-ASCII, a NUL and a lone surrogate (which the fast encoder refuses, so
    # the standard one takes over) all survive the files column.
    files = (
        JobFile(0, "Séries/épisode 1.mkv", size=2**40, link="https://l/é"),
        JobFile(1, "odd\x00name\udc80.nfo", size=1, selected=False, md5="f" * 32),
    )
    job = make_job("names", status=JobStatus.COMPLETED, files=files, progress=100.0)
    store.save(job)
    assert store.get("names") == job


def test_metadata_keeps_what_only_the_standard_encoder_writes(store: JobStore) -> None:
    job = make_job("meta", metadata={"big": 2**70, "odd": "\ud800", "nested": [{"é": 1.5}]})
    store.save(job)
    assert store.get("meta") == job


def test_file_rows_hold_what_the_converter_makes_of_the_files() -> None:
    import attrs  # noqa: PLC0415

    from persistence._rows import file_dicts  # noqa: PLC0415
    from providers._convert import converter  # noqa: PLC0415

    files = (
        JobFile(1, "a/b.mkv", size=10, link="https://l/1", local_path="/d/b.mkv"),
        JobFile(2, "c.nfo", size=1, selected=False, bytes_done=1, md5="0" * 32),
        JobFile(
            3,
            "d.bin",
            size=100,
            transfer=FileTransfer(100, etag='"e1"', last_modified=None, ranges=((0, 40), (60, 70))),
            verified="size+md5",
        ),
    )
    assert file_dicts(files) == converter.unstructure(files)
    assert set(file_dicts(files)[0]) == {field.name for field in attrs.fields(JobFile)}


def test_a_files_transfer_state_reads_back_as_it_was_written(store: JobStore) -> None:
    transfer = FileTransfer(1000, etag='"v2"', last_modified="Wed, 02 Dec 2026 10:00:00 GMT",
                            ranges=((0, 512), (768, 900)))
    job = make_job("t", files=(JobFile(1, "a.bin", size=1000, bytes_done=644, transfer=transfer),))
    store.save(job)
    back = store.get("t")
    assert back.files[0].transfer == transfer
    assert back.files[0].transfer.done == 644


def test_a_saved_jobs_identity_is_kept_and_only_its_state_is_updated(store: JobStore) -> None:
    job = make_job("a", priority=5)
    store.save(job)
    other_payload = StartJobPayload(url="https://example.com/other.zip", priority=9)
    later = job.evolve(
        provider="other",
        payload=other_payload,
        created_at=job.created_at + 99,
        status=JobStatus.RESOLVING,
        progress=3.0,
        updated_at=job.updated_at + 1,
    )
    store.save(later)
    loaded = store.get("a")
    assert (loaded.provider, loaded.payload, loaded.created_at) == (
        job.provider,
        job.payload,
        job.created_at,
    )
    assert (loaded.status, loaded.progress, loaded.updated_at) == (
        JobStatus.RESOLVING,
        3.0,
        job.updated_at + 1,
    )
    assert [j.id for j in store.non_terminal()] == ["a"]  # still ordered by its first priority


def test_payload_texts_are_kept_while_their_payloads_live() -> None:
    import gc  # noqa: PLC0415

    from persistence._rows import _PayloadText  # noqa: PLC0415

    texts = _PayloadText()
    payloads = [StartJobPayload(url=f"https://example.com/{i}") for i in range(5)]
    first = [texts(p) for p in payloads]
    assert all(f"https://example.com/{i}" in text for i, text in enumerate(first))
    assert [texts(p) for p in payloads] == first and len(texts) == 5
    del payloads[:3]
    gc.collect()
    assert len(texts) == 2  # gone with their payloads
    assert texts(StartJobPayload(url="https://example.com/0")) == first[0]


def test_delete_finished_keeps_a_row_that_is_live_again(store: JobStore) -> None:
    """Review finding: on a shared store another engine may retry a job between the
    supervisor's read and the delete; the delete itself must keep a live row."""
    store.save(make_job("live", status=JobStatus.QUEUED))
    store.save(make_job("done", status=JobStatus.COMPLETED))
    assert store.delete_finished(["live", "done", "gone"]) == {"done"}
    assert [j.id for j in store.list()] == ["live"]
