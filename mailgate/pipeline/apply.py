"""Apply: make the decision real — create the ticket or append the message, store
accepted attachments, record refused ones and status changes as events.

A notification a program sent (`Category.AUTOMATIC`) opens a ticket marked
automatic, unless its department's `automatic_mail` is "ignore"; other automatic
mail never opens one, and an out-of-office reply on a ticket is recorded there as
an `auto_reply` event, with no status change. A customer's reply moves a ticket
that waited on them back to the agents; their close command (`#close`, or a
localized word) runs only when a proof holds for them (`proof.py`).

A reply is stored with its quoted history cut (`mail/quotes.py`, as for agents):
agents and the status page read what the customer typed; the original, quotes
and all, stays in the raw store (`ticket show --full`). A reply that only quotes
(nothing typed, no file) is a `quote_only` event: stored, no status change, no
notification.
"""
from __future__ import annotations

from .. import tickets
from ..config import Settings
from ..errors import MessageRejected, Rejection
from ..mail.commands import split_commands
from ..mail.guard import Category
from ..mail.headers import normalize_address
from ..mail.language import guess_locale, latin_locale
from ..mail.threads import Action
from ..models import Contact, Ticket
from ..vocabulary import Outcome, Status
from .context import Applied, Context
from .envelope import Result
from .rules import set_fields
from .store import store_message
from .thread import new_ticket_subject

# A customer's reply moves a ticket that was waiting on them back to the agents.
REOPEN_ON_REPLY = {Status.ANSWERED: Status.OPEN, Status.RESOLVED: Status.OPEN}
NEW = (Action.NEW, Action.NEW_LINKED)


def step(ctx: Context) -> Result | None:
    decision = ctx.decision
    refusal = _opens_no_ticket(ctx) if decision.action in NEW else ""
    if refusal:
        return ctx.finish(Outcome.IGNORED, reason=refusal)
    if decision.action in NEW and ctx.route is None and decision.ticket is None:
        raise MessageRejected(f"no department for recipients "
                              f"{[a for a, _ in ctx.candidates]}", Rejection.ROUTE)
    applied = ctx.applied = apply(ctx)
    ctx.ticket = applied.ticket
    if not ctx.msg.sender_verified:
        tickets.record_event(ctx.session, applied.ticket, "sender_unverified", ctx.author,
                             detail=f"sender not verified: {ctx.msg.sender_note}"[:2000])
    for name, reason in applied.refused:
        ctx.trace.append(f"attachment refused: {name}: {reason}")
    if ctx.automatic:
        _record_automatic(ctx, applied)
    return None


def _opens_no_ticket(ctx: Context) -> str:
    """Why this message opens no ticket of its own, or ""."""
    verdict = ctx.verdict
    if not verdict.may_open_ticket:
        return f"{verdict.category} does not open tickets"
    if verdict.category == Category.AUTOMATIC:
        department = ctx.route.department if ctx.route else \
            ctx.ticket.department.key if ctx.ticket else None
        if ctx.settings.routing.department(department).automatic_mail == "ignore":
            return f'automatic mail: automatic_mail = "ignore" for {department or "[routing]"}'
    return ""


def _record_automatic(ctx: Context, applied: Applied) -> None:
    """Mark a ticket an automatic notification opened; record an out-of-office reply
    on the ticket it answers (which it neither reopens nor reports to anyone)."""
    why = "; ".join(ctx.verdict.reasons)[:2000]
    if applied.created:
        tickets.record_event(ctx.session, applied.ticket, "automatic", ctx.author,
                             detail=f"opened by automatic mail: {why}")
    elif ctx.verdict.category == Category.AUTO_REPLY:
        tickets.record_event(ctx.session, applied.ticket, "auto_reply", ctx.author,
                             new=ctx.msg.subject[:200], detail=why)
        ctx.trace.append(f"auto_reply: recorded on #{applied.ticket.number}, "
                         "status unchanged, nobody notified")


