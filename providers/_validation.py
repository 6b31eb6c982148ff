"""Checking what callers send: ``parse_start_job_payload`` makes plain data a ``StartJobPayload``.

The dict form is the one in DESIGN.md (what ``create_job``, the control API and
the CLI take). Every problem is a ``ValidationError`` naming the dotted path of
the field (``select.min_size``, ``select.globs[1]``) and the form that would have
been accepted; nothing else escapes, whatever the input. A key whose value is
``None`` counts as absent (JSON clients send ``null`` for "not given").
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from providers._errors import ValidationError
from providers._payload import FileSelection, StartJobPayload
from providers._torrent import BencodeError, bdecode, magnet_info_hash

__all__ = [
    "MAX_MAGNET_LENGTH",
    "MAX_TORRENT_BYTES",
    "MAX_URL_BYTES",
    "parse_start_job_payload",
]

T = TypeVar("T")

MAX_URL_BYTES: Final = 8 * 1024
#: Magnets carry tracker lists and can be long, but not this long.
MAX_MAGNET_LENGTH: Final = 64 * 1024
MAX_TORRENT_BYTES: Final = 10 * 1024 * 1024
# Sizes and ids are stored in JSON/SQL columns; nothing real is bigger than this.
_MAX_INT64: Final = 2**63 - 1

_SOURCES: Final = ("url", "magnet", "torrent")
_OPTIONS: Final = ("select", "download_dir", "connections", "only_if_cached", "priority")
_SELECT_KEYS: Final = ("ids", "globs", "min_size", "largest_only")
_SHOW: Final = 100
_ALLOWED: Final = frozenset((*_SOURCES, *_OPTIONS))
_EVERY_FILE: Final = FileSelection()  # frozen, so one instance serves every payload

# Whitespace, C0/C1 controls and lone surrogates (which cannot even be encoded).
_BAD_CHARS: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATES: Final = re.compile(r"[\ud800-\udfff]")
_MAGNET_EXPECTED: Final = "magnet:?xt=urn:btih: followed by 40 hex or 32 base32 characters"
_TORRENT_EXPECTED: Final = "a bencoded dictionary with an info dictionary (bytes or base64 text)"


def parse_start_job_payload(raw: object) -> StartJobPayload:
    """Check ``raw`` and build the ``StartJobPayload`` it describes.

    ``raw`` is a mapping with exactly one of ``url``, ``magnet`` or ``torrent``
    plus the optional ``select``, ``download_dir``, ``connections``,
    ``only_if_cached`` and ``priority`` (see DESIGN.md), or a ``StartJobPayload``,
    returned as it is. Raises ``ValidationError`` naming the first bad field.
    """
    if isinstance(raw, StartJobPayload):
        return raw
    if not isinstance(raw, Mapping):
        raise ValidationError(
            "payload",
            f"must be a mapping, not {_type_name(raw)}",
            value=_clip(raw),
            expected="a mapping with one of url, magnet or torrent",
        )
    given: dict[str, Any] = {}
    allowed = _ALLOWED
    for key, value in raw.items():
        if key not in allowed:  # also catches keys that are not text
            raise ValidationError(
                _field_name(key),
                "unknown field",
                value=_clip(value),
                expected="one of " + ", ".join(sorted(allowed)),
            )
        if value is not None:
            given[key] = value

    sources = [name for name in _SOURCES if name in given]
    if not sources:
        raise ValidationError(
            "payload", "no source given", expected="exactly one of url, magnet or torrent"
        )
    if len(sources) > 1:
        raise ValidationError(
            sources[1],
            f"{' and '.join(sources)} given together",
            value=_clip(given[sources[1]]),
            expected="exactly one of url, magnet or torrent",
        )
    source = sources[0]
    url = _check_url(given[source]) if source == "url" else None
    magnet = _check_magnet(given[source]) if source == "magnet" else None
    torrent = _check_torrent(given[source]) if source == "torrent" else None

    payload = StartJobPayload(
        url=url,
        magnet=magnet,
        torrent=torrent,
        select=_optional(given, "select", _check_select, _EVERY_FILE),
        download_dir=_optional(given, "download_dir", _check_download_dir, None),
        connections=_optional(given, "connections", _check_connections, 1),
        only_if_cached=_optional(given, "only_if_cached", _check_only_if_cached, False),
        priority=_optional(given, "priority", _check_priority, 0),
    )
    # Kept in the payload now, while the source's parse is still in the caches.
    payload.info_hash  # noqa: B018
    return payload


def _check_connections(value: object) -> int:
    return _check_int("connections", value, 1, 16)


def _check_only_if_cached(value: object) -> bool:
    return _check_bool("only_if_cached", value)


def _check_priority(value: object) -> int:
    return _check_int("priority", value, -1000, 1000)


def _optional(given: Mapping[str, Any], key: str, check: Callable[[Any], T], default: T) -> T:
    return check(given[key]) if key in given else default


def _check_url(value: object) -> str:
    expected = f"an http or https URL with a host, at most {MAX_URL_BYTES} bytes, no whitespace"
    text = _check_str("url", value, expected)
    # Characters are at least one byte each, so this bounds the work before encoding.
    if len(text) > MAX_URL_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_URL_BYTES:
        raise ValidationError("url", "too long", value=_clip(text), expected=expected)
    if _BAD_CHARS.search(text):
        raise ValidationError(
            "url", "contains whitespace or control characters", value=_clip(text), expected=expected
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - parsing the port is what rejects "host:99999" and "host:x"
    except ValueError:
        raise ValidationError(
            "url", "not a valid URL", value=_clip(text), expected=expected
        ) from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError(
            "url", f"scheme {parts.scheme!r} not allowed", value=_clip(text), expected=expected
        )
    if not host:
        raise ValidationError("url", "has no host", value=_clip(text), expected=expected)
    return text


def _check_magnet(value: object) -> str:
    text = _check_str("magnet", value, _MAGNET_EXPECTED)
    if len(text) > MAX_MAGNET_LENGTH:
        raise ValidationError("magnet", "too long", value=_clip(text), expected=_MAGNET_EXPECTED)
    if _BAD_CHARS.search(text):
        raise ValidationError(
            "magnet",
            "contains whitespace or control characters",
            value=_clip(text),
            expected=_MAGNET_EXPECTED,
        )
    if text[:8].lower() != "magnet:?":
        raise ValidationError(
            "magnet", "not a magnet link", value=_clip(text), expected=_MAGNET_EXPECTED
        )
    try:
        magnet_info_hash(text)
    except ValueError as exc:
        raise ValidationError(
            "magnet", str(exc), value=_clip(text), expected=_MAGNET_EXPECTED
        ) from None
    return text


def _check_torrent(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    elif isinstance(value, str):
        # Line-wrapped base64 (as ``base64`` prints it) is common: whitespace is ignored.
        # Four characters encode three bytes; refuse oversized text before decoding it.
        if len(value) > (MAX_TORRENT_BYTES // 3 + 1) * 4 * 2:
            raise ValidationError(
                "torrent", "too large", value=_clip(value), expected=_TORRENT_EXPECTED
            )
        compact = "".join(value.split())
        try:
            data = base64.b64decode(compact.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise ValidationError(
                "torrent", "not valid base64", value=_clip(value), expected=_TORRENT_EXPECTED
            ) from None
    else:
        raise ValidationError(
            "torrent",
            f"must be bytes or base64 text, not {_type_name(value)}",
            value=_clip(value),
            expected=_TORRENT_EXPECTED,
        )
    if len(data) > MAX_TORRENT_BYTES:
        raise ValidationError(
            "torrent",
            f"{len(data)} bytes, more than {MAX_TORRENT_BYTES}",
            value=_clip(data),
            expected=f"at most {MAX_TORRENT_BYTES} bytes",
        )
    try:
        decoded = bdecode(data)
    except BencodeError as exc:
        raise ValidationError(
            "torrent", f"not bencoded: {exc}", value=_clip(data), expected=_TORRENT_EXPECTED
        ) from None
    if not isinstance(decoded, dict) or not isinstance(decoded.get(b"info"), dict):
        raise ValidationError(
            "torrent", "has no info dictionary", value=_clip(data), expected=_TORRENT_EXPECTED
        )
    return data


def _check_select(value: object) -> FileSelection:
    if isinstance(value, FileSelection):
        return value
    if not isinstance(value, Mapping):
        raise ValidationError(
            "select",
            f"must be a mapping, not {_type_name(value)}",
            value=_clip(value),
            expected="a mapping with ids, globs, min_size and/or largest_only",
        )
    given: dict[str, Any] = {}
    for key, item in value.items():
        if key not in _SELECT_KEYS:
            raise ValidationError(
                f"select.{_field_name(key)}",
                "unknown field",
                value=_clip(item),
                expected="one of " + ", ".join(sorted(_SELECT_KEYS)),
            )
        if item is not None:
            given[key] = item

    ids = tuple(
        _check_int(f"select.ids[{i}]", item, 0, _MAX_INT64)
        for i, item in enumerate(_check_list("select.ids", given.get("ids", ()), "integers"))
    )
    globs = tuple(
        _check_glob(f"select.globs[{i}]", item)
        for i, item in enumerate(_check_list("select.globs", given.get("globs", ()), "patterns"))
    )
    min_size = _check_int("select.min_size", given.get("min_size", 0), 0, _MAX_INT64)
    largest_only = _check_bool("select.largest_only", given.get("largest_only", False))
    return FileSelection(ids=ids, globs=globs, min_size=min_size, largest_only=largest_only)


def _check_download_dir(value: object) -> str:
    expected = "a non-empty path without NUL characters"
    text = _check_str("download_dir", value, expected)
    if not text:
        raise ValidationError("download_dir", "is empty", value=text, expected=expected)
    if "\x00" in text:
        raise ValidationError(
            "download_dir", "contains a NUL character", value=_clip(text), expected=expected
        )
    return text


def _check_list(field: str, value: object, of: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ValidationError(
            field,
            f"must be a list, not {_type_name(value)}",
            value=_clip(value),
            expected=f"a list of {of}",
        )
    return value


def _check_glob(field: str, value: object) -> str:
    expected = "a non-empty glob pattern such as *.mkv"
    text = _check_str(field, value, expected)
    if not text:
        raise ValidationError(field, "is empty", value=text, expected=expected)
    if _SURROGATES.search(text):
        raise ValidationError(field, "is not valid Unicode", value=_clip(text), expected=expected)
    return text


def _check_str(field: str, value: object, expected: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(
            field, f"must be text, not {_type_name(value)}", value=_clip(value), expected=expected
        )
    return value


def _check_int(field: str, value: object, low: int, high: int) -> int:
    expected = f"an integer from {low} to {high}"
    # bool is an int subclass, but True as a count or size is a caller's mistake.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(
            field,
            f"must be an integer, not {_type_name(value)}",
            value=_clip(value),
            expected=expected,
        )
    if not low <= value <= high:
        raise ValidationError(
            field, f"{_show(value)} is out of range", value=_clip(value), expected=expected
        )
    return int(value)


def _check_bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(
            field,
            f"must be true or false, not {_type_name(value)}",
            value=_clip(value),
            expected="a boolean",
        )
    return value


def _field_name(key: object) -> str:
    # Odd keys ("", "a\nb", 7) are shown quoted so that the field is always visible.
    if isinstance(key, str) and 0 < len(key) <= _SHOW and key.isprintable():
        return key
    return _show(key)


def _clip(value: object) -> object:
    """The value to keep on the error: small values as they are, big ones as a short summary."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**_SHOW else _show(value)
    if isinstance(value, str | bytes | bytearray) and len(value) <= _SHOW:
        return value
    return _show(value)


def _show(value: object) -> str:
    """A short, safe description: never calls a foreign ``__repr__``, never exceeds ~100 chars."""
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        # repr of a huge int is slow, and refused past CPython's digit limit.
        return repr(value) if abs(value) < 10**_SHOW else f"<int of {value.bit_length()} bits>"
    if isinstance(value, str | bytes | bytearray | memoryview):
        head = bytes(value[:_SHOW]) if isinstance(value, memoryview) else value[:_SHOW]
        text = repr(head)
        if len(value) > _SHOW or len(text) > _SHOW:
            # Escapes can make even a short value's repr long: the cut is on the repr.
            text = f"{text[:_SHOW]}... ({len(value)} long)"
        return text
    if isinstance(value, list | tuple | dict | set | frozenset):
        return f"<{_type_name(value)} of {len(value)} items>"
    return f"<{_type_name(value)}>"


def _type_name(value: object) -> str:
    return type(value).__name__[:_SHOW]
