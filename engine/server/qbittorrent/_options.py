"""How the qBittorrent-compatible face is set up: credentials, paths, categories, *arr apps."""

from __future__ import annotations

from pathlib import Path

import attrs

__all__ = ["DEFAULT_API_VERSION", "ArrTarget", "CategoryOptions", "QbitOptions", "parse_version"]

#: The Web API version answered by default: new enough for ``content_path``
#: (2.6.1) and for every call of ARR.md, old enough that clients use the 4.x names.
DEFAULT_API_VERSION = "2.9.3"


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.9.3"`` -> ``(2, 9, 3)``; ValueError for anything else."""
    parts = text.strip().split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a version like 2.9.3")
    return tuple(int(p) for p in parts)


@attrs.frozen
class ArrTarget:
    """An *arr app that hears of failed downloads: its URL, API key and API path."""

    url: str
    api_key: str = attrs.field(repr=False)
    api_path: str = "/api/v3"

    def __repr__(self) -> str:
        return f"ArrTarget(url={self.url!r}, api_key='***', api_path={self.api_path!r})"


@attrs.frozen
class CategoryOptions:
    """A category set up in the config: where its items land, which provider takes
    them, and the *arr app told of their failures."""

    name: str
    save_path: Path | None = None
    provider: str | None = None
    arr: ArrTarget | None = None


@attrs.frozen
class QbitOptions:
    """The face's settings (the ``[qbittorrent]`` table).

    - ``username``/``password``: the login; with none, the daemon's API token is
      the password (any username), and with the daemon's auth off too, no login is
      needed at all (loopback only).
    - ``save_path``: where items without a category's path land (None: the first
      download root); every path must resolve inside a download root.
    - ``provider``: who takes items whose category names none (None: the engine's first).
    - ``prefix``: the face is also served under ``<prefix>/api/v2``.
    - ``api_version``: the Web API version answered; 2.11 or later switches the
      answers to qBittorrent 5's names (``stoppedUP``, ``stoppedDL``).
    - ``session_timeout``: seconds a login session lives without being used.
    - ``arr_from_login``: a login whose username is an http(s) URL names the *arr
      app (password: its API key) for categories without their own, as peers do.
    - ``arr_timeout``, ``arr_tries``, ``arr_backoff``: how a failure report is sent.
    """

    enabled: bool = True
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    save_path: Path | None = None
    provider: str | None = None
    prefix: str = ""
    api_version: str = DEFAULT_API_VERSION
    session_timeout: float = 3600.0
    categories: tuple[CategoryOptions, ...] = ()
    arr_from_login: bool = False
    arr_timeout: float = 10.0
    arr_tries: int = 5
    arr_backoff: float = 2.0

    @property
    def stopped_names(self) -> bool:
        """True when answering as Web API 2.11+ (qBittorrent 5: ``stopped*`` states)."""
        return parse_version(self.api_version) >= (2, 11)

    @property
    def app_version(self) -> str:
        """What ``app/version`` answers: a 4.x or 5.x version to match the API version."""
        return "v5.0.2" if self.stopped_names else "v4.6.7"

    def category(self, name: str) -> CategoryOptions | None:
        """The configured category ``name``, if the config has it."""
        for category in self.categories:
            if category.name == name:
                return category
        return None
