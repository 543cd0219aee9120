"""Reports: a bounce or read receipt that names a message of ours but was not sent to
our tagged bounce address (verp.py) becomes an event on its ticket, nothing more.
Anyone can write such a report and quote a Message-ID they saw, so it never
suppresses an address."""
from __future__ import annotations

from sqlalchemy import select

from ..mail.guard import Category
from ..models import Outbox, Ticket
from ..tickets import record_event, ticket_by_message_ids
from ..vocabulary import Outcome
from .context import Context
from .envelope import Result
from .verp import bounce_detail


def step(ctx: Context) -> Result | None:
    category = ctx.verdict.category
    if category not in (Category.BOUNCE, Category.MDN):
        return None
    msg, session = ctx.msg, ctx.session
    original = msg.report.original_message_id if msg.report else msg.mdn_original_id
    sent = session.scalar(select(Outbox).where(Outbox.message_id == original)) \
        if original else None
    ticket = session.get(Ticket, sent.ticket_id) if sent and sent.ticket_id else None
    if ticket is None:
        ticket, _ = ticket_by_message_ids(session, [original] if original else [])
    if ticket is None:
        ctx.trace.append(f"{category}: not about a message of ours")
        return ctx.finish(Outcome.IGNORED, reason=f"{category} not matched")
    if category == Category.BOUNCE:
        record_event(session, ticket, "bounce", msg.from_addr or "",
                     detail=f"unverified: {bounce_detail(msg)}"[:2000])
    else:
        record_event(session, ticket, "read_receipt", msg.from_addr or "")
    ctx.trace.append(f"{category}: recorded on #{ticket.number} (about {original})"
                     + ("; not to our tagged bounce address, so no suppression"
                        if category == Category.BOUNCE else ""))
    return ctx.finish(Outcome.BOUNCE if category == Category.BOUNCE else Outcome.IGNORED,
                      ticket)
