"""Which attachments are accepted: size and type policy. Pure."""
from __future__ import annotations

from ..config import LimitSettings
from .parse import ParsedAttachment

GENERIC_TYPES = {"", "application/octet-stream", "application/x-download", "binary/octet-stream",
                 "application/download", "application/unknown"}
# A text file with one of these names would be opened as active content.
ACTIVE_EXTENSIONS = {"html", "htm", "xhtml", "svg", "js", "mjs", "hta", "vbs", "vbe", "wsf",
                     "bat", "cmd", "ps1", "sh", "php", "jsp", "asp", "aspx", "xml", "xsl",
                     "url", "lnk", "reg", "scr", "exe", "dll", "com", "jar", "msi"}


def refusal(att: ParsedAttachment, limits: LimitSettings) -> str | None:
    """Why `att` is refused, or None when it is accepted."""
    if att.size > limits.max_attachment_size:
        return f"{att.size} bytes exceeds the limit of {limits.max_attachment_size} bytes"
    allowed = set(limits.allowed_types)
    if att.sniffed_type not in allowed:
        return f"content is {att.sniffed_type}, which is not an allowed type"
    if att.content_type not in allowed and att.content_type not in GENERIC_TYPES:
        return f"declared as {att.content_type}, which is not an allowed type"
    extension = att.filename.rsplit(".", 1)[-1].lower() if "." in att.filename else ""
    if extension in ACTIVE_EXTENSIONS:
        return f"files named .{extension} are not accepted"
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
