"""Parse raw bytes into a `ParsedMessage`: plain values only, no database, no I/O.

The stdlib's compat32 parser builds the tree (it stays fast on hostile headers);
mail-parser's address scanner reads the address headers; `bodies.py` reads the text,
HTML and files part by part with our own charset handling (`charsets.py`), header
text is decoded the way mail clients do (`words.py`), an odd From is recovered
where a person could read it (`senders.py`), HTML is sanitized, Outlook's
winmail.dat (TNEF) is unpacked into its real attachments, and every attachment is
hashed and examined (type and hazards, `sniff.py`). Filenames and display names
are cleaned here, once: no line breaks, no bidi controls, no invisible
characters, no Windows tricks.
This runs inside a bounded worker process (see `workers.py`).
"""
from __future__ import annotations

import binascii
import email.errors
import email.feedparser
import email.header
import email.message
import email.policy
import email.utils
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

from mailparser.utils import get_addresses

from ..errors import MessageRejected
from .headers import first_message_id, message_ids, normalize_address, one_line, safe_filename
from . import words
from .bodies import File, Walker, Found, declared_charset
from .charsets import Reader
from .precheck import boundaries, delimiter_lines
from .sanitize import sanitize_html
from .senders import Sender, find_sender, repair_headers
from .sniff import examine

# Headers the guard and the agent checks look at, kept as decoded one-line values.
GUARD_HEADERS = (
    "auto-submitted", "precedence", "x-autoreply", "x-autorespond", "x-auto-response-suppress",
    "list-id", "list-unsubscribe", "list-post", "return-path", "x-mailgate-loop",
    "x-loop", "authentication-results", "x-failed-recipients", "x-mailgate-outbox",
)
ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")
MAX_DEFECTS = 20
MAX_TEXT = 2_000_000
FEED_CHUNK = 64 * 1024
SET_ASIDE_FROM = 1024 * 1024  # base64 bodies this large skip the stdlib's line-by-line parse


@dataclass
class ParsedAttachment:
    filename: str  # cleaned display name, as sent; metadata only
    content_type: str  # declared
    sniffed_type: str
    data: bytes
    sha256: str
    content_id: str | None = None
    inline: bool = False
    hazard: str = ""  # "" | bomb | macros | script (see sniff.examine)
    hazard_detail: str = ""

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
    # how the sender was found when From alone did not give it (senders.py), for the
    # trace; "sender not verified" when only Reply-To named it
    sender_note: str = ""
    sender_via: str = "from"  # from | sender | return-path | reply-to
    sender_verified: bool = True
    notes: list[str] = field(default_factory=list)  # other repairs, for the trace

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""


def decode_text_header(value: object, reader: Reader | None = None,
                       hint: str | None = None) -> str:
    """Header text as mail clients show it (`words.py`); never raises."""
    return words.decode(value, reader, hint)


# -- names as they will be shown --------------------------------------------------

# Bidi embeddings, overrides, isolates and marks reorder what is shown around them:
# "invoice\u202efdp.exe" reads as "invoiceexe.pdf".
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Invisible characters besides the format (Cf) category: combining grapheme joiner,
# Mongolian and Unicode variation selectors, Hangul fillers.
_INVISIBLE_EXTRA = re.compile("[\u034f\u115f\u1160\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
                              "\U000e0100-\U000e01ef]")
_JOINERS = "\u200c\u200d"  # ZWNJ/ZWJ: part of Persian, Arabic and Indic words
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", "conin$", "conout$",
                    *(f"{port}{n}" for port in ("com", "lpt") for n in "123456789¹²³")}


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or _INVISIBLE_EXTRA.match(ch) is not None


def _strip_invisible(text: str, keep_joiners: bool) -> str:
    """`text` without invisible characters; with `keep_joiners`, a ZWNJ/ZWJ between two
    letters stays (it shapes the word), anywhere else it goes."""
    out = []
    for i, ch in enumerate(text):
        if not _invisible(ch):
            out.append(ch)
        elif keep_joiners and ch in _JOINERS and 0 < i < len(text) - 1 \
                and text[i - 1].isalpha() and text[i + 1].isalpha():
            out.append(ch)
    return "".join(out)


