"""Which attachments are accepted: size, hazard, type and name policy; and how a
notice names what is accepted. Pure.

The signature of a signed message (the second part of an S/MIME or OpenPGP
multipart/signed) is not a file the customer sent: it is neither stored nor
refused, and stays in the raw message only.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import LimitSettings
from .names import comparable_name
from .parsed import ParsedAttachment

GENERIC_TYPES = {"", "application/octet-stream", "application/x-download", "binary/octet-stream",
                 "application/download", "application/unknown"}
# A file with one of these names would be opened as active content (a page, a script,
# a program, a shortcut, a disk image) whatever its bytes look like.
ACTIVE_EXTENSIONS = {
    "html", "htm", "shtml", "shtm", "xhtml", "xht", "mht", "mhtml", "svg", "svgz", "xsl",
    "xslt", "js", "mjs", "jse", "hta", "htc", "vbs", "vbe", "vb", "wsf", "wsh", "wsc", "ws",
    "bat", "cmd", "ps1", "psm1", "psd1", "ps1xml", "sh", "php", "jsp", "asp", "aspx", "chm",
    "url", "lnk", "scf", "reg", "inf", "scr", "pif", "cpl", "msc", "exe", "dll", "com", "jar",
    "msi", "msp", "appx", "application", "appref-ms", "gadget", "library-ms", "settingcontent-ms",
    "search-ms", "iso", "img", "vhd", "vhdx",
}
# .xml is not here: XML that a browser would run or render as a page (a style sheet,
# XHTML, SVG, scripts) is named so by the sniffer, and refused as that
# Text that a browser or viewer would render as a page or image; refused unless the
# allow-list names it, with the declared type or the name as the reason when they
# already say so (they are what the sender can read and change).
MARKUP_TYPES = {"text/html", "application/xhtml+xml", "image/svg+xml", "application/xml",
                "message/rfc822"}
XML_TYPES = {"application/xml", "text/xml"}
# Office formats whose only difference from the plain one is that macros run.
MACRO_EXTENSIONS = {"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppsm", "ppam",
                    "sldm"}
SIGNATURE_TYPES = {"application/pkcs7-signature", "application/x-pkcs7-signature",
                   "application/pgp-signature"}

# How a notice to the customer names an allowed type: its kind and format. The
# templates name the kinds in their language (`formats` in templates/*/_parts.txt);
# a type not in this table is shown as it is, under "other".
FORMATS = {
    "application/pdf": ("documents", "PDF"),
    "application/msword": ("documents", "Word"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
        ("documents", "Word"),
    "application/vnd.ms-excel": ("documents", "Excel"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("documents", "Excel"),
    "application/vnd.ms-powerpoint": ("documents", "PowerPoint"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation":
        ("documents", "PowerPoint"),
    "application/vnd.oasis.opendocument.text": ("documents", "OpenDocument"),
    "application/vnd.oasis.opendocument.spreadsheet": ("documents", "OpenDocument"),
    "application/vnd.oasis.opendocument.presentation": ("documents", "OpenDocument"),
    "application/rtf": ("documents", "RTF"),
    "text/rtf": ("documents", "RTF"),
    "image/jpeg": ("images", "JPEG"),
    "image/pjpeg": ("images", "JPEG"),
    "image/jpg": ("images", "JPEG"),
    "image/png": ("images", "PNG"),
    "image/x-png": ("images", "PNG"),
    "image/gif": ("images", "GIF"),
    "image/webp": ("images", "WebP"),
    "image/heic": ("images", "HEIC"),
    "image/heif": ("images", "HEIC"),
    "image/bmp": ("images", "BMP"),
    "image/tiff": ("images", "TIFF"),
    "text/plain": ("text", "TXT"),
    "text/csv": ("text", "CSV"),
    "application/csv": ("text", "CSV"),
    "application/json": ("text", "JSON"),
    "application/xml": ("text", "XML"),
    "text/xml": ("text", "XML"),
    "text/calendar": ("text", "ICS"),
    "message/rfc822": ("mail", "EML"),
    "application/zip": ("archives", "ZIP"),
    "application/x-zip-compressed": ("archives", "ZIP"),
    "application/x-7z-compressed": ("archives", "7z"),
    "application/vnd.rar": ("archives", "RAR"),
    "application/x-rar-compressed": ("archives", "RAR"),
    "application/gzip": ("archives", "GZ"),
    "audio/mpeg": ("audio", "MP3"),
    "audio/wav": ("audio", "WAV"),
    "audio/ogg": ("audio", "OGG"),
    "video/mp4": ("video", "MP4"),
    "video/quicktime": ("video", "MOV"),
    "video/webm": ("video", "WebM"),
}
KINDS = ("documents", "images", "text", "mail", "archives", "audio", "video", "other")


@dataclass(frozen=True)
class Refused:
    """A refused attachment: what the agent sees of it. Unpacks as (filename, reason),
    all that the sender is told."""

    filename: str
    reason: str
    content_type: str = ""  # declared
    sniffed_type: str = ""
    size: int = 0

    @classmethod
    def of(cls, att: ParsedAttachment, reason: str) -> Refused:
        return cls(att.filename, reason, att.content_type, att.sniffed_type, att.size)

    def __iter__(self):
        return iter((self.filename, self.reason))

    def facts(self) -> str:
        """Declared and sniffed type and size, for the ticket's event."""
        return f"declared {self.content_type}, content {self.sniffed_type}, {self.size} bytes"

    def view(self) -> dict:
        return {"filename": self.filename, "content_type": self.content_type,
                "sniffed_type": self.sniffed_type, "size": self.size, "reason": self.reason}


