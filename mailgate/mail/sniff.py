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
The type is read here; archives (`archives.py`), OLE2 files (`ole.py`) and PDFs
(`pdf.py`) are looked into by their own modules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .archives import examine_zip
from .ole import ole_macros
from .pdf import pdf_scripts

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


@dataclass(frozen=True)
class Sniffed:
    type: str
    hazard: str = ""  # "" | "bomb" | "macros" | "script"
    detail: str = ""


def examine(data: bytes, declared: str = "") -> Sniffed:
    """The type the bytes show (`declared` only breaks ties the bytes cannot) and the
    hazard, if any, of opening them."""
    head = data[:16]
    media = _media(data)
    if media:
        return Sniffed(media)
    if head.startswith(b"PK\x03\x04"):
        return Sniffed(*examine_zip(data))
    if head.startswith(OLE_MAGIC):
        kind = declared if declared in OLE2_BY_DECLARED else "application/x-ole-storage"
        return Sniffed(kind, *ole_macros(data))
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
