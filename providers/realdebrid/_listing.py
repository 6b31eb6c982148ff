"""Walking ``/torrents`` and ``/downloads`` page by page.

Pages are ``limit`` items at increasing ``offset`` (never ``page`` as well: page
wins, [DOC]) until ``X-Total-Count``; an empty page ends the walk too, whether it
comes as ``[]`` or as 204 ([DECY]). Every page is revalidated with its ETag, so
an unchanged list costs a 304 and no parsing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from providers.realdebrid._api import Page, RealDebridApi

__all__ = ["pages", "scan_torrents"]


def pages(api: RealDebridApi, path: str, page_size: int) -> Iterator[Page]:
    """Every page of a list, by ``offset``, until ``X-Total-Count`` (or a short/empty page)."""
    offset = 0
    while True:
        page = api.page(path, offset, page_size)
        yield page
        offset += len(page.items)
        if not page.items or (page.total is not None and offset >= page.total):
            return
        if page.total is None and len(page.items) < page_size:
            return


def scan_torrents(
    api: RealDebridApi, ids: set[str], page_size: int
) -> tuple[dict[str, Mapping[str, Any]], bool, int]:
    """Page through /torrents until every id is found: (found, listing complete, pages read).

    "Complete" is False when a page came back empty before ``X-Total-Count`` was
    reached (a large account once got an empty page, unchained-android#329).
    """
    found: dict[str, Mapping[str, Any]] = {}
    count, seen, complete = 0, 0, True
    for page in pages(api, "/torrents", page_size):
        count += 1
        seen += len(page.items)
        for item in page.items:
            ident = str(item.get("id"))
            if ident in ids and ident not in found:
                found[ident] = item
        if len(found) == len(ids):
            break
        if not page.items and page.total is not None and seen < page.total:
            complete = False
    return found, complete, count
