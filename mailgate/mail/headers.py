"""Small pure helpers for header values: one-line text, addresses, Message-IDs, and
the values of a parsed header as they came.

Anything taken from a parsed message that may later become part of a header
(subject, display name, filename) goes through `one_line()` first, so that a
CR/LF, U+2028/U+2029 or an RFC 2047 encoded newline can never start a header.
"""
from __future__ import annotations

import email.message
import re

# Characters that end a line somewhere: CR, LF, VT, FF, NEL, LS, PS; plus
# every other control character, which has no business in a header.
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
# the other control characters: exactly Unicode's category Cc (C0, DEL, C1)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WS = re.compile(r"\s+")
_MSGID = re.compile(r"<([^<>\s]{1,990})>")
_ADDR = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:\[\]]+$")
# a quoted local part that needs no quotes (`"#FAX#*49000783135#"@fax.example`)
_QUOTED_LOCAL = re.compile(r'^"([^"\\\s@<>(),;:]+)"@')


def one_line(value: object, max_len: int = 500) -> str:
    """Text safe to become (part of) a single header line."""
    if value is None:
        return ""
    text = _LINE_BREAKS.sub(" ", str(value))
    text = _CONTROLS.sub(" ", text)
    text = _WS.sub(" ", text).strip()
    if len(text) > max_len:
        text = text[: max_len - 1].rstrip() + "…"
    return text


def safe_filename(value: object, max_len: int = 200) -> str:
    """A display name for an attachment: one line, no path, no leading dots."""
    name = one_line(value, max_len=1_000_000)
    name = re.split(r"[/\\]", name)[-1].strip().lstrip(".")
    if len(name) > max_len:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:20] if dot else ""
        name = (stem if dot else name)[: max_len - len(ext) - 2] + ("…." + ext if ext else "…")
    return name or "attachment"


def normalize_address(value: object) -> str | None:
    """Lower-cased `local@domain`, or None when it is not an address."""
    addr = one_line(value, max_len=320).strip("<> ").lower()
    addr = _QUOTED_LOCAL.sub(r"\1@", addr)  # RFC 5321 4.1.2: the same mailbox unquoted
    return addr if _ADDR.match(addr) else None


def split_plus(address: str) -> tuple[str, str | None]:
    """`support+billing@x` -> (`support@x`, `billing`)."""
    local, _, domain = address.partition("@")
    base, plus, tag = local.partition("+")
    return (f"{base}@{domain}", tag or None) if plus else (address, None)


def message_ids(value: object) -> list[str]:
    """All `<id>` tokens of a Message-ID / In-Reply-To / References value, in order."""
    if not value:
        return []
    return [f"<{m}>" for m in _MSGID.findall(str(value))]


def first_message_id(value: object) -> str | None:
    """The Message-ID of a header value; bare ids (no brackets) are accepted too."""
    ids = message_ids(value)
    if ids:
        return ids[0]
    bare = one_line(value, max_len=990)
    return f"<{bare}>" if bare and " " not in bare else None


def raw_headers(msg: email.message.Message, name: str) -> list[str]:
    """The values of header `name` (lower case) as parsed, raw 8-bit bytes kept
    (surrogate escapes)."""
    return [v for k, v in msg.raw_items() if k.lower() == name]
