"""The text a job is found by: what a person would type to find it, case-folded.

``search_text`` joins the job's id, its URL, its magnet (and the magnet's
``dn``, decoded), its download dir and its file names, one per line, folded with
``str.casefold`` so that a search folds the same way on SQLite and PostgreSQL
whatever their collation; a search folds its words the same way and looks for a
plain substring. JSON keys, escapes and torrent bytes are not in it, so that
``"url"`` or ``"priority"`` find nothing, and ``C:\\Films`` finds its job.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

__all__ = ["fold", "search_text"]


def fold(text: str) -> str:
    """``text`` as searched: case-folded, lone surrogates and NULs left out."""
    return text.encode("utf-8", "ignore").decode("utf-8").replace("\x00", "").casefold()


def _magnet_names(magnet: str) -> list[str]:
    try:
        query = urlsplit(magnet).query
        return parse_qs(query).get("dn", [])
    except ValueError:
        return []


def search_text(
    job_id: str,
    url: str | None,
    magnet: str | None,
    download_dir: str | None,
    names: Iterable[str],
) -> str:
    """The folded text of one job (see the module docstring)."""
    parts = [job_id]
    if url:
        parts.append(url)
    if magnet:
        parts.append(magnet)
        parts.extend(_magnet_names(magnet))
    if download_dir:
        parts.append(download_dir)
    parts.extend(names)
    return fold("\n".join(parts))
