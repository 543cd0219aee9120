"""What an attachment really is, from its bytes (the declared type is the sender's claim),
and what it would do when opened.

`examine()` names the type the bytes show and one hazard, if any:
- `bomb`: an archive whose directory promises far more than it holds (a zip bomb),
  or so many entries that listing them is the attack;
- `macros`: an Office or OpenDocument file carrying a macro project (VBA in OLE or
  OOXML, Excel 4.0 macro sheets, OpenDocument Basic/Scripts);
- `script`: a PDF with JavaScript, an automatic action (/OpenAction other than a
  page to show, /AA) or /Launch, or one whose compressed objects cannot be checked.

Every check is bounded whatever the bytes: archive directories are read before any
entry, no entry is inflated beyond a few KB, PDF object streams are inflated
within a byte budget, and text is judged on its first KB. Markup (HTML, SVG, XML,
MHTML) is named as such whatever the file is called, so that `page.html.` or HTML
sent as text/plain meets the allow-list as what a viewer would make of it.
"""
from __future__ import annotations

import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from io import BytesIO

OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
OLE2_BY_DECLARED = {
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.ms-outlook",
}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"RIFF", "image/webp"),  # refined below
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"\x1f\x8b", "application/gzip"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x78\x9f\x3e\x22", "application/ms-tnef"),
]

# Zip archives: the directory is checked before any entry is read.
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_DIRECTORY = 4 * 1024 * 1024  # bytes of central directory
MAX_INFLATED = 1024 * 1024 * 1024  # declared size of all entries together
MAX_RATIO = 100  # declared / compressed, for entries over RATIO_FROM bytes
RATIO_FROM = 1024 * 1024
PEEK = 4096  # bytes read of any one entry
CONTENT_TYPES_PEEK = 256 * 1024
# PDF object streams: how much we inflate to look inside them.
PDF_STREAM_BUDGET = 4 * 1024 * 1024
PDF_TOTAL_BUDGET = 32 * 1024 * 1024
PDF_MAX_OBJECT_STREAMS = 1000
PDF_MAX_ESCAPED_NAMES = 10_000


@dataclass(frozen=True)
class Sniffed:
    type: str
    hazard: str = ""  # "" | "bomb" | "macros" | "script"
    detail: str = ""


def sniff(data: bytes, declared: str = "") -> str:
    """The content type the bytes show; `declared` only breaks ties the bytes cannot."""
    return examine(data, declared).type


def examine(data: bytes, declared: str = "") -> Sniffed:
    head = data[:16]
    media = _media(data)
    if media:
        return Sniffed(media)
    if head.startswith(b"PK\x03\x04"):
        return _examine_zip(data)
    if head.startswith(OLE_MAGIC):
        kind = declared if declared in OLE2_BY_DECLARED else "application/x-ole-storage"
        return Sniffed(kind, *_ole_macros(data))
    for magic, kind in MAGIC:
        if head.startswith(magic):
            if magic == b"RIFF" and data[8:12] != b"WEBP":
                break
            if kind == "application/pdf":
                return Sniffed(kind, *pdf_scripts(data))
            return Sniffed(kind)
    if data and _looks_like_text(data):
        if b"%PDF-" in data[:1024]:  # readers find the header anywhere in the first KB
            return Sniffed("application/pdf", *pdf_scripts(data))
        return Sniffed(_text_type(data))
    return Sniffed("application/octet-stream")


# -- photos and video from phones ------------------------------------------------------