def clean_filename(value: object) -> str:
    """An attachment's name as we keep and show it: one line, no path, no bidi controls
    or invisible characters, and nothing Windows would read otherwise than shown
    (trailing dots and spaces dropped, `:` and other reserved characters replaced,
    device names such as CON or LPT1 prefixed). Metadata only; never a path."""
    name = safe_filename(_strip_invisible(str(value)[:10_000], keep_joiners=True))
    name = _WINDOWS_FORBIDDEN.sub("_", name).rstrip(". ")
    if name.split(".", 1)[0].rstrip(" ").lower() in WINDOWS_RESERVED:
        name = "_" + name
    return name or "attachment"


def comparable_name(filename: str) -> str:
    """The form of a filename that extension checks compare: every invisible character
    gone, compatibility forms folded (full-width letters), lower case, no trailing
    dots or spaces."""
    name = _strip_invisible(unicodedata.normalize("NFKC", filename), keep_joiners=False)
    return name.lower().rstrip(". ")


def clean_display_name(value: object) -> str:
    """A display name as shown: decoded, one line (an encoded CR/LF starts no header),
    no bidi controls."""
    return one_line(BIDI_CONTROLS.sub("", str(value or "")), 200)


def _raw_headers(msg: email.message.Message, name: str) -> list[str]:
    """The values of header `name` as parsed, raw 8-bit bytes kept (surrogate escapes)."""
    return [v for k, v in msg.raw_items() if k.lower() == name]


def _all_headers(msg: email.message.Message, name: str, reader: Reader | None = None,
                 hint: str | None = None) -> list[str]:
    return [decode_text_header(v, reader, hint) for v in _raw_headers(msg, name.lower())]


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


def _payload_bytes(part: email.message.Message, raw: bytes,
                   set_aside: list[tuple[int, int]]) -> bytes:
    """The decoded bytes of a leaf part; a body set aside (`set_aside_large_bodies`) is
    decoded straight from `raw`."""
    payload = part.get_payload()
    placeholder = _PLACEHOLDER_LINE.match(payload) if isinstance(payload, str) else None
    if placeholder and int(placeholder.group(1)) < len(set_aside):
        start, end = set_aside[int(placeholder.group(1))]
        return binascii.a2b_base64(memoryview(raw)[start:end])
    try:
        return part.get_payload(decode=True) or b""
    except Exception:  # a transfer encoding the stdlib trips over: the bytes as sent
        return str(payload).encode("utf-8", "surrogateescape")


def _serialize(part: email.message.Message, raw: bytes,
               set_aside: list[tuple[int, int]]) -> bytes:
    """A message part's bytes (a forwarded .eml), with the bodies set aside put back."""
    try:
        data = part.as_bytes()
    except Exception:  # what the generator cannot write back: the text we have
        data = str(part).encode("utf-8", "surrogateescape")
    if not set_aside:
        return data
    return _PLACEHOLDER_BYTES.sub(
        lambda m: raw[slice(*set_aside[int(m.group(1))])] if int(m.group(1)) < len(set_aside)
        else m.group(), data)


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
    found = examine(data, content_type)
    return ParsedAttachment(
        filename=clean_filename(name), content_type=content_type, data=data,
        sniffed_type=found.type, sha256=hashlib.sha256(data).hexdigest(), content_id=content_id,
        inline=inline, hazard=found.hazard, hazard_detail=found.detail)


def _attachments(files: list[File]) -> list[ParsedAttachment]:
    result = []
    for file in files:
        name = file.name
        content_type = one_line(file.content_type or "application/octet-stream", 100).lower()
        content_id = first_message_id(file.content_id) if file.content_id else None
        if _is_tnef(name, content_type):
            inner = _unpack_tnef(file.data)
            if inner:
                result.extend(_attachment(n, "application/octet-stream", d, None, False)
                              for n, d in inner)
                continue
        result.append(_attachment(name, content_type, file.data, content_id, file.inline))
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


_PLACEHOLDER = "mailgate-set-aside-%d"
_PLACEHOLDER_LINE = re.compile(r"\s*mailgate-set-aside-([0-9]{1,4})\s*\Z")
_PLACEHOLDER_BYTES = re.compile(rb"mailgate-set-aside-([0-9]{1,4})")
_PART_HEADERS_END = re.compile(rb"\r?\n\r?\n")
_BASE64 = re.compile(rb"^content-transfer-encoding[ \t]*:[ \t]*base64[ \t]*\r?$",
                     re.IGNORECASE | re.MULTILINE)
_NOT_A_FILE = re.compile(rb"^content-type[ \t]*:[ \t]*(?:multipart|message|text)/",
                         re.IGNORECASE | re.MULTILINE)


