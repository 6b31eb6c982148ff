"""A job's search text, built from parts cached with its payload, is the text of the
whole job folded at once (the definition the migration and the docs give)."""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st
from persistence_helpers import make_job

from persistence._rows import JOB_COLUMNS, job_to_row
from persistence._search import (
    _magnet_names,
    fold,
    joined_search_text,
    payload_search_text,
    search_text,
)
from providers import JobFile, StartJobPayload


def _reference(job_id: str, url: str | None, magnet: str | None, folder: str | None,
               names: list[str]) -> str:  # fmt: skip
    parts = [job_id]
    if url:
        parts.append(url)
    if magnet:
        parts.append(magnet)
        with contextlib.suppress(ValueError):
            parts.extend(parse_qs(urlsplit(magnet).query).get("dn", []))
    if folder:
        parts.append(folder)
    parts.extend(names)
    return fold("\n".join(parts))


_magnets = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet="ab=&%+2Fdn:?xt.;").map(lambda s: "magnet:?" + s),
    st.text().map(lambda s: "magnet:?xt=urn:btih:" + "a" * 40 + "&dn=" + s),
)


@settings(max_examples=400, deadline=None)
@given(st.text(), st.none() | st.text(), _magnets, st.none() | st.text(),
       st.lists(st.text(), max_size=3))  # fmt: skip
def test_parts_joined_equal_the_whole_folded(
    job_id: str, url: str | None, magnet: str | None, folder: str | None, names: list[str]
) -> None:
    expected = _reference(job_id, url, magnet, folder, names)
    assert search_text(job_id, url, magnet, folder, names) == expected
    part = payload_search_text(url, magnet, folder)
    assert search_text(job_id, url, magnet, folder, iter(names)) == expected
    assert joined_search_text(job_id, part, names) == expected


def test_the_dn_of_a_magnet_is_decoded_and_blank_ones_are_left_out() -> None:
    magnet = "magnet:?xt=urn:btih:" + "a" * 40 + "&dn=My+Film%20(2020)&dn=&tr=udp://x"
    assert _magnet_names(magnet) == ["My Film (2020)"]


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)) | st.text())
def test_the_ascii_shortcut_folds_as_the_general_way(text: str) -> None:
    general = text.encode("utf-8", "ignore").decode("utf-8").replace("\x00", "").casefold()
    assert fold(text) == general


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.none() | st.text(alphabet="abcXYZé/ :").map(lambda s: "/d/" + s),
       st.lists(st.text(), max_size=3))  # fmt: skip
def test_a_rows_search_column_is_the_jobs_search_text(
    job_id: str, folder: str | None, names: list[str]
) -> None:
    """``job_to_row`` builds the column from cached parts: the same text all the same."""
    magnet = "magnet:?xt=urn:btih:" + "b" * 40 + "&dn=Some+N%C3%A4me"
    payload = StartJobPayload(magnet=magnet, download_dir=folder)
    files = tuple(JobFile(i, name, 1) for i, name in enumerate(names))
    job = make_job(job_id, payload=payload, files=files)
    column = job_to_row(job)[JOB_COLUMNS.index("search")]
    assert column == search_text(job_id, None, magnet, folder, names)
    assert column == job_to_row(job)[JOB_COLUMNS.index("search")]  # from the cache
