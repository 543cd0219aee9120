"""Build the bytes of an outgoing mail from an outbox row and its rendered template.

Nothing parsed from inbound mail is copied verbatim into a header: every value
built from user data (subjects, display names, filenames) passes through
`header_text()`, which decodes RFC 2047 encoded words first and then removes
every kind of line break, so neither `\\r\\n` nor `=?UTF-8?Q?=0A?=` nor U+2028 can
start a header of its own; addresses and Message-IDs are re-validated.
"""
from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from typing import Callable

from ..mail.headers import message_ids, normalize_address, one_line, safe_filename
from . import mime
from .render import Rendered

AUTOMATIC_SUPPRESS = "All"  # X-Auto-Response-Suppress: ask Exchange not to auto-answer us


def header_text(value: object, max_len: int = 900) -> str:
    text = one_line(value, 100_000)
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (LookupError, UnicodeError, ValueError):
            pass
    return one_line(text, max_len)


def address_header(addresses: list[str]) -> str:
    valid = [a for a in (normalize_address(x) for x in addresses) if a]
    if not valid:
        raise ValueError("no valid recipient address")
    return ", ".join(valid)


@dataclass(frozen=True, kw_only=True)
class Headers:
    """The headers of one outgoing mail, as its outbox row has them. `loop_marker`:
    this gateway's instance (X-Mailgate-Loop); `extra`: headers of our own."""
    sender: str
    sender_name: str
    recipients: list[str]
    message_id: str
    in_reply_to: str | None = None
    references: str | None = None
    auto_submitted: str | None = None
    loop_marker: str
    extra: dict[str, str] = field(default_factory=dict)


def build_email(headers: Headers, rendered: Rendered, files: list[dict] = (),
                read_file: Callable[[str], bytes] | None = None) -> bytes:
    """The mail's bytes: `rendered` as text (and HTML), and each of `files` (stored
    attachments: sha256, filename, content_type) read with `read_file`. Written
    as bytes (`mime.py`), not through `EmailMessage`: a third of the sender's CPU went
    to its header policy."""
    body = mime.text_part(rendered.text, "plain")
    if rendered.html is not None:
        body = mime.multipart("alternative", [body, mime.text_part(rendered.html, "html")])
    if files:
        body = mime.multipart("mixed", [body] + [
            mime.attachment_part(read_file(item["sha256"]), item.get("content_type"),
                                 safe_filename(header_text(item.get("filename"), 1000)))
            for item in files])
    return _header_block(headers, rendered.subject) + b"MIME-Version: 1.0\r\n" + body


def date_header(moment: dt.datetime | None = None) -> str:
    """An RFC 5322 date in UTC, `+0000`: `formatdate`'s `-0000` says "zone unknown"."""
    return email.utils.format_datetime(moment or dt.datetime.now(dt.timezone.utc))


def _header_block(headers: Headers, subject: str) -> bytes:
    from_addr = normalize_address(headers.sender)
    if from_addr is None:
        raise ValueError(f"not a sender address: {headers.sender!r}")
    lines = [("From", mime.mailbox(header_text(headers.sender_name, 200), from_addr)),
             ("To", address_header(headers.recipients)),
             ("Subject", mime.text_value(header_text(subject))),
             ("Date", date_header()),
             ("Message-ID", message_ids(headers.message_id)[0])]
    parents = message_ids(headers.in_reply_to)
    if parents:
        lines.append(("In-Reply-To", parents[0]))
    chain = message_ids(headers.references)[-20:]
    if chain:
        lines.append(("References", " ".join(chain)))
    if headers.auto_submitted:
        lines += [("Auto-Submitted", headers.auto_submitted),
                  ("X-Auto-Response-Suppress", AUTOMATIC_SUPPRESS)]
    lines.append(("X-Mailgate-Loop", mime.text_value(header_text(headers.loop_marker, 100))))
    lines += [(name, mime.text_value(header_text(value, 200)))
              for name, value in headers.extra.items()]
    return b"".join(mime.header_line(name, value) for name, value in lines)