def set_aside_large_bodies(raw: bytes, max_parts: int) -> tuple[bytes, list[tuple[int, int]]]:
    """(`raw` with each large base64 file body replaced by a placeholder line, the byte
    ranges of those bodies in `raw`).

    The stdlib's parser walks a body line by line in Python: 0.9 s and five times its
    size for a 24 MB attachment. A file body (a leaf part, not text, base64) of
    SET_ASIDE_FROM bytes or more is found between the delimiter lines of the
    boundaries the message declares (base64 has no "-", so no such line can be
    inside one) and decoded straight from `raw` instead; the parser sees the rest."""
    declared, _ = boundaries(raw)
    if len(raw) < SET_ASIDE_FROM or not declared:
        return raw, []
    lines = delimiter_lines(raw, declared, set(), max_parts)
    pieces, ranges, done = [], [], 0
    for (start, kind), (end, _) in zip(lines, lines[1:]):
        if kind != "open" or end - start < SET_ASIDE_FROM:
            continue
        line_end = raw.find(b"\n", start + 1, end)
        headers = _PART_HEADERS_END.search(raw, line_end, end) if line_end > 0 else None
        if headers is None or end - headers.end() < SET_ASIDE_FROM:
            continue
        block = raw[start:headers.start()]
        if _BASE64.search(block) and not _NOT_A_FILE.search(block):
            pieces += [raw[done:headers.end()], (_PLACEHOLDER % len(ranges)).encode()]
            ranges.append((headers.end(), end))
            done = end
    if not ranges:
        return raw, []
    return b"".join(pieces + [raw[done:]]), ranges


def _message_from_bytes(raw: bytes) -> email.message.Message:
    """The stdlib's compat32 parse, fed in chunks: `email.message_from_bytes` first makes
    the whole message one str and then a StringIO of four bytes a character, which
    took a 24 MB message to eight times its size."""
    parser = email.feedparser.BytesFeedParser(policy=email.policy.compat32)
    for start in range(0, len(raw), FEED_CHUNK):
        parser.feed(raw[start:start + FEED_CHUNK])
    return parser.close()


@dataclass
class _Tree:
    msg: email.message.Message
    set_aside: list[tuple[int, int]]
    addresses: dict[str, list[tuple[str, str]]]  # from, to, cc, reply-to: (name, address)
    defects: list[str]
    hint: str | None  # a charset the message declares, for text that has none


def _tree(raw: bytes, max_parts: int, max_depth: int, reader: Reader
          ) -> tuple[_Tree, int, int]:
    """The compat32 tree of `raw` with its address lists and defects, its depth and
    number of parts; MessageRejected when it is too deep or has too many parts."""
    skeleton, set_aside = set_aside_large_bodies(raw, max_parts)
    try:
        msg = _message_from_bytes(skeleton)
    except RecursionError as exc:
        raise MessageRejected("MIME nesting too deep to parse", "limit") from exc
    depth, parts = _depth_and_parts(msg)
    if depth > max_depth:
        raise MessageRejected(f"MIME nesting depth {depth} exceeds {max_depth}", "limit")
    if parts > max_parts:
        raise MessageRejected(f"{parts} MIME parts exceed {max_parts}", "limit")
    defects: list[str] = []
    hint = declared_charset(msg)
    addresses = {name: _address_list(msg, name, defects, reader, hint)
                 for name in ADDRESS_HEADERS}
    for part in msg.walk():
        defects.extend(f"{d.__class__.__name__}: {d.__doc__ or ''}".strip()
                       for d in part.defects[:MAX_DEFECTS])
        if len(defects) >= MAX_DEFECTS:
            break
    return _Tree(msg, set_aside, addresses, defects, hint), depth, parts


def _address_list(msg: email.message.Message, name: str, defects: list[str],
                  reader: Reader, hint: str | None) -> list[tuple[str, str]]:
    """(display name as written, address) of the first `name` header, by mail-parser's
    address scanner (structural recovery, diagnostics). Raw 8-bit bytes are read as
    text first (the scanner would escape them); encoded words are decoded later, in
    the name alone, so that an encoded `<` or `,` never splits an address."""
    values = _raw_headers(msg, name)
    if not values:
        return []
    value = values[0]
    if not value.isascii():
        value = reader.text(value.encode("utf-8", "surrogateescape"), None, hint)
    diagnostics: list[dict] = []
    pairs = get_addresses(value, defects=diagnostics, decode_names=False)
    defects.extend(f"AddressHeaderDefect: {name}: {d.get('reason', '')}"
                   for d in diagnostics[:MAX_DEFECTS])
    return [("" if n == a else n, a) for n, a in pairs if a]