def refused_views(refused) -> list[dict]:
    """Template values of refused attachments (`Refused`, or (filename, reason) pairs)."""
    return [item.view() if isinstance(item, Refused) else
            Refused(*item).view() for item in refused or []]


def accepted_formats(limits: LimitSettings) -> list[dict]:
    """What `limits.allowed_types` accepts, as a notice names it: the kinds of file in
    the order of KINDS, each with its formats, e.g. {"kind": "images", "formats":
    ["JPEG", "PNG"]}."""
    groups: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for mime in limits.allowed_types:
        kind, name = FORMATS.get(mime.lower(), ("other", mime))
        if name not in groups[kind]:
            groups[kind].append(name)
    return [{"kind": kind, "formats": names} for kind, names in groups.items() if names]


def is_signature(att: ParsedAttachment) -> bool:
    """The signature part of a signed message (S/MIME `smime.p7s`, OpenPGP
    `signature.asc`), by its declared type or, declared generically, an S/MIME name."""
    return att.content_type in SIGNATURE_TYPES or (
        att.content_type in GENERIC_TYPES and comparable_name(att.filename).endswith(".p7s"))


def refusal(att: ParsedAttachment, limits: LimitSettings) -> str | None:
    """Why `att` is refused, or None when it is accepted."""
    if att.size > limits.max_attachment_size:
        return f"{att.size} bytes exceeds the limit of {limits.max_attachment_size} bytes"
    hazard = _hazard(att, limits)
    if hazard:
        return hazard
    allowed = set(limits.allowed_types)
    content = f"content is {att.sniffed_type}, which is not an allowed type"
    if att.sniffed_type not in allowed and att.sniffed_type not in MARKUP_TYPES:
        return content
    if att.content_type not in allowed and att.content_type not in GENERIC_TYPES:
        return f"declared as {att.content_type}, which is not an allowed type"
    name = comparable_name(att.filename)
    extension = name.rsplit(".", 1)[-1] if "." in name else ""
    if extension in ACTIVE_EXTENSIONS:
        return f"files named .{extension} are not accepted"
    if extension in MACRO_EXTENSIONS and not limits.allow_macros:
        return f"files named .{extension} run macros, which are not accepted"
    if att.sniffed_type in XML_TYPES and att.content_type not in XML_TYPES | GENERIC_TYPES \
            and extension != "xml":
        return content  # XML is accepted as the data it says it is, not dressed as text
    return content if att.sniffed_type not in allowed else None


def _hazard(att: ParsedAttachment, limits: LimitSettings) -> str | None:
    if att.hazard == "bomb":
        return att.hazard_detail
    if att.hazard == "macros" and not limits.allow_macros:
        return f"{att.hazard_detail}: macros are not accepted"
    if att.hazard == "script" and not limits.allow_pdf_scripts:
        return f"{att.hazard_detail}: PDF scripts and actions are not accepted"
    return None


def screen(attachments: list[ParsedAttachment], limits: LimitSettings
           ) -> tuple[list[ParsedAttachment], list[tuple[ParsedAttachment, str]]]:
    """(accepted, refused with the reason); a signature part is neither."""
    accepted, refused = [], []
    for att in attachments:
        if is_signature(att):
            continue
        reason = refusal(att, limits)
        if reason is None:
            accepted.append(att)
        else:
            refused.append((att, reason))
    return accepted, refused
