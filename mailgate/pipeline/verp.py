"""Mail to our VERP bounce address: a bounce or an automatic reply, never a ticket.

The address carries a keyed tag naming the outbox row it was sent for
(`outbound/bounces.py`), so only mail that answers a message we sent can mark it
bounced, and a hard bounce suppresses the addresses we sent it to.
"""
from __future__ import annotations

from ..mail.guard import BOUNCE_LOCALPARTS
from ..mail.parse import ParsedMessage
from ..models import Outbox, Ticket
from ..outbound import bounces
from ..signing import signer_for
from ..tickets import record_event
from ..vocabulary import Outcome
from .context import Context
from .envelope import Result


def step(ctx: Context) -> Result | None:
    msg, settings = ctx.msg, ctx.settings
    verp = bounces.read_verp(settings, signer_for(settings), list(ctx.envelope.rcpt_to)
                             + msg.delivered_to + msg.to, ctx.now)
    if verp is None:
        return None
    if verp.outbox_id is None:
        ctx.trace.append(f"bounce: to {verp.address}, whose tag is missing or wrong; ignored")
        return ctx.finish(Outcome.IGNORED, reason="bounce address without a valid tag")
    sent = ctx.session.get(Outbox, verp.outbox_id)
    if sent is None:
        ctx.trace.append(f"bounce: to our bounce address, outbox {verp.outbox_id} unknown")
        return ctx.finish(Outcome.IGNORED, reason="bounce for unknown outbox id")
    if msg.report is None and msg.content_type != "multipart/report" and \
            BOUNCE_LOCALPARTS.isdisjoint({(msg.from_addr or "").split("@")[0]}):
        ctx.trace.append(f"verp: automatic reply to outbox {verp.outbox_id}, not a bounce")
        return ctx.finish(Outcome.IGNORED, reason="reply to our bounce address")
    return _bounced(ctx, sent)


def _bounced(ctx: Context, sent: Outbox) -> Result:
    msg = ctx.msg
    detail = bounce_detail(msg)
    sent.status, sent.last_error = "bounced", detail[:2000]
    ticket = ctx.session.get(Ticket, sent.ticket_id) if sent.ticket_id else None
    if ticket is not None:
        record_event(ctx.session, ticket, "bounce", msg.from_addr or "", new=sent.kind,
                     detail=f"outbox {sent.id}: {detail}"[:2000])
    if bounces.is_hard(ctx.raw, msg.report):
        for address in sent.recipients:  # what we sent to, never what the report names
            row = bounces.count_hard_bounce(ctx.session, ctx.settings, address, detail)
            ctx.trace.append(f"bounce: hard bounce {row.hard_bounces} for {address}"
                             + (" (now suppressed)" if row.suppressed else ""))
    ctx.trace.append(f"bounce: outbox {sent.id} ({sent.kind})"
                     + (f" on #{ticket.number}" if ticket else ""))
    return ctx.finish(Outcome.BOUNCE, ticket)


def bounce_detail(msg: ParsedMessage) -> str:
    """One line for the event and the outbox row: the report's action, status and reason."""
    report = msg.report
    if report is None:
        return msg.subject
    return (f"{report.action} {report.status} for {', '.join(report.recipients)}: "
            f"{report.diagnostic}").strip()