def parse_message(raw: bytes, max_depth: int = 20, max_parts: int = 500) -> ParsedMessage:
    """Parse `raw`; raise MessageRejected when it is too deep, too large or not mail."""
    reader = Reader()
    tree, depth, parts = _tree(raw, max_parts, max_depth, reader)
    hint = tree.hint
    sender = find_sender(tree.msg, tree.addresses["from"], reader, hint)
    notes: list[str] = []
    if sender.address is None or sender.via != "from":
        # a From the stdlib stopped short of outranks Sender, Return-Path and Reply-To
        repaired = repair_headers(raw)
        if repaired is not None:
            again, again_depth, again_parts = _tree(repaired[0], max_parts, max_depth, reader)
            found = find_sender(again.msg, again.addresses["from"], reader, hint)
            if found.address is not None and found.via == "from":
                raw, tree, depth, parts = repaired[0], again, again_depth, again_parts
                sender = Sender(found.name, found.address, note="headers " + repaired[1]
                                + (f"; {found.note}" if found.note else ""))
    msg, set_aside = tree.msg, tree.set_aside

    found = Found()
    Walker(reader, hint, lambda part: _payload_bytes(part, raw, set_aside),
           lambda part: _serialize(part, raw, set_aside)).walk(msg, found)
    html_parts = [_unix_newlines(p).replace("\x00", "") for p in found.html]
    html = sanitize_html("\n".join(html_parts)) if html_parts else None
    text = _unix_newlines(found.text())
    notes.extend(reader.notes[:5])
    reply_to = _addresses(tree.addresses["reply-to"])
    content_type = one_line(msg.get_content_type(), 100).lower()

    headers = {name: [one_line(v, 2000) for v in _all_headers(msg, name, reader, hint)]
               for name in GUARD_HEADERS if msg.get_all(name)}
    defects = [one_line(d, 300) for d in tree.defects[:MAX_DEFECTS]]
    return ParsedMessage(
        message_id=first_message_id(msg.get("Message-ID")),
        # some mailers wrap long ids into encoded words: decode before looking for <ids>
        in_reply_to=message_ids(decode_text_header(msg.get("In-Reply-To"))),
        references=message_ids(" ".join(decode_text_header(v)
                                        for v in msg.get_all("References") or [])),
        subject=one_line(" ".join(_all_headers(msg, "subject", reader, hint)[:1]), 500),
        from_name=clean_display_name(sender.name),
        from_addr=sender.address,
        reply_to=reply_to[0] if reply_to else None,
        to=_addresses(tree.addresses["to"]),
        cc=_addresses(tree.addresses["cc"]),
        delivered_to=[a for v in _all_headers(msg, "Delivered-To") + _all_headers(
            msg, "X-Original-To") if (a := normalize_address(v))],
        date=one_line(msg.get("Date"), 100),
        content_type=content_type,
        report_type=one_line(msg.get_param("report-type") or "", 50).lower()
        if content_type == "multipart/report" else "",
        text=text[:MAX_TEXT],
        html=html[:MAX_TEXT] if html else None,
        attachments=_attachments(found.files),
        headers=headers,
        received_count=len(msg.get_all("Received") or []),
        depth=depth,
        parts=parts,
        defects=defects[:MAX_DEFECTS],
        report=_delivery_report(msg) if content_type == "multipart/report" else None,
        mdn_original_id=_mdn_original_id(msg) if content_type == "multipart/report" else None,
        sender_note=sender.note,
        sender_via=sender.via,
        sender_verified=sender.verified,
        notes=notes,
    )


def parse_or_reject(raw: bytes, max_depth: int = 20, max_parts: int = 500
                    ) -> ParsedMessage | MessageRejected:
    """`parse_message`, with every way it can fail returned as a MessageRejected
    (a worker process hands it back pickled; a bug in the parser keeps the message)."""
    try:
        return parse_message(raw, max_depth, max_parts)
    except MessageRejected as exc:
        return exc
    except MemoryError:
        return MessageRejected("parsing needed more memory than the limit allows", "limit")
    except RecursionError:
        return MessageRejected("MIME nesting too deep to parse", "limit")
    except Exception as exc:  # the parser's bug, reported with the message kept
        return MessageRejected(f"parser failed: {exc.__class__.__name__}: {exc}"[:500], "parse")