# ISO base media files (`ftyp` box first): the major brand names the format
_FTYP_BRANDS = {
    **dict.fromkeys((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"), "image/heic"),
    **dict.fromkeys((b"mif1", b"msf1"), "image/heif"),
    **dict.fromkeys((b"avif", b"avis"), "image/avif"),
    **dict.fromkeys((b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
                     b"dash", b"M4V ", b"M4A ", b"MSNV", b"f4v "), "video/mp4"),
    b"qt  ": "video/quicktime",
    **dict.fromkeys((b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"3ge6"), "video/3gpp"),
}
_EBML = b"\x1a\x45\xdf\xa3"


def _media(data: bytes) -> str:
    """The type of a HEIC/HEIF/AVIF photo or an MP4/QuickTime/3GP/WebM video, or ""."""
    if data[4:8] == b"ftyp":
        kind = _FTYP_BRANDS.get(data[8:12], "")
        if kind == "image/heif" and b"heic" in data[16:64]:  # compatible brands
            return "image/heic"
        return kind
    if data.startswith(_EBML):
        return "video/webm" if b"webm" in data[:64] else "video/x-matroska"
    return ""


# -- text and markup ---------------------------------------------------------------

def _looks_like_text(data: bytes) -> bool:
    sample = data[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is still text
        if exc.start >= len(sample) - 3:
            return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control == 0  # legacy 8-bit charsets


# Tags a browser renders as a page wherever they stand in the first KB.
_ACTIVE_TAG = re.compile(
    rb"<(?:(?:!doctype\s+html|html|head|body|script|iframe|frameset|object|embed|svg|math"
    rb"|meta|link|base|form|style|img)[\s>/]|a\s+href\s*=)", re.IGNORECASE)
# Any tag or comment as the first thing in the file.
_LEADING_TAG = re.compile(rb"\s*<(?:!--|![a-z]|[a-z][a-z0-9:-]*[\s>/])", re.IGNORECASE)
_XML_DECLARATION = re.compile(rb"\s*<\?xml[\s?]", re.IGNORECASE)
_SVG = re.compile(rb"<svg[\s>/]|http://www\.w3\.org/2000/svg", re.IGNORECASE)
_XHTML = re.compile(rb"<html[\s>/]|http://www\.w3\.org/1999/xhtml", re.IGNORECASE)
# what makes a browser run or render an XML file as a page: a style sheet (XSLT can
# write HTML with scripts), XHTML or SVG content, scripts; looked for in the first MB
_XML_ACTIVE = re.compile(rb"<\?xml-stylesheet|http://www\.w3\.org/1999/xhtml"
                         rb"|http://www\.w3\.org/2000/svg|http://www\.w3\.org/1999/XSL"
                         rb"|<(?:[a-z0-9_-]+:)?script[\s>/]", re.IGNORECASE)
XML_SCAN = 1024 * 1024
# A saved web page (.mht/.mhtml) is a MIME message: headers first.
_MIME_HEADERS = re.compile(rb"(?:[\w-]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)*"
                           rb"(?:content-type|mime-version|content-location)[ \t]*:",
                           re.IGNORECASE)


def _text_type(data: bytes) -> str:
    """text/plain (text/calendar for an invite), or the markup type a browser or viewer
    would make of the text."""
    sample = data[:1024].removeprefix(b"\xef\xbb\xbf")
    if _XML_DECLARATION.match(sample):
        if _SVG.search(sample):
            return "image/svg+xml"
        if _XHTML.search(sample) or _XML_ACTIVE.search(data, 0, XML_SCAN):
            return "application/xhtml+xml"
        return "application/xml"  # data: a tree to look at, nothing that runs
    if sample.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
        return "text/calendar"
    if _SVG.search(sample) and _LEADING_TAG.match(sample):
        return "image/svg+xml"
    if _ACTIVE_TAG.search(sample) or _LEADING_TAG.match(sample):
        return "text/html"
    if _MIME_HEADERS.match(sample):
        return "message/rfc822"
    return "text/plain"


# -- zip: OpenDocument, OOXML -------------------------------------------------------

def _zip_directory_problem(data: bytes) -> str:
    """Why the archive's directory alone is too much to read, from its end record."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or len(data) < end + 22:
        return ""
    entries, directory = struct.unpack_from("<HI", data, end + 10)
    zip64 = end - 20 - 56
    if zip64 >= 0 and data[zip64:zip64 + 4] == b"PK\x06\x06":
        entries, directory = struct.unpack_from("<QQ", data, zip64 + 32)
    if entries > MAX_ZIP_ENTRIES:
        return f"archive lists {entries} entries (more than {MAX_ZIP_ENTRIES})"
    if directory > MAX_ZIP_DIRECTORY:
        return f"archive directory of {directory} bytes"
    return ""


def _inflation_problem(infos: list[zipfile.ZipInfo]) -> str:
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            return (f"archive entry {info.filename[:80]!r} inflates to {info.file_size} bytes, "
                    f"{ratio} times its size (zip bomb)")
    if total > MAX_INFLATED:
        return f"archive inflates to {total} bytes (zip bomb)"
    return ""


def _peek(archive: zipfile.ZipFile, name: str, size: int = PEEK) -> bytes:
    with archive.open(name) as entry:
        return entry.read(size)


def _zip_kind(archive: zipfile.ZipFile, names: set[str]) -> str:
    if "mimetype" in names:
        kind = _peek(archive, "mimetype", 100).decode("ascii", "replace").strip()
        if kind.startswith("application/vnd.oasis.opendocument."):
            return kind
    if "[Content_Types].xml" in names:
        for prefix, kind in OOXML.items():
            if any(n.startswith(prefix) for n in names):
                return kind
    return "application/zip"


_OOXML_MACROS = re.compile(rb"vbaProject|macrosheet|(?<!binary\.)macroEnabled", re.IGNORECASE)


def _zip_macros(archive: zipfile.ZipFile, names: set[str], kind: str) -> str:
    lowered = {n.lower() for n in names}
    if kind.startswith("application/vnd.oasis.opendocument."):
        if any(n.startswith(("basic/", "scripts/")) for n in lowered):
            return "OpenDocument macros (Basic/Scripts)"
        return ""
    if any(n.endswith("vbaproject.bin") for n in lowered):
        return "VBA macro project (vbaProject.bin)"
    if any(n.startswith("xl/macrosheets/") for n in lowered):
        return "Excel 4.0 macro sheet"
    if "[Content_Types].xml" in names:
        match = _OOXML_MACROS.search(_peek(archive, "[Content_Types].xml", CONTENT_TYPES_PEEK))
        if match:
            return f"macro-enabled Office content type ({match.group().decode()})"
    return ""


def _examine_zip(data: bytes) -> Sniffed:
    problem = _zip_directory_problem(data)
    if problem:
        return Sniffed("application/zip", "bomb", problem)
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            infos = archive.infolist()
            problem = _inflation_problem(infos)
            if problem:
                return Sniffed("application/zip", "bomb", problem)
            names = {info.filename for info in infos}
            kind = _zip_kind(archive, names)
            macros = _zip_macros(archive, names, kind) if kind != "application/zip" else ""
            return Sniffed(kind, "macros" if macros else "", macros)
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError,
            EOFError, zlib.error, struct.error):
        return Sniffed("application/zip")


# -- OLE2 (Word, Excel, PowerPoint 97-2003) -------------------------------------------

def _ole_macros(data: bytes) -> tuple[str, str]:
    """("macros", what) when the compound file holds a VBA project or an Excel 4.0 macro
    sheet; a file olefile cannot read is reported too, since Office may read it."""
    import olefile

    try:
        with olefile.OleFileIO(BytesIO(data)) as ole:
            paths = [[p.lower() for p in path] for path in ole.listdir(streams=True,
                                                                        storages=True)]
            for path in paths:
                if len(path) >= 2 and path[-2] == "vba" and path[-1] in ("dir", "_vba_project"):
                    return "macros", "VBA macro project (" + "/".join(path[:-1]) + ")"
            if ["workbook"] in paths and _biff_macro_sheet(ole.openstream("Workbook").read()):
                return "macros", "Excel 4.0 macro sheet"
    except Exception as error:  # olefile raises what its parser meets; Office may differ
        return "macros", f"OLE file could not be checked for macros ({error.__class__.__name__})"
    return "", ""


def _biff_macro_sheet(stream: bytes) -> bool:
    """Does the workbook globals substream list a macro sheet (BoundSheet8 dt=1)?"""
    pos, end = 0, min(len(stream), 1024 * 1024)
    while pos + 4 <= end:
        kind, size = struct.unpack_from("<HH", stream, pos)
        if kind == 0x0085 and size >= 6 and stream[pos + 4 + 5] == 0x01:
            return True
        if kind == 0x000A:  # EOF of the globals substream
            return False
        pos += 4 + size
    return False


# -- PDF ---------------------------------------------------------------------------

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
