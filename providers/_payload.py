"""What a caller asks for: ``StartJobPayload`` and its file selection.

Build these through ``parse_start_job_payload`` (``providers._validation``), which
checks every field and raises a ``ValidationError`` naming the bad one.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from providers._errors import ValidationError
from providers._torrent import magnet_info_hash, torrent_info_hash

__all__ = ["FileSelection", "SourceKind", "StartJobPayload"]

SourceKind = Literal["url", "magnet", "torrent"]

# The attrs validators below keep a directly built payload (an embedder's, or
# one read back from the store) inside the same bounds as a parsed one. They are
# the cheap checks; parse_start_job_payload adds the expensive ones (decoding a
# torrent) and turns raw mappings into these values.


def _int_in(low: int, high: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValidationError(
                attribute.name,
                f"{value!r} is not allowed",
                value=value,
                expected=f"an integer from {low} to {high}",
            )

    return check


def _of_type(kind: type, expected: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, kind):
            raise ValidationError(
                attribute.name,
                f"must be {expected}, not {type(value).__name__}",
                value=value,
                expected=expected,
            )

    return check


def _ints(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value
    ):
        raise ValidationError(
            f"select.{attribute.name}",
            "must be a list of file ids",
            value=value,
            expected="non-negative integers",
        )


def _texts(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(g, str) and g for g in value):
        raise ValidationError(
            f"select.{attribute.name}",
            "must be a list of patterns",
            value=value,
            expected="non-empty strings",
        )


@attrs.frozen
class FileSelection:
    """Which files of a job the caller wants. Empty means every file.

    The filters are combined with AND: a file is selected when its id is in
    ``ids`` (if any), its name matches one of ``globs`` (if any) and its size is at
    least ``min_size``; ``largest_only`` then keeps the largest of those.
    """

    ids: tuple[int, ...] = attrs.field(default=(), validator=_ints)
    globs: tuple[str, ...] = attrs.field(default=(), validator=_texts)
    min_size: int = attrs.field(default=0, validator=_int_in(0, 2**63 - 1))
    largest_only: bool = attrs.field(default=False, validator=_of_type(bool, "true or false"))

    @property
    def is_all(self) -> bool:
        """True when no filter is set (every file is wanted)."""
        return not (self.ids or self.globs or self.min_size or self.largest_only)


@attrs.frozen
class StartJobPayload:
    """A validated request: exactly one source (url, magnet or torrent) plus options."""

    url: str | None = attrs.field(default=None, validator=_of_type(str, "text"))
    magnet: str | None = attrs.field(default=None, validator=_of_type(str, "text"))
    torrent: bytes | None = attrs.field(
        default=None, repr=False, validator=_of_type(bytes, "the .torrent file's bytes")
    )
    select: FileSelection = attrs.field(
        factory=FileSelection, validator=_of_type(FileSelection, "a file selection")
    )
    download_dir: str | None = attrs.field(default=None, validator=_of_type(str, "a path"))
    connections: int = attrs.field(default=1, validator=_int_in(1, 16))
    only_if_cached: bool = attrs.field(default=False, validator=_of_type(bool, "true or false"))
    priority: int = attrs.field(default=0, validator=_int_in(-1000, 1000))
    #: ``info_hash`` once worked out (not part of the value: no init, eq or repr,
    #: and the converter leaves fields without init out).
    _info_hash: str | None = attrs.field(init=False, default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if (self.url is None) + (self.magnet is None) + (self.torrent is None) != 2:
            given = [n for n in ("url", "magnet", "torrent") if getattr(self, n) is not None]
            raise ValidationError(
                "payload",
                f"{len(given)} sources given ({', '.join(given) or 'none'})",
                expected="exactly one of url, magnet or torrent",
            )

    @property
    def kind(self) -> SourceKind:
        """Which source the payload carries."""
        if self.magnet is not None:
            return "magnet"
        if self.torrent is not None:
            return "torrent"
        return "url"

    @property
    def info_hash(self) -> str | None:
        """The lower-case hex BitTorrent info-hash of a magnet or torrent; None for a URL.

        Worked out once per payload: validation, submission and recovery all ask,
        and a bulk create of thousands of magnets outruns any shared cache.
        """
        known = self._info_hash
        if known is not None or self.url is not None:
            return known
        if self.magnet is not None:
            known = magnet_info_hash(self.magnet)
        elif self.torrent is not None:
            known = torrent_info_hash(self.torrent)
        object.__setattr__(self, "_info_hash", known)  # a cache, not a change of value
        return known

    @property
    def source_key(self) -> str:
        """What identifies this request at a provider: the info-hash, or the URL."""
        return self.info_hash or self.url or ""
