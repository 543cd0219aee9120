"""Dedup: a message seen before (redelivered, or fetched twice) changes nothing again.

A message is the same when its Message-ID, sender, date, subject *and* body are:
two different messages under one Message-ID (a broken mailer's constant id, or
someone reusing another's) are both kept, and the ticket of the first records
that its id came again (`duplicate_id`).
"""
from __future__ import annotations

import re

from sqlalchemy import and_, bindparam, or_, select

from ..mail.parse import ParsedMessage
from ..mail.precheck import header_block
from ..models import Inbound, Ticket
from ..storage import sha256_hex
from ..tickets import record_event
from ..vocabulary import Outcome
from .context import Context
from .envelope import Result

_LINE_END = re.compile(rb"\r\n|\r")


def dedup_key(msg: ParsedMessage, raw: bytes) -> str:
    """The identity of a message across transports and redeliveries: its Message-ID,
    sender, date and subject with the digest of its body (`body_digest`). A message
    without a Message-ID is known by the rest alone."""
    digest = sha256_hex(_basis(msg) + b"\0" + body_digest(raw).encode())
    return ("m:" if msg.message_id else "c:") + digest


def body_digest(raw: bytes) -> str:
    """The body's digest, the same however the message travelled: only what follows
    the header block (every hop adds its Received:, transports add Return-Path or
    Delivered-To), with LF line ends (SMTP and IMAP speak CRLF, a pipe LF) and
    without the blank lines around it (a hop may add or drop the final newline)."""
    return sha256_hex(_LINE_END.sub(b"\n", raw[len(header_block(raw)):]).strip())


def legacy_key(msg: ParsedMessage, raw: bytes) -> str:
    """The key written before the body counted for mail with a Message-ID (up to
    2026-12): a message recorded then is still found when it comes again."""
    if msg.message_id:
        return "m:" + sha256_hex(_basis(msg))
    return "c:" + sha256_hex(_basis(msg) + b"\0" + raw[len(header_block(raw)):])


def _basis(msg: ParsedMessage) -> bytes:
    return "\0".join([msg.message_id or "", msg.from_addr or "", msg.date,
                      msg.subject]).encode("utf-8", "replace")


def step(ctx: Context) -> Result | None:
    key = dedup_key(ctx.msg, ctx.raw)
    keys = (key, legacy_key(ctx.msg, ctx.raw))
    earlier = _earlier(ctx, keys)
    if earlier is None or earlier.dedup_key not in keys:
        ctx.record.dedup_key = key
        if earlier is not None:
            _same_id_other_content(ctx, earlier)
        return None
    ctx.trace.append(f"dedup: same {'Message-ID and content' if key[0] == 'm' else 'content'} "
                     f"as inbound #{earlier.id} ({earlier.outcome})")
    ticket = ctx.session.get(Ticket, earlier.ticket_id) if earlier.ticket_id else None
    return ctx.finish(Outcome.DUPLICATE, ticket)


# Built once, with bind parameters (building and cache-keying them per message cost
# more CPU than running them): the row under one of the message's two dedup keys,
# and that row else the first under its Message-ID.
_SAME = Inbound.dedup_key.in_([bindparam("key"), bindparam("legacy")])
SAME_CONTENT = select(Inbound).where(_SAME).limit(1)
SAME_CONTENT_OR_ID = select(Inbound).where(or_(_SAME, and_(
    Inbound.message_id == bindparam("message_id"), Inbound.dedup_key.is_not(None)))
).order_by(_SAME.desc(), Inbound.id).limit(1)


def _earlier(ctx: Context, keys: tuple[str, str]) -> Inbound | None:
    """In one statement: the inbound row this message repeats (its dedup key), else
    the first row that came under its Message-ID with other content, else None."""
    key, legacy = keys
    if not ctx.msg.message_id:
        return ctx.session.scalar(SAME_CONTENT, {"key": key, "legacy": legacy})
    return ctx.session.scalar(SAME_CONTENT_OR_ID, {"key": key, "legacy": legacy,
                                                   "message_id": ctx.msg.message_id})


def _same_id_other_content(ctx: Context, first: Inbound) -> None:
    """Another message came under this Message-ID before (`first`), with other
    content: this one goes its own way, and the ticket of the first records that
    its id came again."""
    msg = ctx.msg
    ticket = ctx.session.get(Ticket, first.ticket_id) if first.ticket_id else None
    ctx.trace.append(f"dedup: Message-ID also on inbound #{first.id}"
                     + (f" (#{ticket.number})" if ticket else "")
                     + " with other content: kept as a message of its own")
    if ticket is not None:
        record_event(ctx.session, ticket, "duplicate_id", msg.from_addr or "",
                     new=msg.message_id[:200],
                     detail=f"another message came with this Message-ID and other content "
                            f"(from {msg.from_addr or '-'}, subject {msg.subject[:200]!r}); "
                            "it was kept as a message of its own")
