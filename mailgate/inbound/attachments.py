"""Which attachments are accepted: size, hazard, type and name policy. Pure."""
from __future__ import annotations

from ..config import LimitSettings
from .parse import ParsedAttachment, comparable_name

GENERIC_TYPES = {"", "application/octet-stream", "application/x-download", "binary/octet-stream",
                 "application/download", "application/unknown"}
# A file with one of these names would be opened as active content (a page, a script,
# a program, a shortcut, a disk image) whatever its bytes look like.
ACTIVE_EXTENSIONS = {
    "html", "htm", "shtml", "shtm", "xhtml", "xht", "mht", "mhtml", "svg", "svgz", "xml", "xsl",
    "xslt", "js", "mjs", "jse", "hta", "htc", "vbs", "vbe", "vb", "wsf", "wsh", "wsc", "ws",
    "bat", "cmd", "ps1", "psm1", "psd1", "ps1xml", "sh", "php", "jsp", "asp", "aspx", "chm",
    "url", "lnk", "scf", "reg", "inf", "scr", "pif", "cpl", "msc", "exe", "dll", "com", "jar",
    "msi", "msp", "appx", "application", "appref-ms", "gadget", "library-ms", "settingcontent-ms",
    "search-ms", "iso", "img", "vhd", "vhdx",
}
# Text that a browser or viewer would render as a page or image; refused unless the
# allow-list names it, with the declared type or the name as the reason when they
# already say so (they are what the sender can read and change).
MARKUP_TYPES = {"text/html", "application/xhtml+xml", "image/svg+xml", "application/xml",
                "message/rfc822"}
# Office formats whose only difference from the plain one is that macros run.
MACRO_EXTENSIONS = {"docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppsm", "ppam",
                    "sldm"}


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
    accepted, refused = [], []
    for att in attachments:
        reason = refusal(att, limits)
        if reason is None:
            accepted.append(att)
        else:
            refused.append((att, reason))
    return accepted, refused
