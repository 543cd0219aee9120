"""Uuencoded files: `begin 644 name` … `end` blocks in a body, and parts sent with
`Content-Transfer-Encoding: x-uuencode`. Pure and bounded: one pass over the lines,
at most MAX_BLOCKS files per body.

The stdlib's `uu` module is deprecated (gone in Python 3.13) and the email package
hands back the still-encoded text when a block is damaged; this decoder keeps
every line it can read, as the classic `uudecode` tools do.
"""
from __future__ import annotations

import binascii
import re

MAX_BLOCKS = 50
_BEGIN = re.compile(r"^begin ([0-7]{3,4}) ([^\r\n]{1,500}?)[ \t]*\r?$", re.MULTILINE)
_END = re.compile(r"^end[ \t]*\r?(?:\n|\Z)", re.MULTILINE)


def _line(line: str) -> bytes:
    """One encoded line; damaged lines (trailing garbage, missing padding) as far as
    they go, like uu.decode's workaround."""
    data = line.rstrip("\r\n").encode("ascii", "replace")
    if not data:
        return b""
    try:
        return binascii.a2b_uu(data)
    except binascii.Error:
        length = (((data[0] - 32) & 63) * 4 + 5) // 3
        try:
            return binascii.a2b_uu(data[:length])
        except binascii.Error:
            return b""


def decode_block(lines: list[str]) -> bytes:
    return b"".join(_line(line) for line in lines)


def extract(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """(`text` without its uuencoded blocks, [(file name, bytes)] in order). A block
    without its `end` line is decoded to the end of the text."""
    files: list[tuple[str, bytes]] = []
    kept: list[str] = []
    done = 0
    for begin in _BEGIN.finditer(text):
        if begin.start() < done:
            continue
        if len(files) >= MAX_BLOCKS:
            break
        end = _END.search(text, begin.end())
        stop = end.start() if end else len(text)
        files.append((begin.group(2).strip(), decode_block(text[begin.end():stop].split("\n"))))
        kept.append(text[done:begin.start()])
        done = end.end() if end else len(text)
    if not files:
        return text, []
    kept.append(text[done:])
    return "".join(kept), files


def decode_part(payload: str) -> tuple[str, bytes] | None:
    """(file name, bytes) of a part whose transfer encoding is uuencode; None when no
    `begin` line is there."""
    _, files = extract(payload)
    return files[0] if files else None
