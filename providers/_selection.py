"""Which files of a job the caller wants: ``FileSelection`` applied to a provider's file list."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

import attrs

from providers._job import JobFile
from providers._payload import FileSelection

__all__ = ["select_files", "selected_ids"]


def select_files(selection: FileSelection, files: Sequence[JobFile]) -> tuple[JobFile, ...]:
    """Every file of ``files``, in order, with ``selected`` set as ``selection`` says.

    A file is selected when its id is in ``selection.ids`` (if any), its name
    matches one of ``selection.globs`` (if any) and its size is at least
    ``selection.min_size``. Globs are ``fnmatch`` patterns, matched without regard
    to case against the full relative name (a leading ``/`` ignored) and against
    the base name, so ``*.mkv`` and ``Season 1/*.mkv`` both work. With
    ``largest_only`` only the largest of those stays selected (the first one
    listed, on a tie). An empty selection selects every file.
    """
    if selection.is_all and all(file.selected and file.size >= 0 for file in files):
        return tuple(files)  # every file wanted and already marked so: nothing to copy
    patterns = [re.compile(fnmatch.translate(glob), re.IGNORECASE) for glob in selection.globs]
    ids = frozenset(selection.ids)

    def wanted(file: JobFile) -> bool:
        if ids and file.id not in ids:
            return False
        if file.size < selection.min_size:
            return False
        if patterns:
            full = file.name.lstrip("/")
            base = full.rsplit("/", 1)[-1]
            return any(p.match(full) or p.match(base) for p in patterns)
        return True

    chosen = [wanted(file) for file in files]
    if selection.largest_only and any(chosen):
        # max() keeps the first of equal keys, which makes ties go to the first listed.
        keep = max((i for i, ok in enumerate(chosen) if ok), key=lambda i: files[i].size)
        chosen = [i == keep for i in range(len(files))]
    return tuple(
        file if file.selected == ok else attrs.evolve(file, selected=ok)
        for file, ok in zip(files, chosen, strict=True)
    )


def selected_ids(selection: FileSelection, files: Sequence[JobFile]) -> tuple[int, ...]:
    """The ids of the files ``select_files`` selects, in the order of ``files``."""
    return tuple(file.id for file in select_files(selection, files) if file.selected)
