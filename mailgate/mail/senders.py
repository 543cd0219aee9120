"""Who sent a message, when From: is odd but a person can still read it. Pure.

In order, stopping at the first that gives one address:
1. From as parsed (mail-parser's address list);
2. From as written: an address in angle brackets with spaces or comments inside
   (`<john @ example.com>`, `<jdoe@machine(comment). example>`), or a bare
   address beside a name (`From: Test test@example.com`; of several written
   without commas, the first, as for a proper list);
3. when From holds no address at all: Sender, then Return-Path (both name one
   mailbox), then Reply-To — which nothing vouches for, so the sender is then
   marked not verified (`Sender.verified`).
A header block the stdlib stops reading early (a banner line before it, a first
line indented, `From  :` with a space before the colon, one stray line among the
headers) is repaired by `repair_headers` so that its From can be read at all.
Every way but the first leaves a `note` for the decision trace.
"""
from __future__ import annotations

import email.message
import re
from dataclasses import dataclass

from .headers import normalize_address, raw_headers
from .charsets import Reader
from .words import decode

_COMMENT = re.compile(r"\([^()]*\)")
_ANGLE = re.compile(r"<([^<>]{1,400})>")
_BARE = re.compile(r'(?:"[^"\s@]{1,64}"|[^\s<>"(),;:@]{1,64})@[^\s<>"(),;:@]{1,255}')
# header lines as the stdlib's feedparser knows them, and what it stops at
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_SPACED_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]+:")
_FROM_LINE = re.compile(rb"from[ \t]*:", re.IGNORECASE)
MAX_BANNER_LINES = 3
MAX_HEADER_LINES = 2000


@dataclass(frozen=True)
class Sender:
    name: str
    address: str | None
    via: str = "from"  # from | sender | return-path | reply-to
    note: str = ""  # how it was found, when not simply From
    verified: bool = True  # False: only Reply-To named it

    @property
    def usable(self) -> bool:
        return self.address is not None


def _clean(address: str) -> str | None:
    return normalize_address(re.sub(r"\s+", "", _COMMENT.sub("", address)))


def find_sender(msg: email.message.Message, from_pairs, reader: Reader,
                hint: str | None = None) -> Sender:
    """The sender of `msg`; `from_pairs` are mail-parser's (name, address) of From."""
    addresses = [(name, a) for name, address in from_pairs or []
                 if (a := normalize_address(address))]
    if addresses:
        return Sender(_name(addresses[0][0], reader, hint), addresses[0][1])
    written = " ".join(raw_headers(msg, "from"))
    found = _as_written(written, reader, hint)
    if found is not None:
        return found
    name = _name(written, reader, hint) if "@" not in written else ""
    for header, verified in (("sender", True), ("return-path", True), ("reply-to", False)):
        address = _single(msg, header)
        if address:
            what = "has no address" if written.strip() else "is missing"
            return Sender(name, address, header, f"From {what}; the address comes from "
                          f"{header.title()}" + ("" if verified else ", which nothing "
                                                 "verifies: sender not verified"), verified)
    return Sender(name, None)


def _as_written(written: str, reader: Reader, hint: str | None) -> Sender | None:
    """An address a person reads in the From header that the parser could not take."""
    text = written.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    angle = [a for m in _ANGLE.finditer(text) if (a := _clean(m.group(1)))]
    if len(set(angle)) == 1:
        name = text[:text.find("<")].strip().strip('"')
        return Sender(_name(name, reader, hint), angle[0],
                      note=f"From read as written: <{angle[0]}>")
    bare = [a for m in _BARE.finditer(_COMMENT.sub(" ", text))
            if (a := normalize_address(m.group()))]
    if bare:  # several authors without commas: the first, as for a proper list
        name = _BARE.sub(" ", text).strip(" \t,;\"'<>") if len(set(bare)) == 1 else ""
        return Sender(_name(name, reader, hint), bare[0],
                      note=f"From read as written: {bare[0]} without angle brackets"
                      + (f" (first of {len(set(bare))} addresses)" if len(set(bare)) > 1 else ""))
    return None


def _single(msg: email.message.Message, header: str) -> str | None:
    """The one address a header names, or None (absent, empty `<>`, or several)."""
    values = raw_headers(msg, header)
    if len(values) != 1:
        return None
    text = values[0].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    found = {a for m in _ANGLE.finditer(text) if (a := _clean(m.group(1)))} or \
        {normalize_address(m.group()) for m in _BARE.finditer(text)} - {None}
    return found.pop() if len(found) == 1 else None


def _name(name: str, reader: Reader, hint: str | None) -> str:
    return decode(name, reader, hint).strip().strip('"').strip() if name else ""


# -- header blocks the stdlib would stop reading early ----------------------------

def repair_headers(raw: bytes) -> tuple[bytes, str] | None:
    """(`raw` with its header block made readable, what was done), or None when
    nothing would give the message a From line."""
    lines = raw.split(b"\n", MAX_HEADER_LINES + 2 * MAX_BANNER_LINES)
    banner = _banner(lines)
    if banner is None:
        return None
    start, skipped = banner
    block = _header_block(lines, start)
    if block is None:
        return None
    header, fixes, has_from, end = block
    if not has_from or (not skipped and not fixes):
        return None
    notes = []
    if skipped:
        notes.append(f"skipped {len(skipped)} line(s) before the headers ({skipped[0]!r})")
    if fixes:
        notes.append(f"repaired {fixes} malformed header line(s)")
    return b"\n".join(header + lines[end:]) + (b"" if end < len(lines) else b"\n"), \
        "; ".join(notes)


def _banner(lines: list[bytes]) -> tuple[int, list[str]] | None:
    """(index of the first header line, the banner lines before it); None when more
    than MAX_BANNER_LINES stand before the headers."""
    start, skipped = 0, []
    while start < len(lines):
        line = lines[start].rstrip(b"\r")
        stripped = line.lstrip(b" \t")
        if _HEADER_LINE.match(stripped) or _SPACED_NAME.match(stripped):
            break
        if line.strip():
            if len(skipped) == MAX_BANNER_LINES:
                return None
            skipped.append(line.strip()[:60].decode("utf-8", "replace"))
        if start >= 2 * MAX_BANNER_LINES:
            return None
        start += 1
    return start, skipped


def _header_block(lines: list[bytes], start: int
                  ) -> tuple[list[bytes], int, bool, int] | None:
    """(the header lines from `start` as the stdlib can read them, how many were
    fixed, whether one is a From with an address, the index of the blank line that
    ends them); None when no end of the block is in sight."""
    header, fixes, has_from, end = [], 0, False, len(lines)
    for index in range(start, min(len(lines), start + MAX_HEADER_LINES)):
        line = lines[index]
        bare = line.rstrip(b"\r")
        if not bare.strip():
            end = index
            break
        if index == start and bare[:1] in b" \t":
            line, fixes = line.lstrip(b" \t"), fixes + 1  # an indented first line
        elif bare[:1] in b" \t":
            header.append(line)  # a continuation line
            continue
        elif not _HEADER_LINE.match(line):
            spaced = _SPACED_NAME.match(line)
            if spaced is None:
                fixes += 1  # a stray line among the headers: mail clients skip it
                continue
            line, fixes = spaced.group(1) + b":" + line[spaced.end():], fixes + 1
        has_from = has_from or bool(_FROM_LINE.match(line) and b"@" in line)
        header.append(line)
    if end == len(lines) and start + MAX_HEADER_LINES < len(lines):
        return None  # no end of the header block in sight
    return header, fixes, has_from, end
