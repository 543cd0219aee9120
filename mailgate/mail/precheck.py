"""Cheap limits checked on the raw bytes before the full parse.

Python's email parser can be driven into seconds and gigabytes by a long header
of encoded words, tens of thousands of parts or a huge header inside a part;
these checks look at bytes only (no decoding), in a few passes of compiled
regular expressions, and stop such messages before any parser sees them:
- size (a `Truncated` prefix, which is all the pipe reader kept of a larger
  message, is over the limit by definition);
- the top-level header block, and the header block of every MIME part (including
  the headers of attached messages): each at most `max_header_bytes`, all part
  headers together at most PART_HEADERS_FACTOR times that;
- addresses in the address headers;
- MIME parts, counted both as `Content-Type:` lines and as boundary delimiter
  lines of the boundaries the message declares (parts need no Content-Type).
What slips past them still meets the worker's time and memory bound.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from ..errors import MessageRejected, Rejection

if TYPE_CHECKING:  # the parser workers import this module: keep them light
    from ..config import LimitSettings

PART_HEADERS_FACTOR = 4
MAX_DASH_LINES = 20_000  # lines starting with "--" looked at one by one
MAX_BOUNDARIES_SCANNED = 8  # boundaries searched for separately beyond that

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_ADDRESS_HEADERS = re.compile(
    rb"^(?:to|cc|bcc|from|reply-to|resent-to|resent-cc|sender)[ \t]*:(.*(?:\r?\n[ \t].*)*)",
    re.IGNORECASE | re.MULTILINE)
# Whole-message scans start at a newline, not at ^: a literal start is searched for
# at the speed of bytes.find, where ^ is tried at every position (15 times slower).
_CONTENT_TYPE = re.compile(rb"\ncontent-type[ \t]*:", re.IGNORECASE)
_CONTENT_TYPE_VALUE = re.compile(rb"\ncontent-type[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)",
                                 re.IGNORECASE)
_BARE_CR = re.compile(rb"\r(?!\n)")
_NOT_SPACE = re.compile(rb"\S")
# boundary="x", boundary=x, and the RFC 2231 forms boundary*=utf-8''x, boundary*0="x"
_BOUNDARY = re.compile(
    rb"""boundary(\*[0-9]*\*?)?[ \t]*=[ \t]*(?:"((?:[^"\\\r\n]|\\.){0,200})"|([^\s;"]{1,200}))""",
    re.IGNORECASE)
# The lines the stdlib's header parser takes as headers (feedparser.headerRE).
_HEADER_LINES = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[ \t])[^\n]*(?:\n|$))*")
_MESSAGE_TYPE = re.compile(rb"^content-type[ \t]*:[ \t]*message/", re.IGNORECASE | re.MULTILINE)
_BLANK_LINE = re.compile(rb"\r?\n")


class Truncated(bytes):
    """The first bytes of a message that was longer than the size limit: all that the
    pipe reader keeps of it (`size`: how many bytes the message had)."""

    size: int

    def __new__(cls, prefix: bytes, size: int) -> "Truncated":
        self = super().__new__(cls, prefix)
        self.size = size
        return self

    def __reduce__(self):
        return (Truncated, (bytes(self), self.size))


def header_block(raw: bytes) -> bytes:
    match = _HEADER_END.search(raw)
    return raw[: match.start()] if match else raw


def precheck(raw: bytes, limits: LimitSettings) -> None:
    """Raise MessageRejected (kind `Rejection.LIMIT`) when a limit is exceeded, and
    (`Rejection.UNUSABLE`) when the message is empty."""
    if isinstance(raw, Truncated):
        raise MessageRejected(
            f"over size limit: message of {raw.size} bytes exceeds the limit of "
            f"{limits.max_message_size}; truncated: only its first {len(raw)} bytes are kept")
    if _NOT_SPACE.search(raw) is None:
        raise MessageRejected("empty message", Rejection.UNUSABLE)
    if len(raw) > limits.max_message_size:
        raise MessageRejected(f"over size limit: message of {len(raw)} bytes exceeds the "
                              f"limit of {limits.max_message_size}")
    raw = _newlines(raw)
    headers = header_block(raw)
    if len(headers) > limits.max_header_bytes:
        raise MessageRejected(
            f"header block of {len(headers)} bytes exceeds {limits.max_header_bytes}")
    addresses = sum(m.group(1).count(b"@") for m in _ADDRESS_HEADERS.finditer(headers))
    if addresses > limits.max_addresses:
        raise MessageRejected(f"{addresses} addresses exceed the limit of {limits.max_addresses}")
    parts = len(_CONTENT_TYPE.findall(raw)) + (raw[:12].lower() == b"content-type")
    if parts > limits.max_parts:
        raise MessageRejected(f"{parts} MIME parts exceed the limit of {limits.max_parts}")
    _check_parts(raw, headers, limits)


def _newlines(raw: bytes) -> bytes:
    """`raw` with bare CRs as LFs: the parser ends lines at either, so must we."""
    if _BARE_CR.search(raw) is None:
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def boundaries(raw: bytes) -> tuple[set[bytes], set[bytes]]:
    """(boundaries, prefixes): every boundary a Content-Type header of the message
    declares, and the first pieces of those split into RFC 2231 continuations
    (boundary*0=...), which delimiter lines start with."""
    found, prefixes = set(), set()
    first = _CONTENT_TYPE_VALUE.match(b"\n" + header_block(raw))  # the very first line
    for header in ([first] if first else []) + list(_CONTENT_TYPE_VALUE.finditer(raw)):
        for match in _BOUNDARY.finditer(header.group(1)):
            star, quoted, token = match.groups()
            value = re.sub(rb"\\(.)", rb"\1", quoted) if quoted is not None else token
            if star and star.endswith(b"*") and b"''" in value:  # charset'language'value
                value = unquote_to_bytes(value.split(b"''", 1)[1])
            (prefixes if star and star[1:2].isdigit() else found).add(value.rstrip())
    return found, prefixes


def _check_parts(raw: bytes, top: bytes, limits: LimitSettings) -> None:
    """Count the parts by their delimiter lines and measure each part's header block
    (and that of a message attached as the whole body)."""
    total = 0
    if _MESSAGE_TYPE.search(top):
        blank = _HEADER_END.match(raw, len(top))
        total += _header_lines(raw, blank.end() if blank else len(raw), len(raw), 0, limits)
    declared, prefixes = boundaries(raw)
    if declared or prefixes:
        delimiters = [p for p, _ in delimiter_lines(raw, declared, prefixes, limits.max_parts)]
        for number, (start, end) in enumerate(zip(delimiters, delimiters[1:] + [len(raw)])):
            newline = raw.find(b"\n", start + 1, end)
            total += _header_lines(raw, end if newline < 0 else newline + 1, end, number + 1,
                                   limits)
    if total > PART_HEADERS_FACTOR * limits.max_header_bytes:
        raise MessageRejected(f"MIME part headers of {total} bytes in all exceed "
                              f"{PART_HEADERS_FACTOR * limits.max_header_bytes}")


def delimiter_lines(raw: bytes, declared: set[bytes], prefixes: set[bytes],
                    max_parts: int) -> list[tuple[int, str]]:
    """(where, "open" | "close") of the delimiter lines, in order (`where`: the newline
    before the line); raise when more than `max_parts` open a part. Lines that start
    with "--" are found at the speed of bytes.find: all of them when there are few,
    else those of each boundary."""
    if raw.count(b"\n--") <= MAX_DASH_LINES:
        needles = [b"\n--"]
    elif len(declared) + len(prefixes) <= MAX_BOUNDARIES_SCANNED:
        needles = [b"\n--" + b for b in declared | prefixes]
    else:
        raise MessageRejected(f"{len(declared) + len(prefixes)} multipart boundaries and more "
                              f"than {MAX_DASH_LINES} lines that start with '--'")
    found: dict[int, str] = {}
    parts = looked = 0
    for needle in needles:
        position = raw.find(needle)
        while position >= 0:
            looked += 1
            if looked > MAX_DASH_LINES:
                raise MessageRejected(f"more than {MAX_DASH_LINES} lines that start with "
                                      "'--' and a boundary")
            kind = _delimiter(raw[position + 3:position + 259], declared, prefixes)
            if kind and position not in found:
                found[position] = kind
                parts += kind == "open"
                if parts > max_parts:
                    raise MessageRejected(f"more than {max_parts} MIME parts "
                                          "(counted by their boundaries)")
            position = raw.find(needle, position + 1)
    return sorted(found.items())


def _delimiter(line: bytes, declared: set[bytes], prefixes: set[bytes]) -> str:
    """"open" or "close" when `line` (after its "--") is a delimiter line, else ""."""
    line = line.split(b"\n", 1)[0].rstrip(b" \t\r")
    if line in declared or (prefixes and line.startswith(tuple(prefixes))):
        return "open"
    if line.endswith(b"--") and line[:-2] in declared:
        return "close"  # it ends the part before it
    return ""


def _header_lines(raw: bytes, start: int, end: int, number: int, limits: LimitSettings) -> int:
    """Bytes of the header lines from `start` (a part's headers, or an attached
    message's), and of the headers of a message attached in those, up to `end`."""
    size = 0
    for _ in range(limits.max_depth + 1):  # message/rfc822 inside message/rfc822 ...
        limit = limits.max_header_bytes
        block = _HEADER_LINES.match(raw, start, min(end, start + limit + 1))
        length = block.end() - start
        if length > limit:
            where = f"MIME part {number}" if number else "the attached message"
            raise MessageRejected(f"header block of more than {limit} bytes in {where}")
        size += length
        if not _MESSAGE_TYPE.search(raw, start, block.end()):
            break
        blank = _BLANK_LINE.match(raw, block.end(), end)
        if blank is None:
            break
        start = blank.end()
    return size
