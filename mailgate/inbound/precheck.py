"""Cheap limits checked on the raw bytes before the full parse.

Python's email parser can be driven into seconds and gigabytes by a long header
of encoded words or tens of thousands of parts; these checks look at byte
counts only (no decoding), so they cost microseconds and stop such messages
before any parser sees them. What slips past them still meets the worker's
time and memory bound.
"""
from __future__ import annotations

import re

from ..config import LimitSettings
from ..errors import MessageRejected

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_ADDRESS_HEADERS = re.compile(
    rb"^(?:to|cc|bcc|from|reply-to|resent-to|resent-cc|sender)[ \t]*:(.*(?:\r?\n[ \t].*)*)",
    re.IGNORECASE | re.MULTILINE)
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:", re.IGNORECASE | re.MULTILINE)


def header_block(raw: bytes) -> bytes:
    match = _HEADER_END.search(raw)
    return raw[: match.start()] if match else raw


def precheck(raw: bytes, limits: LimitSettings) -> None:
    """Raise MessageRejected(kind='limit') when a limit is exceeded."""
    if not raw.strip():
        raise MessageRejected("empty message", "unusable")
    if len(raw) > limits.max_message_size:
        raise MessageRejected(
            f"message of {len(raw)} bytes exceeds the limit of {limits.max_message_size}")
    headers = header_block(raw)
    if len(headers) > limits.max_header_bytes:
        raise MessageRejected(
            f"header block of {len(headers)} bytes exceeds {limits.max_header_bytes}")
    addresses = sum(m.group(1).count(b"@") for m in _ADDRESS_HEADERS.finditer(headers))
    if addresses > limits.max_addresses:
        raise MessageRejected(f"{addresses} addresses exceed the limit of {limits.max_addresses}")
    parts = len(_CONTENT_TYPE.findall(raw))
    if parts > limits.max_parts:
        raise MessageRejected(f"{parts} MIME parts exceed the limit of {limits.max_parts}")
