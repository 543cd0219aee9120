"""Parse raw bytes into a `ParsedMessage`: plain values only, no database, no I/O.

mail-parser does the MIME walk over the raw bytes (it uses the stdlib's compat32
policy, which stays fast on hostile headers); bodies are decoded per part with
their declared charset, HTML is sanitized, Outlook's winmail.dat (TNEF) is
unpacked into its real attachments, and every attachment is hashed and sniffed.
This runs inside a bounded worker process (see `workers.py`).
"""
from __future__ import annotations

import base64
import binascii
import email.errors
import email.header
import email.message
import email.utils
from dataclasses import dataclass, field
from email.header import decode_header, make_header

import mailparser

from ..errors import MessageRejected
from ..headers import first_message_id, message_ids, normalize_address, one_line, safe_filename
from ..storage import sha256_hex
from .sanitize import html_to_text, sanitize_html
from .sniff import sniff

# Headers the guard and the agent checks look at, kept as decoded one-line values.
GUARD_HEADERS = (
    "auto-submitted", "precedence", "x-autoreply", "x-autorespond", "x-auto-response-suppress",
    "list-id", "list-unsubscribe", "list-post", "return-path", "x-mailgate-loop",
    "x-loop", "authentication-results", "x-failed-recipients", "x-mailgate-outbox",
)
MAX_DEFECTS = 20
MAX_TEXT = 2_000_000


@dataclass
class ParsedAttachment:
    filename: str  # cleaned display name, as sent; metadata only
    content_type: str  # declared
    sniffed_type: str
    data: bytes
    sha256: str
    content_id: str | None = None
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class DeliveryReport:
    """What a DSN (multipart/report; report-type=delivery-status) says."""

    original_message_id: str | None
    recipients: list[str]
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. 5.1.1
    diagnostic: str


@dataclass
class ParsedMessage:
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str
    from_name: str
    from_addr: str | None
    reply_to: str | None
    to: list[str]
    cc: list[str]
    delivered_to: list[str]
    date: str
    content_type: str
    report_type: str
    text: str
    html: str | None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    received_count: int = 0
    depth: int = 0
    parts: int = 0
    defects: list[str] = field(default_factory=list)
    report: DeliveryReport | None = None
    mdn_original_id: str | None = None

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""


def decode_text_header(value: object) -> str:
    """RFC 2047 decoding that never raises. Raw 8-bit header bytes (RFC 6532, and what
    many mailers send anyway) are read as UTF-8, else Windows-1252; unknown charsets
    fall back to UTF-8."""
    if value is None:
        return ""
    if not isinstance(value, email.header.Header):
        value = str(value)
    chunks = decode_header(value)
    if not any(charset == "unknown-8bit" for _, charset in chunks):
        try:
            return str(make_header(chunks))
        except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
            pass
    return "".join(_decoded_chunk(chunk, charset) for chunk, charset in chunks)


