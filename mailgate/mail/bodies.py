"""The text, HTML and files of a parsed message, read part by part as a mail client would.

One walk over the stdlib's compat32 tree (see `tree.py`), decoding every text
part's bytes ourselves (`charsets.Reader`), because mail-parser reads them with
the declared charset and errors="ignore" (ISO-2022-JP stays escape sequences,
GB2312 loses what GBK added). Decisions a reader would make:
- of a multipart/alternative, the plain part is the text unless it is a stub
  (a signature, "see the HTML version") next to an HTML part that says far more;
- a multipart part without a boundary is read as the text it is;
- text parts other than plain and HTML (CSV, calendar, vCard) are files, named
  from their type when unnamed (`attachment-1.csv`), never random letters; they
  stand in for the text only when the message has no other;
- a forwarded message (message/rfc822) is kept whole as a file (.eml) and its
  text is shown after a "Forwarded message" block with its main headers;
- uuencoded blocks in a text body, and x-uuencode parts, become files.
Pure; the depth of the tree was bounded before this runs.
"""
from __future__ import annotations

import email.message
import email.policy
import mimetypes
import re
from dataclasses import dataclass, field

from . import uudecode, words
from .charsets import Reader
from .htmltext import html_to_text, simple_text
from .tree import with_boundary_found

# extensions for unnamed parts; anything else asks `mimetypes`
EXTENSIONS = {
    "text/plain": "txt", "text/csv": "csv", "text/calendar": "ics", "text/html": "html",
    "text/x-vcard": "vcf", "text/vcard": "vcf", "text/xml": "xml", "application/xml": "xml",
    "application/json": "json", "message/rfc822": "eml", "text/rfc822-headers": "txt",
    "image/jpeg": "jpg", "image/pjpeg": "jpg", "image/png": "png", "image/x-png": "png",
    "image/gif": "gif", "image/webp": "webp", "image/heic": "heic", "application/pdf": "pdf",
    "application/zip": "zip", "video/mp4": "mp4", "video/quicktime": "mov",
    "video/webm": "webm", "application/pgp-signature": "asc", "text/enriched": "txt",
    "application/pkcs7-signature": "p7s", "application/ms-tnef": "dat",
    "application/octet-stream": "bin", "text/rtf": "rtf", "application/rtf": "rtf",
}
UUENCODE = {"x-uuencode", "uuencode", "x-uue", "uue"}
# text alternatives that are files for the reader (an Outlook invite); other text
# alternatives (text/enriched, text/watch-html) only say the same again
FILE_ALTERNATIVES = {"text/calendar"}
FORWARDED_HEADERS = ("From", "Date", "Subject", "To", "Cc")
MAX_FORWARDED_TEXT = 200_000
# bytes of one text part read as text (the ticket keeps 2M characters): a 24 MB body
# is not decoded, searched and copied whole
MAX_TEXT_BYTES = 8 * 1024 * 1024
_WORD_CHARS = re.compile(r"\w+")


@dataclass
class File:
    """An attachment as found in the walk; `files.py` examines and cleans it."""

    name: str
    content_type: str  # declared
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass
class Found:
    pieces: list[tuple[str, str]] = field(default_factory=list)  # ("plain" | "html", text)
    html: list[str] = field(default_factory=list)  # HTML bodies as sent, for the stored HTML
    files: list[File] = field(default_factory=list)
    other_text: list[str] = field(default_factory=list)  # unnamed CSV, calendar...: last resort

    def text(self, read_html=html_to_text) -> str:
        """The ticket text: every body piece in order (HTML read as text by `read_html`);
        failing that, the first other text part."""
        text = "\n".join(t if kind == "plain" else read_html(t) for kind, t in self.pieces)
        if not text.strip():
            text = next((t for t in self.other_text if t.strip()), text)
        return text.replace("\x00", "")  # PostgreSQL refuses NUL in text