def apply(ctx: Context) -> Applied:
    """Create or continue a ticket according to the decision. The author is From; a
    new ticket's requester is From, or a no-reply sender's Reply-To."""
    msg, session = ctx.msg, ctx.session
    new = ctx.decision.action in NEW
    whom = (ctx.requester or ctx.author) if new else ctx.author
    contact = tickets.contact_for(session, whom, msg.from_name if whom == msg.from_addr
                                  else "")
    applied = _new_ticket(ctx, contact) if new else _continue(ctx, contact)
    if not contact.locale and not ctx.automatic:  # answer in the language they write in
        latin = latin_locale(applied.ticket.department.locale)
        contact.locale = guess_locale(msg.subject, ctx.reply_text, latin)
    cut = ctx.decision.action != Action.NEW and not ctx.automatic  # a reply: quotes go
    applied.message, applied.refused = store_message(ctx, applied.ticket, "customer_reply",
                                                     contact, ctx.reply_text if cut else None)
    if cut and ctx.reply_text != msg.text.strip():
        applied.message.html_body = None  # the original, quotes and all, stays in the raw store
        ctx.trace.append("apply: quoted history cut from the stored text")
    return applied


def _new_ticket(ctx: Context, contact: Contact) -> Applied:
    linked = ctx.ticket  # the ticket a new linked one comes from, if any
    department_id = ctx.department_id if ctx.route else linked.department_id
    ticket = tickets.create_ticket(ctx.session, department_id, contact,
                                   new_ticket_subject(ctx), linked=linked,
                                   now=ctx.now)
    own = ctx.own | set(ctx.known.routes)
    for addr in ctx.msg.to + ctx.msg.cc:
        addr = normalize_address(addr)
        if addr and addr != contact.email and addr not in own:
            tickets.add_participant(ctx.session, ticket,
                                    tickets.contact_for(ctx.session, addr), "cc")
    set_fields(ctx, ticket)  # what the customer asked for and the rules set (rules.py)
    return Applied(ticket, None, created=True)


def _continue(ctx: Context, contact: Contact) -> Applied:
    ticket, author = ctx.ticket, ctx.author
    applied = Applied(ticket, None, created=False)
    if _quotes_only(ctx):
        applied.quote_only = True
        tickets.record_event(ctx.session, ticket, "quote_only", author,
                             detail="a reply with nothing typed above the quoted history")
        ctx.trace.append(f"quote_only: recorded on #{ticket.number}, status unchanged, "
                         "nobody notified")
        return applied
    target = Status.OPEN if ctx.decision.action == Action.REOPEN \
        else REOPEN_ON_REPLY.get(ticket.status)
    command = "" if ctx.automatic else close_command(ctx.reply_text, ctx.settings)
    if command:
        how = _customer_proof(ctx, contact, ticket)
        if how:
            target = Status.CLOSED
            ctx.trace.append(f"command: {command} by {author}, verified by {how}")
        else:
            applied.refused_command = command
            ctx.trace.append(f"command: {command} not run: nothing proves {author} wrote it")
            tickets.record_event(ctx.session, ticket, "unverified_command", author,
                                 new=command[:100], detail="sender not verified")
    if target and not ctx.automatic:
        old = ticket.status
        if tickets.set_status(ctx.session, ticket, target, author, now=ctx.now, detail=(
                "closed by the customer" if target == Status.CLOSED else "customer replied")):
            applied.status_change = (old, target)
    ticket.updated_at = ctx.now
    return applied


def _quotes_only(ctx: Context) -> bool:
    """A customer's reply that only quotes: text, none of it new, and no file."""
    msg = ctx.msg
    return not (ctx.automatic or msg.attachments or ctx.new_text or not msg.text.strip())


def close_command(text: str, settings: Settings) -> str:
    """The close word (`#close`, or a localized one) the customer wrote at the top of
    `text` (quotes already cut), or ""."""
    commands, _ = split_commands(text, settings.outbound.close_words)
    if commands and commands[0].name == "close" and commands[0].error is None:
        return commands[0].line.strip()
    return ""


def _customer_proof(ctx: Context, contact: Contact, ticket: Ticket) -> str | None:
    """How the author proves a command of theirs: a participant, and a proof (proof.py)."""
    if contact.id is None or contact.email not in ctx.decision.ticket.participants:
        return None  # `foreign_sender = "append"` never lets a non-participant command
    return ctx.proof.for_customer(tickets.merged_ids(ctx.session, ticket), contact.id,
                                  contact.email)
