"""select_files / selected_ids: FileSelection applied to a provider's file list."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from providers import FileSelection, JobFile, select_files
from providers._selection import selected_ids

FILES = (
    JobFile(1, "Show/Season 1/Show.S01E01.MKV", size=1_000),
    JobFile(2, "Show/Season 1/Show.S01E02.mkv", size=3_000),
    JobFile(3, "Show/Season 1/sample.mkv", size=50),
    JobFile(4, "Show/subs/Show.S01E01.srt", size=10),
    JobFile(5, "Show/readme.txt", size=3_000),
)


def test_empty_selection_selects_every_file() -> None:
    files = (JobFile(1, "a", selected=False), JobFile(2, "b"))
    assert [f.selected for f in select_files(FileSelection(), files)] == [True, True]


def test_every_file_is_returned_in_order_with_other_fields_untouched() -> None:
    files = (JobFile(9, "x.bin", size=5, link="https://l/9", local_path="/d/x", bytes_done=2),)
    (result,) = select_files(FileSelection(ids=(1,)), files)
    assert result == JobFile(
        9, "x.bin", size=5, link="https://l/9", local_path="/d/x", bytes_done=2, selected=False
    )


def test_ids_select_exactly_those_files() -> None:
    assert selected_ids(FileSelection(ids=(4, 2, 99)), FILES) == (2, 4)


def test_globs_match_case_insensitively() -> None:
    assert selected_ids(FileSelection(globs=("*.mkv",)), FILES) == (1, 2, 3)


def test_globs_match_the_base_name() -> None:
    assert selected_ids(FileSelection(globs=("sample*",)), FILES) == (3,)


def test_globs_match_the_full_relative_name() -> None:
    assert selected_ids(FileSelection(globs=("show/season 1/*E0?.mkv",)), FILES) == (1, 2)


def test_full_name_match_ignores_a_leading_slash() -> None:
    files = (JobFile(1, "/Folder/a.mkv"), JobFile(2, "/Other/a.mkv"))
    assert selected_ids(FileSelection(globs=("folder/*",)), files) == (1,)


def test_any_of_several_globs_selects_a_file() -> None:
    assert selected_ids(FileSelection(globs=("*.srt", "*.txt")), FILES) == (4, 5)


def test_min_size_keeps_files_at_least_that_big() -> None:
    assert selected_ids(FileSelection(min_size=1_000), FILES) == (1, 2, 5)


def test_filters_combine_with_and() -> None:
    selection = FileSelection(ids=(1, 3, 5), globs=("*.mkv",), min_size=100)
    assert selected_ids(selection, FILES) == (1,)


def test_largest_only_keeps_the_largest_of_the_matches() -> None:
    assert selected_ids(FileSelection(globs=("*.mkv",), largest_only=True), FILES) == (2,)


def test_largest_only_alone_keeps_the_largest_file_and_the_first_on_a_tie() -> None:
    # Files 2 and 5 are both 3000 bytes: the first listed wins.
    assert selected_ids(FileSelection(largest_only=True), FILES) == (2,)


def test_largest_only_with_no_match_selects_nothing() -> None:
    selection = FileSelection(globs=("*.iso",), largest_only=True)
    result = select_files(selection, FILES)
    assert len(result) == len(FILES)
    assert not any(f.selected for f in result)


def test_no_files_gives_no_files() -> None:
    assert select_files(FileSelection(largest_only=True), []) == ()


files_strategy = st.lists(
    st.builds(
        JobFile,
        id=st.integers(0, 20),
        name=st.text(alphabet="abAB./ *?", max_size=12),
        size=st.integers(0, 100),
        selected=st.booleans(),
    ),
    max_size=8,
)
selections = st.builds(
    FileSelection,
    ids=st.lists(st.integers(0, 20), max_size=4).map(tuple),
    globs=st.lists(st.text(alphabet="abAB/*?", min_size=1, max_size=5), max_size=3).map(tuple),
    min_size=st.integers(0, 100),
    largest_only=st.booleans(),
)


def _matches(glob: str, name: str) -> bool:
    full = name.lstrip("/").lower()
    base = full.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(full, glob.lower()) or fnmatch.fnmatchcase(base, glob.lower())


@settings(deadline=None)  # the suite shares CPUs with actor tests
@given(selections, files_strategy)
def test_selected_files_satisfy_every_filter(
    selection: FileSelection, files: list[JobFile]
) -> None:
    result = select_files(selection, files)
    assert [f.id for f in result] == [f.id for f in files]
    chosen = [f for f in result if f.selected]
    for file in chosen:
        assert not selection.ids or file.id in selection.ids
        assert file.size >= selection.min_size
        assert not selection.globs or any(_matches(g, file.name) for g in selection.globs)
    if selection.largest_only:
        assert len(chosen) <= 1
    else:
        # Nothing that passes every filter is left out.
        rejected = [f for f in result if not f.selected]
        for file in rejected:
            assert (
                (selection.ids and file.id not in selection.ids)
                or file.size < selection.min_size
                or (selection.globs and not any(_matches(g, file.name) for g in selection.globs))
            )
