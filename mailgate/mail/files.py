"""The files found in a message as `ParsedAttachment`s: Outlook's winmail.dat (TNEF)
unpacked into the files it holds, every file examined (type and hazards, `sniff.py`)
and hashed, its name cleaned (`names.py`). Pure."""
from __future__ import annotations

import hashlib

from tnefparse import TNEF

from .bodies import File
from .headers import first_message_id, one_line
from .names import clean_filename
from .parsed import ParsedAttachment
from .sniff import examine

TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")


def attachments(files: list[File]) -> list[ParsedAttachment]:
    result = []
    for file in files:
        content_type = one_line(file.content_type or "application/octet-stream", 100).lower()
        content_id = first_message_id(file.content_id) if file.content_id else None
        if content_type in TNEF_TYPES or file.name.lower() == "winmail.dat":
            inner = _unpack_tnef(file.data)
            if inner:
                result.extend(_attachment(n, "application/octet-stream", d, None, False)
                              for n, d in inner)
                continue
        result.append(_attachment(file.name, content_type, file.data, content_id, file.inline))
    return result


def _unpack_tnef(data: bytes) -> list[tuple[str, bytes]]:
    """The files inside an Outlook winmail.dat; [] when it holds none or is broken."""
    try:
        tnef = TNEF(data)
        files = []
        for att in tnef.attachments:
            name = att.long_filename() or att.name or "attachment"
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            files.append((name, bytes(att.data)))
        return files
    except Exception:  # a broken TNEF blob is kept as it came
        return []


def _attachment(name: str, content_type: str, data: bytes, content_id: str | None,
                inline: bool) -> ParsedAttachment:
    found = examine(data, content_type)
    return ParsedAttachment(
        filename=clean_filename(name), content_type=content_type, data=data,
        sniffed_type=found.type, sha256=hashlib.sha256(data).hexdigest(), content_id=content_id,
        inline=inline, hazard=found.hazard, hazard_detail=found.detail)
