"""Dedup: a message seen before (redelivered, or fetched twice) changes nothing again."""
from __future__ import annotations

from sqlalchemy import select

from ..mail.parse import ParsedMessage
from ..mail.precheck import header_block
from ..models import Inbound, Ticket
from ..storage import sha256_hex
from ..vocabulary import Outcome
from .context import Context
from .envelope import Result


def dedup_key(msg: ParsedMessage, raw: bytes) -> str:
    """The identity of a message across transports and redeliveries.

    The Message-ID together with sender, date and subject: the same message seen
    twice carries all four unchanged, while a broken mailer that stamps every
    message with one constant Message-ID still gets each of them through. Without
    a Message-ID the body bytes stand in for it.
    """
    basis = "\0".join([msg.message_id or "", msg.from_addr or "", msg.date, msg.subject])
    if msg.message_id:
        return "m:" + sha256_hex(basis.encode("utf-8", "replace"))
    body = raw[len(header_block(raw)):]
    return "c:" + sha256_hex(basis.encode("utf-8", "replace") + b"\0" + body)


def step(ctx: Context) -> Result | None:
    key = dedup_key(ctx.msg, ctx.raw)
    earlier = ctx.session.scalar(select(Inbound).where(Inbound.dedup_key == key))
    if earlier is None:
        ctx.record.dedup_key = key
        return None
    ctx.trace.append(f"dedup: same {'Message-ID' if key[0] == 'm' else 'content'} as "
                     f"inbound #{earlier.id} ({earlier.outcome})")
    ticket = ctx.session.get(Ticket, earlier.ticket_id) if earlier.ticket_id else None
    return ctx.finish(Outcome.DUPLICATE, ticket)
