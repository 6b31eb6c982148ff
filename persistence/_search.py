"""The text a job is found by: what a person would type to find it, case-folded.

``search_text`` joins the job's id, its URL, its magnet (and the magnet's
``dn``, decoded), its download dir and its file names, one per line, folded with
``str.casefold`` so that a search folds the same way on SQLite and PostgreSQL
whatever their collation; a search folds its words the same way and looks for a
plain substring. JSON keys, escapes and torrent bytes are not in it, so that
``"url"`` or ``"priority"`` find nothing, and ``C:\\Films`` finds its job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs, urlsplit

from providers._torrent import magnet_params

__all__ = ["fold", "joined_search_text", "payload_search_text", "search_text"]


def fold(text: str) -> str:
    """``text`` as searched: case-folded, lone surrogates and NULs left out."""
    if text.isascii():  # job ids, most URLs and names: no surrogate, casefold is lower
        return (text.replace("\x00", "") if "\x00" in text else text).lower()
    return text.encode("utf-8", "ignore").decode("utf-8").replace("\x00", "").casefold()


def _magnet_names(magnet: str) -> list[str]:
    """The magnet's non-empty ``dn`` values, decoded (what ``parse_qs`` gives)."""
    try:  # the payload's own magnet splitter: no urlsplit for a plain magnet
        return [value for name, value in magnet_params(magnet) if name == "dn" and value]
    except ValueError:
        pass
    try:
        query = urlsplit(magnet).query
        return parse_qs(query).get("dn", [])
    except ValueError:
        return []


def payload_search_text(url: str | None, magnet: str | None, download_dir: str | None) -> str:
    """The folded part of a job's text its payload gives, each line after a newline
    (the same for every write of a job: cached with the payload's JSON)."""
    parts = [""]
    if url:
        parts.append(url)
    if magnet:
        parts.append(magnet)
        parts.extend(_magnet_names(magnet))
    if download_dir:
        parts.append(download_dir)
    return fold("\n".join(parts)) if len(parts) > 1 else ""


def search_text(
    job_id: str,
    url: str | None,
    magnet: str | None,
    download_dir: str | None,
    names: Iterable[str],
) -> str:
    """The folded text of one job (see the module docstring)."""
    return joined_search_text(job_id, payload_search_text(url, magnet, download_dir), list(names))


def joined_search_text(job_id: str, payload_part: str, names: Sequence[str]) -> str:
    """A job's text from its payload's part (``payload_search_text``, which the
    store keeps with the payload's JSON) and its file names."""
    if not names:
        return fold(job_id) + payload_part
    return fold(job_id) + payload_part + "\n" + fold("\n".join(names))