def _decoded_chunk(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    if charset in (None, "unknown-8bit"):
        try:
            return chunk.decode("utf-8")
        except UnicodeDecodeError:
            return chunk.decode("cp1252", "replace")
    try:
        return chunk.decode(charset, "replace")
    except LookupError:
        return chunk.decode("utf-8", "replace")


def _all_headers(msg: email.message.Message, name: str) -> list[str]:
    return [decode_text_header(v) for v in (msg.get_all(name) or [])]


def _addresses(pairs) -> list[str]:
    out = []
    for pair in pairs or []:
        addr = normalize_address(pair[1] if isinstance(pair, (tuple, list)) else pair)
        if addr and addr not in out:
            out.append(addr)
    return out


def _depth_and_parts(msg: email.message.Message) -> tuple[int, int]:
    deepest, count = 0, 0
    stack = [(msg, 1)]
    while stack:
        part, level = stack.pop()
        count += 1
        deepest = max(deepest, level)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((p, level + 1) for p in payload if isinstance(p, email.message.Message))
    return deepest, count


def _payload_bytes(item: dict) -> bytes:
    payload = item.get("payload") or ""
    if item.get("binary"):
        try:
            return base64.b64decode(payload)
        except (binascii.Error, ValueError):
            return payload.encode("utf-8", "surrogateescape")
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else payload


def _unpack_tnef(data: bytes) -> list[tuple[str, bytes]]:
    """The files inside an Outlook winmail.dat; [] when it holds none or is broken."""
    try:
        from tnefparse import TNEF

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


def _is_tnef(name: str, content_type: str) -> bool:
    return content_type in ("application/ms-tnef", "application/vnd.ms-tnef") or \
        name.lower() == "winmail.dat"


def _attachment(name: str, content_type: str, data: bytes, content_id: str | None,
                inline: bool) -> ParsedAttachment:
    return ParsedAttachment(
        filename=safe_filename(name), content_type=content_type, data=data,
        sniffed_type=sniff(data, content_type), sha256=sha256_hex(data),
        content_id=content_id, inline=inline)


def _attachments(mail) -> list[ParsedAttachment]:
    result = []
    for item in mail.attachments:
        name = decode_text_header(item.get("filename") or "")
        content_type = one_line(item.get("mail_content_type") or "application/octet-stream",
                                100).lower()
        data = _payload_bytes(item)
        content_id = first_message_id(item.get("content-id")) if item.get("content-id") else None
        disposition = (item.get("content-disposition") or "").lower()
        inline = disposition.startswith("inline") or (content_id is not None
                                                     and "attachment" not in disposition)
        if _is_tnef(name, content_type):
            inner = _unpack_tnef(data)
            if inner:
                result.extend(_attachment(n, "application/octet-stream", d, None, False)
                              for n, d in inner)
                continue
        result.append(_attachment(name, content_type, data, content_id, inline))
    return result


def _delivery_report(msg: email.message.Message) -> DeliveryReport | None:
    original_id, recipients, action, status, diagnostic = None, [], "", "", ""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload() or []:
                if not isinstance(block, email.message.Message):
                    continue
                final = block.get("Final-Recipient") or block.get("Original-Recipient")
                if final:
                    addr = normalize_address(str(final).split(";")[-1])
                    if addr:
                        recipients.append(addr)
                action = action or one_line(block.get("Action", ""), 20).lower()
                status = status or one_line(block.get("Status", ""), 20)
                diagnostic = diagnostic or one_line(block.get("Diagnostic-Code", ""), 300)
        elif kind in ("message/rfc822", "text/rfc822-headers") and original_id is None:
            original_id = _original_message_id(part)
    if not (recipients or original_id):
        return None
    return DeliveryReport(original_id, recipients, action or "failed", status, diagnostic)


def _original_message_id(part: email.message.Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
        return first_message_id(payload[0].get("Message-ID"))
    if isinstance(payload, email.message.Message):
        return first_message_id(payload.get("Message-ID"))
    raw = part.get_payload(decode=True) or b""
    inner = email.message_from_bytes(raw)
    return first_message_id(inner.get("Message-ID"))


def _mdn_original_id(msg: email.message.Message) -> str | None:
    for part in msg.walk():
        if part.get_content_type() == "message/disposition-notification":
            for block in part.get_payload() or []:
                if isinstance(block, email.message.Message) and block.get("Original-Message-ID"):
                    return first_message_id(block.get("Original-Message-ID"))
    return None


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_message(raw: bytes, max_depth: int = 20, max_parts: int = 500) -> ParsedMessage:
    """Parse `raw`; raise MessageRejected when it is too deep, too large or not mail."""
    try:
        mail = mailparser.parse_from_bytes(raw)
    except mailparser.exceptions.MailParserRecursionError as exc:
        raise MessageRejected("MIME nesting too deep to parse", "limit") from exc
    msg = mail.message
    depth, parts = _depth_and_parts(msg)
    if depth > max_depth:
        raise MessageRejected(f"MIME nesting depth {depth} exceeds {max_depth}", "limit")
    if parts > max_parts:
        raise MessageRejected(f"{parts} MIME parts exceed {max_parts}", "limit")

    html_parts = [_unix_newlines(p) for p in mail.text_html]
    html = sanitize_html("\n".join(html_parts)) if html_parts else None
    text = "\n".join(_unix_newlines(p) for p in mail.text_plain)
    if not text.strip() and html_parts:
        text = html_to_text("\n".join(html_parts))
    from_pairs = mail.from_ or []
    from_name = one_line(from_pairs[0][0], 200) if from_pairs else ""
    reply_to = _addresses(getattr(mail, "reply_to", None) or [])
    content_type = one_line(msg.get_content_type(), 100).lower()

    headers = {name: [one_line(v, 2000) for v in _all_headers(msg, name)]
               for name in GUARD_HEADERS if msg.get_all(name)}
    defects = []
    for entry in mail.defects[:MAX_DEFECTS]:
        defects.extend(one_line(d, 300) for v in entry.values() for d in v)
    return ParsedMessage(
        message_id=first_message_id(msg.get("Message-ID")),
        # some mailers wrap long ids into encoded words: decode before looking for <ids>
        in_reply_to=message_ids(decode_text_header(msg.get("In-Reply-To"))),
        references=message_ids(" ".join(decode_text_header(v)
                                        for v in msg.get_all("References") or [])),
        subject=one_line(decode_text_header(msg.get("Subject")), 500),
        from_name=from_name,
        from_addr=_addresses(from_pairs)[0] if _addresses(from_pairs) else None,
        reply_to=reply_to[0] if reply_to else None,
        to=_addresses(mail.to),
        cc=_addresses(mail.cc),
        delivered_to=[a for v in _all_headers(msg, "Delivered-To") + _all_headers(
            msg, "X-Original-To") if (a := normalize_address(v))],
        date=one_line(msg.get("Date"), 100),
        content_type=content_type,
        report_type=one_line(msg.get_param("report-type") or "", 50).lower()
        if content_type == "multipart/report" else "",
        text=text[:MAX_TEXT],
        html=html[:MAX_TEXT] if html else None,
        attachments=_attachments(mail),
        headers=headers,
        received_count=len(msg.get_all("Received") or []),
        depth=depth,
        parts=parts,
        defects=defects[:MAX_DEFECTS],
        report=_delivery_report(msg) if content_type == "multipart/report" else None,
        mdn_original_id=_mdn_original_id(msg) if content_type == "multipart/report" else None,
    )
