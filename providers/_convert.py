"""The cattrs converter for every value type, at the edges (JSON bodies, database columns)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import cattrs
from cattrs.errors import BaseValidationError

from providers._job import FileTransfer

__all__ = ["converter", "structure_or_none"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=False)


def _bytes_to_text(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _text_to_bytes(value: Any, _: type) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from None


converter.register_unstructure_hook(bytes, _bytes_to_text)
converter.register_structure_hook(bytes, _text_to_bytes)


def _transfer_to_dict(transfer: FileTransfer) -> dict[str, Any]:
    # Ranges as lists, as JSON has them: what is written reads back equal.
    return {
        "size": transfer.size,
        "etag": transfer.etag,
        "last_modified": transfer.last_modified,
        "ranges": [[start, end] for start, end in transfer.ranges],
    }


converter.register_unstructure_hook(FileTransfer, _transfer_to_dict)


def structure_or_none(data: Any, cls: type[T]) -> T | None:
    """Structure ``data`` as ``cls``; None when it does not fit (for provider junk)."""
    try:
        return converter.structure(data, cls)
    except (BaseValidationError, TypeError, ValueError, KeyError, AttributeError):
        return None
