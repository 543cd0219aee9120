"""Would a PDF run something when opened or used? JavaScript, an automatic action
(/OpenAction other than a page to show, /AA) or /Launch, looked for in the file and
in its compressed object streams, which are inflated within a byte budget; an
object stream that cannot be read is reported too, since it could hide any of them.
Pure; `sniff.examine` calls `pdf_scripts` for bytes that show a PDF.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

# object streams: how much we inflate to look inside them
PDF_STREAM_BUDGET = 4 * 1024 * 1024
PDF_TOTAL_BUDGET = 32 * 1024 * 1024
PDF_MAX_OBJECT_STREAMS = 1000
PDF_MAX_ESCAPED_NAMES = 10_000

_PDF_DELIMITER = rb"(?=[\s()<>\[\]{}/%]|$)"
_PDF_RISKY = re.compile(rb"/(JavaScript|JS|AA|Launch|OpenAction)" + _PDF_DELIMITER)
_PDF_ESCAPED_NAME = re.compile(rb"/[^\s()<>\[\]{}/%#]*#[0-9A-Fa-f]{2}[^\s()<>\[\]{}/%]*")
_PDF_OBJSTM = re.compile(rb"/Type\s*/ObjStm" + _PDF_DELIMITER)
_PDF_FLATE_ONLY = re.compile(rb"/Filter\s*(?:/FlateDecode|\[\s*/FlateDecode\s*\])"
                             + _PDF_DELIMITER)
_PDF_FIRST = re.compile(rb"/First\s+([0-9]{1,9})")
_PDF_REF = re.compile(rb"([0-9]{1,10})\s+([0-9]{1,5})\s+R")
_PDF_GOTO = re.compile(rb"/S\s*/GoTo" + _PDF_DELIMITER)
RISKY_NAMES = {b"JavaScript", b"JS", b"AA", b"Launch", b"OpenAction"}


@dataclass
class _ObjectStream:
    text: bytes  # inflated
    first: int  # offset of the first object (after the number/offset pairs)


def pdf_scripts(data: bytes) -> tuple[str, str]:
    """("script", what) when the PDF would run something when opened or used.

    A bounded byte scan for the names that make a PDF act (/JavaScript, /JS, /AA,
    /Launch, and /OpenAction unless it only shows a page), also written with #xx
    escapes, in the file and in its Flate-compressed object streams, which are
    inflated within a budget. An object stream we cannot read (another filter, an
    encrypted file, over the budget) is reported too: it could hide any of them."""
    streams: list[_ObjectStream] = []
    problem = _inflate_object_streams(data, streams)
    for text in [data] + [s.text for s in streams]:
        found = _risky_name(text, data, streams)
        if found:
            return "script", found
    if problem:
        return "script", problem + ", so it could not be checked for scripts"
    return "", ""


def _inflate_object_streams(data: bytes, out: list[_ObjectStream]) -> str:
    """Append the inflated object streams to `out`; why one could not be read, if so."""
    budget = PDF_TOTAL_BUDGET
    for count, match in enumerate(_PDF_OBJSTM.finditer(data)):
        if count >= PDF_MAX_OBJECT_STREAMS:
            return f"more than {PDF_MAX_OBJECT_STREAMS} compressed object streams"
        start = data.rfind(b"obj", max(0, match.start() - 4096), match.start())
        stream = data.find(b"stream", match.end(), match.end() + 4096)
        if start < 0 or stream < 0 or not _PDF_FLATE_ONLY.search(data, start, stream):
            return "a compressed object stream uses a filter we do not read"
        first = _PDF_FIRST.search(data, start, stream)
        body = stream + 6 + (2 if data[stream + 6:stream + 8] == b"\r\n" else 1)
        inflater = zlib.decompressobj()
        try:
            text = inflater.decompress(data[body:body + PDF_STREAM_BUDGET],
                                       min(PDF_STREAM_BUDGET, budget))
        except zlib.error:
            return "a compressed object stream is encrypted or damaged"
        if inflater.unconsumed_tail or not inflater.eof:
            return "compressed object streams inflate beyond the budget"
        budget -= len(text)
        out.append(_ObjectStream(text, int(first.group(1)) if first else 0))
    return ""


def _risky_name(text: bytes, data: bytes, streams: list[_ObjectStream]) -> str:
    for match in _PDF_RISKY.finditer(text):
        name = match.group(1)
        if name != b"OpenAction" or not _opens_a_page(text, match.end(), data, streams):
            return f"PDF with /{name.decode()}"
    for count, match in enumerate(_PDF_ESCAPED_NAME.finditer(text)):
        if count >= PDF_MAX_ESCAPED_NAMES:
            return "PDF with too many escaped names to check"
        name = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                      match.group()[1:])
        if name in RISKY_NAMES:
            return f"PDF with /{name.decode('latin-1')} (written with escapes)"
    return ""


def _opens_a_page(text: bytes, pos: int, data: bytes, streams: list[_ObjectStream]) -> bool:
    """Is the /OpenAction value at `pos` a destination (a page and a view) or a GoTo?"""
    value = text[pos:pos + 2048].lstrip()
    ref = _PDF_REF.match(value)
    if ref:
        value = _object(int(ref.group(1)), int(ref.group(2)), data, streams)
    if value.startswith(b"["):
        return True
    if value.startswith(b"<<"):
        head = value[:2048]
        return _PDF_GOTO.search(head) is not None and not _PDF_RISKY.search(head)
    return False


def _object(number: int, generation: int, data: bytes, streams: list[_ObjectStream]) -> bytes:
    """The start of object `number`: in the file, or in an object stream's index."""
    match = re.search(rb"(?<![0-9])%d\s+%d\s+obj\b" % (number, generation), data)
    if match:
        return data[match.end():match.end() + 2048].lstrip()
    for stream in streams:
        pairs = stream.text[:min(stream.first, 65536)].split()
        offsets = dict(zip(pairs[0::2], pairs[1::2]))
        offset = offsets.get(b"%d" % number)
        if offset is not None and offset.isdigit():
            at = stream.first + int(offset)
            return stream.text[at:at + 2048].lstrip()
    return b""
