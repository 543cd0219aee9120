"""Parse raw bytes into a `ParsedMessage`: plain values only, no database, no I/O.

The steps, each in its own module:
- `tree.py`: the stdlib's compat32 tree within the depth and part limits, large
  file bodies set aside (`setaside.py`), address headers by mail-parser's scanner;
- `senders.py`: an odd From recovered where a person could read it, the header
  block repaired when the stdlib stopped short of it;
- `bodies.py`: the text, HTML and files, part by part, with our own charset
  handling (`charsets.py`); header text decoded the way mail clients do (`words.py`);
- `sanitize.py`: the HTML made safe to show;
- `files.py`: winmail.dat unpacked, every attachment examined (`sniff.py`) and
  hashed, its name cleaned (`names.py`);
- `reports.py`: what a delivery report or read receipt says.
This runs in-process or inside a bounded worker process (`inbound/workers.py`).
"""
from __future__ import annotations

import email.message

from ..errors import MessageRejected, Rejection
from . import words
from .bodies import Found, Walker
from .charsets import Reader
from .files import attachments
from .headers import first_message_id, message_ids, normalize_address, one_line, raw_headers
from .names import clean_display_name
from .parsed import DeliveryReport, ParsedMessage
from .reports import delivery_report, mdn_original_id
from .sanitize import sanitize_html
from .senders import Sender, find_sender, repair_headers
from .tree import Tree, read_tree

# The value types live in parsed.py; the pipeline, apply, agent_mail, gateway, workers and
# outbound/bounces import ParsedMessage and DeliveryReport from here.
__all__ = ["DeliveryReport", "ParsedMessage", "parse_message", "parse_or_reject"]

# Headers the guard and the agent checks look at, kept as decoded one-line values.
GUARD_HEADERS = (
    "auto-submitted", "precedence", "x-autoreply", "x-autorespond", "x-auto-response-suppress",
    "list-id", "list-unsubscribe", "list-post", "return-path", "x-mailgate-loop",
    "x-loop", "authentication-results", "x-failed-recipients", "x-mailgate-outbox",
)
MAX_TEXT = 2_000_000


def parse_message(raw: bytes, max_depth: int = 20, max_parts: int = 500) -> ParsedMessage:
    """Parse `raw`; raise MessageRejected when it is too deep, too large or not mail."""
    reader = Reader()
    tree, sender = _tree_and_sender(raw, max_parts, max_depth, reader)
    msg, hint = tree.msg, tree.hint
    found = Found()
    Walker(reader, hint, tree.set_aside.payload, tree.set_aside.serialize).walk(msg, found)
    content_type = one_line(msg.get_content_type(), 100).lower()
    report = content_type == "multipart/report"
    reply_to = _addresses(tree.addresses["reply-to"])
    return ParsedMessage(
        message_id=first_message_id(msg.get("Message-ID")),
        # some mailers wrap long ids into encoded words: decode before looking for <ids>
        in_reply_to=message_ids(words.decode(msg.get("In-Reply-To"))),
        references=message_ids(" ".join(map(words.decode, msg.get_all("References") or []))),
        subject=one_line(" ".join(_decoded(msg, "subject", reader, hint)[:1]), 500),
        from_name=clean_display_name(sender.name),
        from_addr=sender.address,
        reply_to=reply_to[0] if reply_to else None,
        to=_addresses(tree.addresses["to"]),
        cc=_addresses(tree.addresses["cc"]),
        delivered_to=[a for v in _decoded(msg, "delivered-to") + _decoded(
            msg, "x-original-to") if (a := normalize_address(v))],
        date=one_line(msg.get("Date"), 100),
        content_type=content_type,
        report_type=one_line(msg.get_param("report-type") or "", 50).lower() if report else "",
        text=_unix_newlines(found.text())[:MAX_TEXT],
        html=_html(found.html),
        attachments=attachments(found.files),
        headers={name: [one_line(v, 2000) for v in _decoded(msg, name, reader, hint)]
                 for name in GUARD_HEADERS if msg.get_all(name)},
        received_count=len(msg.get_all("Received") or []),
        report=delivery_report(msg) if report else None,
        mdn_original_id=mdn_original_id(msg) if report else None,
        sender_note=sender.note,
        sender_via=sender.via,
        sender_verified=sender.verified,
        notes=reader.notes[:5],
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
        return MessageRejected("parsing needed more memory than the limit allows",
                               Rejection.LIMIT)
    except RecursionError:
        return MessageRejected("MIME nesting too deep to parse", Rejection.LIMIT)
    except Exception as exc:  # the parser's bug, reported with the message kept
        return MessageRejected(f"parser failed: {exc.__class__.__name__}: {exc}"[:500],
                               Rejection.PARSE)


def _tree_and_sender(raw: bytes, max_parts: int, max_depth: int, reader: Reader
                     ) -> tuple[Tree, Sender]:
    """The tree of `raw` and its sender; when From gave none, the tree of the message
    with its header block repaired, if that gives a From (which outranks Sender,
    Return-Path and Reply-To)."""
    tree = read_tree(raw, max_parts, max_depth, reader)
    sender = find_sender(tree.msg, tree.addresses["from"], reader, tree.hint)
    if sender.address is not None and sender.via == "from":
        return tree, sender
    repaired = repair_headers(raw)
    if repaired is None:
        return tree, sender
    again = read_tree(repaired[0], max_parts, max_depth, reader)
    found = find_sender(again.msg, again.addresses["from"], reader, tree.hint)
    if found.address is None or found.via != "from":
        return tree, sender
    return again, Sender(found.name, found.address, note="headers " + repaired[1]
                         + (f"; {found.note}" if found.note else ""))


def _html(bodies: list[str]) -> str | None:
    """The HTML bodies as one sanitized document, or None when there are none."""
    if not bodies:
        return None
    html = sanitize_html("\n".join(_unix_newlines(b).replace("\x00", "") for b in bodies))
    return html[:MAX_TEXT] if html else None


def _decoded(msg: email.message.Message, name: str, reader: Reader | None = None,
             hint: str | None = None) -> list[str]:
    """The values of header `name` (lower case), decoded as mail clients show them."""
    return [words.decode(v, reader, hint) for v in raw_headers(msg, name)]


def _addresses(pairs: list[tuple[str, str]]) -> list[str]:
    out = []
    for _, address in pairs:
        addr = normalize_address(address)
        if addr and addr not in out:
            out.append(addr)
    return out


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
