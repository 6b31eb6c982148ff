"""BitTorrent identities: a strict bencode codec, info-hashes and names of torrents and magnets.

The decoder is strict about syntax (canonical integers and lengths, byte-string
dictionary keys, no duplicate keys, no trailing data) and safe on hostile input:
it is iterative with a nesting limit, and every step is bounded, so its cost is
linear in the input. It does accept dictionary keys out of sorted order, because
torrents made by buggy clients exist and the info-hash is taken from the raw
bytes anyway (which is also what every BitTorrent client does).

Decoded values are ``bytes``, ``int``, ``list`` and ``dict[bytes, ...]``; keys stay
bytes because nothing requires them to be UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "BencodeError",
    "bdecode",
    "bencode",
    "magnet_display_name",
    "magnet_info_hash",
    "torrent_info_hash",
    "torrent_name",
]

#: Deepest nesting accepted. Real torrents nest a few levels (a BEP 52 file tree
#: one per directory); far more than that is an attack on the stack, not a torrent.
MAX_DEPTH = 256

# Integers in torrents are sizes and timestamps. The bound keeps int() linear
# and below CPython's int/str conversion limit.
_MAX_INT_DIGITS = 256
_INT_LIMIT = 10**_MAX_INT_DIGITS
# A length beyond 20 digits cannot fit any real input.
_INT = re.compile(rb"i(-?(?:0|[1-9][0-9]{0,%d}))e" % (_MAX_INT_DIGITS - 1))
_LENGTH = re.compile(rb"(0|[1-9][0-9]{0,19}):")

_HEX_HASH = re.compile(r"[0-9a-fA-F]{40}")
_BASE32_HASH = re.compile(r"[A-Za-z2-7]{32}")
_BTIH = "urn:btih:"

_E, _L, _D, _I = b"eldi"


class BencodeError(ValueError):
    """Bytes that are not strict bencode, or a value that cannot be bencoded."""


class _DictFrame:
    """A dictionary being decoded: its items so far and a key waiting for its value."""

    __slots__ = ("items", "key", "key_offset")

    def __init__(self) -> None:
        self.items: dict[bytes, Any] = {}
        self.key: bytes | None = None
        self.key_offset = 0


def _decode_at(data: bytes, pos: int, depth: int = 0) -> tuple[Any, int]:
    """Decode the one value that starts at ``pos``; return it and the offset just past it.

    ``depth`` is how deep ``pos`` already is, so that the nesting limit holds for
    a caller that walks the outer levels itself.
    """
    n = len(data)
    stack: list[list[Any] | _DictFrame] = []
    while True:
        if pos >= n:
            raise BencodeError(f"unexpected end of data at offset {pos}")
        start = pos
        c = data[pos]
        top = stack[-1] if stack else None
        if isinstance(top, _DictFrame) and top.key is None and c != _E and not 0x30 <= c <= 0x39:
            raise BencodeError(f"dictionary key at offset {pos} is not a byte string")
        value: Any
        if c == _E:
            if top is None:
                raise BencodeError(f"unexpected 'e' at offset {pos}")
            stack.pop()
            pos += 1
            if isinstance(top, _DictFrame):
                if top.key is not None:
                    raise BencodeError(f"dictionary key at offset {top.key_offset} has no value")
                value = top.items
            else:
                value = top
        elif c in (_L, _D):
            if depth + len(stack) >= MAX_DEPTH:
                raise BencodeError(f"nesting deeper than {MAX_DEPTH} at offset {pos}")
            stack.append([] if c == _L else _DictFrame())
            pos += 1
            continue
        else:
            value, pos = _decode_scalar(data, pos)
        if not stack:
            return value, pos
        _attach(stack[-1], value, start)


def _decode_scalar(data: bytes, pos: int) -> tuple[int | bytes, int]:
    c = data[pos]
    if c == _I:
        match = _INT.match(data, pos)
        if match is None or match.group(1) == b"-0":
            raise BencodeError(f"invalid integer at offset {pos}")
        return int(match.group(1)), match.end()
    if 0x30 <= c <= 0x39:
        return _decode_string(data, pos)
    raise BencodeError(f"unexpected byte {bytes([c])!r} at offset {pos}")


def _decode_string(data: bytes, pos: int) -> tuple[bytes, int]:
    match = _LENGTH.match(data, pos)
    if match is None:
        raise BencodeError(f"invalid string length at offset {pos}")
    end = match.end() + int(match.group(1))
    if end > len(data):
        raise BencodeError(f"string at offset {pos} runs past the end of the data")
    return data[match.end() : end], end


def _attach(parent: list[Any] | _DictFrame, value: Any, offset: int) -> None:
    if isinstance(parent, list):
        parent.append(value)
    elif parent.key is None:
        if value in parent.items:
            raise BencodeError(f"duplicate dictionary key {value[:40]!r} at offset {offset}")
        parent.key = value
        parent.key_offset = offset
    else:
        parent.items[parent.key] = value
        parent.key = None


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"bencoded data must be bytes, not {type(data).__name__}")


def bdecode(data: bytes) -> Any:
    """Decode one bencoded value that spans all of ``data``.

    Raises ``BencodeError`` for anything malformed, for trailing bytes and for
    nesting deeper than ``MAX_DEPTH``.
    """
    data = _as_bytes(data)
    value, end = _decode_at(data, 0)
    if end != len(data):
        raise BencodeError(f"trailing data at offset {end}")
    return value


def bencode(value: Any) -> bytes:
    """Encode ``value``: bytes (str as UTF-8), int, list/tuple, dict with bytes or str keys.

    Dictionary keys are written in sorted order, as the format requires. Raises
    ``BencodeError`` for anything else (bool and float included, which bencode
    has no form for), for keys that collide once encoded, and for nesting deeper
    than ``MAX_DEPTH`` (which also catches a structure that contains itself).
    """
    chunks: list[bytes] = []
    _encode(value, chunks, 0)
    return b"".join(chunks)


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out += (b"%d:" % len(raw), raw)
    elif isinstance(value, str):
        raw = _utf8(value)
        out += (b"%d:" % len(raw), raw)
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= _INT_LIMIT:
            raise BencodeError(f"integer has more than {_MAX_INT_DIGITS} digits")
        out.append(b"i%de" % value)
    elif isinstance(value, list | tuple | dict):
        if depth >= MAX_DEPTH:
            raise BencodeError(f"nesting deeper than {MAX_DEPTH} (or a value containing itself)")
        if isinstance(value, dict):
            items: dict[bytes, Any] = {}
            for name, item in value.items():
                if isinstance(name, str):
                    key = _utf8(name)
                elif isinstance(name, bytes):
                    key = name
                else:
                    raise BencodeError(f"dictionary key must be bytes or str, not {_kind(name)}")
                if key in items:
                    raise BencodeError(f"dictionary key {key[:40]!r} given twice")
                items[key] = item
            out.append(b"d")
            for key in sorted(items):
                out += (b"%d:" % len(key), key)
                _encode(items[key], out, depth + 1)
        else:
            out.append(b"l")
            for item in value:
                _encode(item, out, depth + 1)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot bencode a {_kind(value)}")


def _kind(value: object) -> str:
    return type(value).__name__


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        raise BencodeError("text is not valid Unicode") from None


def _info_dict(data: bytes) -> tuple[dict[bytes, Any], int, int]:
    """The torrent's ``info`` dictionary and where its bytes start and end in ``data``.

    Walks the top-level dictionary itself (one pass over the input) so that the
    span of ``info`` comes out of the same parse that validates everything.
    """
    if not data or data[0] != _D:
        raise BencodeError("not a torrent: not a dictionary")
    keys: set[bytes] = set()
    found: tuple[Any, int, int] | None = None
    pos = 1
    while pos < len(data) and data[pos] != _E:
        if not 0x30 <= data[pos] <= 0x39:
            raise BencodeError(f"dictionary key at offset {pos} is not a byte string")
        key_offset = pos
        key, pos = _decode_string(data, pos)
        if key in keys:
            raise BencodeError(f"duplicate dictionary key {key[:40]!r} at offset {key_offset}")
        keys.add(key)
        value_start = pos
        value, pos = _decode_at(data, pos, depth=1)
        if key == b"info":
            found = (value, value_start, pos)
    if pos >= len(data):
        raise BencodeError(f"unexpected end of data at offset {pos}")
    if pos + 1 != len(data):
        raise BencodeError(f"trailing data at offset {pos + 1}")
    if found is None or not isinstance(found[0], dict):
        raise BencodeError("not a torrent: no 'info' dictionary")
    return found


@functools.lru_cache(maxsize=64)  # a job asks again at every step; torrents can be MBs
def torrent_info_hash(data: bytes) -> str:
    """The lower-case hex SHA-1 of the ``info`` dictionary's bytes exactly as found in ``data``.

    The bytes are sliced from the input, never re-encoded, so a torrent with keys
    out of order still gets the hash every client computes for it. Raises
    ``BencodeError`` when ``data`` is not a bencoded dictionary with an ``info``
    dictionary.
    """
    data = _as_bytes(data)
    _, start, end = _info_dict(data)
    # Used as an identifier (the BitTorrent v1 info-hash), not for security.
    return hashlib.sha1(data[start:end], usedforsecurity=False).hexdigest()


def torrent_name(data: bytes) -> str | None:
    """The torrent's suggested name (``name.utf-8`` preferred, else ``name``), or None.

    Raises ``BencodeError`` when ``data`` is not a torrent.
    """
    info, _, _ = _info_dict(_as_bytes(data))
    for key in (b"name.utf-8", b"name"):
        name = info.get(key)
        if isinstance(name, bytes) and name:
            return name.decode("utf-8", errors="replace")
    return None


@functools.lru_cache(maxsize=16384)  # read at validation, then by providers (names, trackers)
def magnet_params(magnet: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(magnet, str):
        raise TypeError(f"magnet must be str, not {type(magnet).__name__}")
    if magnet[:8].lower() == "magnet:?" and "#" not in magnet and magnet.isprintable():
        # What urlsplit would make of it (no fragment, no tab or newline to drop),
        # without its general-purpose work: every new job's magnet passes here.
        query = magnet[8:]
        if "%" in query or "+" in query:
            return tuple(parse_qsl(query, keep_blank_values=True))
        # Nothing to unquote: parse_qsl's split, without its per-field decoding.
        return tuple((name, value) for name, _, value in _fields(query))
    try:
        parts = urlsplit(magnet)
    except ValueError:
        raise ValueError("not a magnet link") from None
    if parts.scheme.lower() != "magnet" or parts.netloc or parts.path:
        raise ValueError("not a magnet link (expected magnet:?...)")
    return tuple(parse_qsl(parts.query, keep_blank_values=True))


def _fields(query: str) -> Iterator[tuple[str, str, str]]:
    return (field.partition("=") for field in query.split("&") if field)


@functools.lru_cache(maxsize=4096)  # asked at validation, submission and recovery
def magnet_info_hash(magnet: str) -> str:
    """The lower-case hex info-hash from the first ``xt=urn:btih:`` parameter of ``magnet``.

    Accepts 40 hex characters or 32 base32 characters (converted to hex). Raises
    ``ValueError`` when the magnet has no such parameter.
    """
    for name, value in magnet_params(magnet):
        if name != "xt" or value[: len(_BTIH)].lower() != _BTIH:
            continue
        digest = value[len(_BTIH) :]
        if _HEX_HASH.fullmatch(digest):
            return digest.lower()
        if _BASE32_HASH.fullmatch(digest):
            try:
                return base64.b32decode(digest.upper()).hex()
            except binascii.Error:  # pragma: no cover - the pattern admits only valid base32
                break
        raise ValueError("xt=urn:btih: must be followed by 40 hex or 32 base32 characters")
    raise ValueError("magnet has no xt=urn:btih: parameter")


def magnet_display_name(magnet: str) -> str | None:
    """The magnet's ``dn`` (display name) parameter, or None when absent or empty."""
    for name, value in magnet_params(magnet):
        if name == "dn" and value:
            return value
    return None
