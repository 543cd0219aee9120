"""Header text as mail clients show it: RFC 2047 encoded words, decoded leniently.

The stdlib decodes an encoded word only where RFC 2047 allows one (whitespace on
both sides, not inside quotes, 7-bit inside); mail clients decode what senders
actually write: words inside quoted display names (`"=?windows-1251?B?...?="`),
words glued to other text (`=?utf-8?q?agent?=@example.com` as a name), raw 8-bit
bytes inside a Q word, unpadded base64, a multi-byte character split over two
adjacent words. Whitespace between two encoded words is dropped, as RFC 2047
says. Raw 8-bit header bytes (RFC 6532, or a legacy charset with no label) go
through `charsets.Reader` like a body without a charset. Addresses are never
passed through here: an encoded word inside an addr-spec stays as written.
"""
from __future__ import annotations

import binascii
import email.header
import re

from .charsets import Reader

_WORD = re.compile(rb"=\?([^?\s]{1,60}?)(?:\*[A-Za-z0-9-]{1,20})?\?([bBqQ])\?([^?\r\n]{0,2000}?)\?=")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
_BREAK = re.compile(rb"[\r\n]+")
_SPACE = re.compile(rb"\s+")


def header_bytes(value: object) -> bytes:
    """The bytes of a header value as parsed by the stdlib's compat32 (raw 8-bit bytes
    are kept there as surrogate escapes; a `Header` holds them as unknown-8bit)."""
    if value is None:
        return b""
    if isinstance(value, email.header.Header):
        return b"".join(chunk if isinstance(chunk, bytes) else
                        chunk.encode("utf-8", "surrogateescape")
                        for chunk, _ in email.header.decode_header(value))
    return str(value).encode("utf-8", "surrogateescape")


def decode(value: object, reader: Reader | None = None, hint: str | None = None) -> str:
    """The text a mail client shows for header `value` (str, bytes or Header).
    `hint`: a charset the message declared elsewhere, tried for raw 8-bit bytes."""
    raw = value if isinstance(value, bytes) else header_bytes(value)
    raw = _BREAK.sub(b" ", _FOLD.sub(b"", raw))
    reader = reader or Reader()
    if b"=?" not in raw:
        return _literal(raw, reader, hint)
    out: list[str] = []
    pending: tuple[str, bytes] | None = None  # adjacent words of one charset, joined
    done = 0
    for match in _WORD.finditer(raw):
        decoded = _word_bytes(match.group(2), match.group(3))
        if decoded is None:  # not really an encoded word: leave it as text
            continue
        gap = raw[done:match.start()]
        if gap and not (pending is not None and gap.isspace()):
            if pending is not None:
                out.append(reader.text(pending[1], pending[0], hint))
                pending = None
            out.append(_literal(gap, reader, hint))
        charset = match.group(1).decode("ascii", "replace").lower()
        if pending is not None and pending[0] == charset:
            pending = (charset, pending[1] + decoded)
        else:
            if pending is not None:
                out.append(reader.text(pending[1], pending[0], hint))
            pending = (charset, decoded)
        done = match.end()
    if pending is not None:
        out.append(reader.text(pending[1], pending[0], hint))
    out.append(_literal(raw[done:], reader, hint))
    return "".join(out)


def _word_bytes(encoding: bytes, text: bytes) -> bytes | None:
    if encoding in b"qQ":
        return binascii.a2b_qp(text, header=True)
    compact = _SPACE.sub(b"", text)
    if not re.fullmatch(rb"[A-Za-z0-9+/]*={0,2}", compact):
        return None
    compact = compact.rstrip(b"=")
    if len(compact) % 4 == 1:  # one stray character cannot be a byte
        compact = compact[:-1]
    try:
        return binascii.a2b_base64(compact + b"=" * (-len(compact) % 4))
    except binascii.Error:
        return None


def _literal(data: bytes, reader: Reader, hint: str | None) -> str:
    if data.isascii():
        return data.decode("ascii")
    return reader.text(data, None, hint)
