"""Large base64 file bodies kept out of the stdlib's parser and read from the raw bytes.

The stdlib's parser walks a body line by line in Python: 0.9 s and five times its
size for a 24 MB attachment. A file body (a leaf part, not text, base64) of
SET_ASIDE_FROM bytes or more is found between the delimiter lines of the
boundaries the message declares (base64 has no "-", so no such line can be inside
one) and replaced by a placeholder line; the parser sees the rest, and `SetAside`
reads each such body straight from the raw bytes when the walk asks for it.
"""
from __future__ import annotations

import binascii
import email.message
import re
from dataclasses import dataclass

from .precheck import boundaries, delimiter_lines

SET_ASIDE_FROM = 1024 * 1024  # base64 bodies this large skip the stdlib's line-by-line parse
_PLACEHOLDER = "mailgate-set-aside-%d"
_PLACEHOLDER_LINE = re.compile(r"\s*mailgate-set-aside-([0-9]{1,4})\s*\Z")
_PLACEHOLDER_BYTES = re.compile(rb"mailgate-set-aside-([0-9]{1,4})")
_PART_HEADERS_END = re.compile(rb"\r?\n\r?\n")
_BASE64 = re.compile(rb"^content-transfer-encoding[ \t]*:[ \t]*base64[ \t]*\r?$",
                     re.IGNORECASE | re.MULTILINE)
_NOT_A_FILE = re.compile(rb"^content-type[ \t]*:[ \t]*(?:multipart|message|text)/",
                         re.IGNORECASE | re.MULTILINE)


@dataclass
class SetAside:
    """The raw message and the byte ranges of the bodies set aside in it."""

    raw: bytes
    ranges: list[tuple[int, int]]

    def payload(self, part: email.message.Message) -> bytes:
        """The decoded bytes of a leaf part; a body set aside is decoded from `raw`."""
        payload = part.get_payload()
        placeholder = _PLACEHOLDER_LINE.match(payload) if isinstance(payload, str) else None
        if placeholder and int(placeholder.group(1)) < len(self.ranges):
            start, end = self.ranges[int(placeholder.group(1))]
            return binascii.a2b_base64(memoryview(self.raw)[start:end])
        try:
            return part.get_payload(decode=True) or b""
        except Exception:  # a transfer encoding the stdlib trips over: the bytes as sent
            return str(payload).encode("utf-8", "surrogateescape")

    def serialize(self, part: email.message.Message) -> bytes:
        """A message part's bytes (a forwarded .eml), with the bodies set aside put back."""
        try:
            data = part.as_bytes()
        except Exception:  # what the generator cannot write back: the text we have
            data = str(part).encode("utf-8", "surrogateescape")
        if not self.ranges:
            return data
        return _PLACEHOLDER_BYTES.sub(
            lambda m: self.raw[slice(*self.ranges[int(m.group(1))])]
            if int(m.group(1)) < len(self.ranges) else m.group(), data)


def set_aside_large_bodies(raw: bytes, max_parts: int) -> tuple[bytes, SetAside]:
    """(`raw` with each large base64 file body replaced by a placeholder line, where
    those bodies are in `raw`)."""
    declared, _ = boundaries(raw)
    if len(raw) < SET_ASIDE_FROM or not declared:
        return raw, SetAside(raw, [])
    lines = delimiter_lines(raw, declared, set(), max_parts)
    pieces, ranges, done = [], [], 0
    for (start, kind), (end, _) in zip(lines, lines[1:]):
        if kind != "open" or end - start < SET_ASIDE_FROM:
            continue
        line_end = raw.find(b"\n", start + 1, end)
        headers = _PART_HEADERS_END.search(raw, line_end, end) if line_end > 0 else None
        if headers is None or end - headers.end() < SET_ASIDE_FROM:
            continue
        block = raw[start:headers.start()]
        if _BASE64.search(block) and not _NOT_A_FILE.search(block):
            pieces += [raw[done:headers.end()], (_PLACEHOLDER % len(ranges)).encode()]
            ranges.append((headers.end(), end))
            done = end
    if not ranges:
        return raw, SetAside(raw, [])
    return b"".join(pieces + [raw[done:]]), SetAside(raw, ranges)
