"""Provider names become safe local paths: inside the folder, valid, never shared."""

from __future__ import annotations

import unicodedata
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.transfer import place_files, safe_relative_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/x", "abs/x"),
        ("C:\\x\\y.txt", "x/y.txt"),
        ("c:relative.txt", "c_relative.txt"),
        ("D:", "file"),
        ("a\\b", "a/b"),
        ("x\x00y.txt", "xy.txt"),
        ("bell\x07.txt", "bell.txt"),
        ('a:b?c|d*e<f>g"h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("CON", "CON_"),
        ("nul.txt", "nul_.txt"),
        ("Com1.tar.gz", "Com1_.tar.gz"),
        ("lpt9", "lpt9_"),
        ("console.txt", "console.txt"),
        ("trail. ", "trail"),
        ("  lead.txt", "lead.txt"),
        ("dir./file", "dir/file"),
        ("a/./b/../c.txt", "a/b/c.txt"),
        ("Show/Season 1/e01.mkv", "Show/Season 1/e01.mkv"),
        ("", "file"),
        ("..", "file"),
        ("...", "_"),
        ("e\u0301.txt", "\u00e9.txt"),
    ],
)
def test_a_provider_name_becomes_a_safe_relative_path(name: str, expected: str) -> None:
    assert safe_relative_path(name) == PurePosixPath(expected)


def test_a_long_name_is_cut_to_255_bytes_keeping_its_extension() -> None:
    path = safe_relative_path("x" * 300 + ".mkv")
    assert len(path.name.encode()) <= 255 and path.name.endswith(".mkv")
    multi = safe_relative_path("\u00e9" * 200 + ".srt")  # two bytes each
    assert len(multi.name.encode()) <= 255 and multi.name.endswith(".srt")
    multi.name.encode().decode("utf-8")  # cut at a character boundary


def test_a_long_extension_is_not_kept_whole() -> None:
    name = safe_relative_path("a." + "b" * 300).name
    assert len(name.encode()) <= 255


def test_same_names_get_numbers_and_a_file_never_meets_a_folder(tmp_path: Path) -> None:
    placed = place_files(
        [(1, "dup.txt"), (2, "DUP.txt"), (3, "a"), (4, "a/b"), (5, "dup.txt"), (6, "noext")
         , (7, "noext")],
        tmp_path,
    )
    rel = {k: v.relative_to(tmp_path).as_posix() for k, v in placed.items()}
    assert rel == {1: "dup.txt", 2: "DUP (1).txt", 3: "a", 4: "a (1)/b", 5: "dup (2).txt",
                   6: "noext", 7: "noext (1)"}


def test_a_folder_placed_first_pushes_a_later_file_aside(tmp_path: Path) -> None:
    placed = place_files([(1, "a/b"), (2, "A")], tmp_path)
    assert placed[2].relative_to(tmp_path).as_posix() == "A (1)"


_PIECES = st.sampled_from(
    ["..", ".", "", "/", "\\", "C:", "con", "NUL.txt", "a", "A", "x.mkv", " ", "...", ":",
     "\x00", "\x1f", "e\u0301", "\u00e9", "\u00c9", "\u4e2d", "?", "*", "trail. "]
)
_NAMES = st.lists(_PIECES, max_size=8).map("".join) | st.text(max_size=40) | st.text(
    alphabet=st.characters(codec="utf-8"), min_size=200, max_size=300
)


def _key(path: Path, root: Path) -> tuple[str, ...]:
    return tuple(unicodedata.normalize("NFC", p).casefold()
                 for p in path.relative_to(root).parts)


@settings(max_examples=300, deadline=None)
@given(names=st.lists(_NAMES, max_size=12))
@example(names=["..C:", "..C:"])  # found: the number went before a stem of dots only
def test_no_name_escapes_the_folder_or_collides(names: list[str]) -> None:
    root = Path("/srv/downloads/job")
    placed = place_files(list(enumerate(names)), root)
    assert sorted(placed) == list(range(len(names)))
    keys = []
    for path in placed.values():
        assert path.is_relative_to(root) and path != root
        parts = path.relative_to(root).parts
        assert parts and ".." not in parts and "." not in parts
        for part in parts:
            assert part and len(part.encode()) <= 255
            assert not any(ord(c) < 32 or ord(c) == 127 for c in part)
            assert not any(c in ':?|*<>"\\/' for c in part)
            assert part == part.rstrip(" .") and part == part.lstrip(" ")
            assert unicodedata.normalize("NFC", part) == part
        keys.append(_key(path, root))
    assert len(set(keys)) == len(keys)
    for key in keys:  # no file is another one's folder
        assert not any(other[: len(key)] == key for other in keys if other != key)