class Walker:
    """Walks one message; `payload_bytes` reads a leaf's decoded bytes (`SetAside`
    knows the bodies set aside), `serialize` gives a message part's bytes."""

    def __init__(self, reader: Reader, hint: str | None, payload_bytes, serialize):
        self.reader = reader
        self.hint = hint
        self.payload_bytes = payload_bytes
        self.serialize = serialize
        self.unnamed = 0

    def walk(self, part: email.message.Message, found: Found, in_report: bool = False,
             alternative: bool = False) -> None:
        kind = part.get_content_type()
        payload = part.get_payload()
        if isinstance(payload, list):
            if kind == "message/rfc822" or (kind.startswith("message/") and
                                            _disposition(part) == "attachment"):
                self._forwarded(part, found, show=not in_report)
            elif kind == "message/delivery-status":
                return  # header blocks about a delivery; the guard reads them
            elif kind == "multipart/alternative":
                self._alternative(part, found, in_report)
            else:
                for child in payload:
                    if isinstance(child, email.message.Message):
                        self.walk(child, found, in_report or kind == "multipart/report")
            return
        self._leaf(part, kind, found, alternative)

    # -- containers ------------------------------------------------------------

    def _alternative(self, part, found: Found, in_report: bool) -> None:
        options = []
        for child in part.get_payload():
            if isinstance(child, email.message.Message):
                option = Found()
                self.walk(child, option, in_report, alternative=True)
                options.append(option)
        chosen = choose_alternative(options)
        for option in options:
            found.html.extend(option.html)
            found.files.extend(option.files)
            found.other_text.extend(option.other_text)
        if chosen is not None:
            found.pieces.append(("plain", chosen))

    def _forwarded(self, part, found: Found, show: bool) -> None:
        inner = next((p for p in part.get_payload() if isinstance(p, email.message.Message)),
                     None)
        if inner is None:
            return
        name = self.filename(part) or self._unnamed("message/rfc822")
        found.files.append(File(name, "message/rfc822", self.serialize(inner)))
        if not show:
            return
        inside = Found()
        collected = Walker(self.reader, self.hint, self.payload_bytes, self.serialize)
        collected.walk(inner, inside)
        lines = ["---------- Forwarded message ----------"]
        for header in FORWARDED_HEADERS:
            for value in inner.get_all(header) or []:
                lines.append(f"{header}: " + " ".join(
                    words.decode(value, self.reader, self.hint).split()))
        found.pieces.append(("plain", "\n".join(lines) + "\n\n" +
                             inside.text()[:MAX_FORWARDED_TEXT]))

    # -- leaves ----------------------------------------------------------------

    def _leaf(self, part, kind: str, found: Found, alternative: bool = False) -> None:
        name = self.filename(part)
        disposition = _disposition(part)
        encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        if kind.startswith("multipart/"):  # its boundary is missing or is not the one used
            inner = with_boundary_found(part)
            if inner is not None:
                self.walk(inner, found, alternative=kind == "multipart/alternative")
                return
            kind = "text/plain"  # the body is what there is
        data = self.payload_bytes(part)
        if encoding in UUENCODE:
            decoded = uudecode.decode_part(str(part.get_payload(decode=False)))
            if decoded is not None:
                name = name or decoded[0]
                data = decoded[1]
        is_body = kind in ("text/plain", "text/html") and disposition != "attachment" and \
            (not name or disposition == "inline") and encoding not in UUENCODE
        if is_body:
            self._body(part, kind, data, found)
            if not name:
                return
        elif kind.startswith("text/") and not name and disposition != "attachment":
            found.other_text.append(self.reader.text(_cut(data), part.get_content_charset(None),
                                                     self.hint))
            if alternative and kind not in FILE_ALTERNATIVES:
                return  # text/enriched, text/watch-html: the same text once more
        content_id = part.get("Content-ID")
        found.files.append(File(
            name or self._unnamed(kind), kind, data,
            content_id=str(content_id) if content_id else None,
            inline=disposition == "inline" or (content_id is not None and
                                               disposition != "attachment")))

    def _body(self, part, kind: str, data: bytes, found: Found) -> None:
        """A text/plain or text/html body: its text, and the uuencoded files in it."""
        text = self.reader.text(_cut(data), part.get_content_charset(None), self.hint)
        if kind == "text/html":
            found.html.append(text)
            found.pieces.append(("html", text))
            return
        text, files = uudecode.extract(text)
        found.pieces.append(("plain", text))
        for file_name, file_data in files:
            found.files.append(File(file_name or self._unnamed(""), "application/octet-stream",
                                    file_data))

    def filename(self, part) -> str:
        view = _raw_view(part)
        for param, header in (("filename", "content-disposition"), ("name", "content-type")):
            value = view.get_param(param, header=header)
            if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded latin-1)
                charset, _, text = value
                raw = str(text).encode("latin-1", "surrogateescape")
                return self.reader.text(raw, charset or None, self.hint).strip()
            if value:
                return words.decode(str(value), self.reader, self.hint).strip()
        return ""

    def _unnamed(self, kind: str) -> str:
        self.unnamed += 1
        extension = EXTENSIONS.get(kind) or (mimetypes.guess_extension(kind) or ".bin")[1:]
        return f"attachment-{self.unnamed}.{extension}"


class _RawValues(email.policy.Compat32):
    """compat32 that hands header values back as parsed: raw 8-bit bytes stay surrogate
    escapes instead of becoming a Header that prints them as U+FFFD."""

    def header_fetch_parse(self, name, value):
        return value


_RAW = _RawValues()


def _raw_view(part: email.message.Message) -> email.message.Message:
    """The part's Content-Type and Content-Disposition, for reading their parameters."""
    view = email.message.Message(policy=_RAW)
    for name, value in part.raw_items():
        if name.lower() in ("content-type", "content-disposition"):
            view[name] = value
    return view


def _cut(data: bytes) -> bytes:
    """At most MAX_TEXT_BYTES of a text part, cut after a line (no character is split)."""
    if len(data) <= MAX_TEXT_BYTES:
        return data
    line_end = data.rfind(b"\n", MAX_TEXT_BYTES - 65536, MAX_TEXT_BYTES)
    return data[:line_end + 1 if line_end > 0 else MAX_TEXT_BYTES]


def _disposition(part) -> str:
    return str(part.get("Content-Disposition", "")).split(";")[0].strip().lower()


def _words(text: str) -> int:
    return len(_WORD_CHARS.findall(text))


def choose_alternative(options: list[Found]) -> str | None:
    """The text of a multipart/alternative: its plain version, unless that is a stub
    beside an HTML version that says far more (more than twice the words and ten
    besides) or it is empty; None when no alternative has any text."""
    plain = next((o for o in reversed(options) if o.pieces and
                  all(kind == "plain" for kind, _ in o.pieces)), None)
    richer = [o for o in options if o is not plain and o.pieces]
    plain_text = plain.text() if plain else ""
    if not richer:
        return plain_text if plain else None
    if not plain_text.strip():
        return max((o.text() for o in richer), key=_words)
    # Weighing them takes only their words: the HTML read quickly (`simple_text`, the
    # same words), and laid out properly only when it wins, which it seldom does.
    words, wordiest = max(((_words(o.text(simple_text)), o) for o in richer),
                          key=lambda counted: counted[0])
    return wordiest.text() if words > 2 * _words(plain_text) + 10 else plain_text
