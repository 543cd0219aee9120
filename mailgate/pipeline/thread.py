"""Thread: the ticket this message continues, if any. The ticket its subject token
names and the ticket whose Message-IDs its In-Reply-To/References carry are looked
up here; `mail/threads.py` applies the policy (append, reopen, new, new linked)."""
from __future__ import annotations

from ..mail import threads
from ..mail.threads import Action, Decision
from ..mail.tokens import find_tokens, strip_tokens
from ..models import Ticket
from ..tickets import ticket_by_message_ids, ticket_by_number, view
from .context import Context
from .envelope import Result


def step(ctx: Context) -> Result | None:
    msg, session = ctx.msg, ctx.session
    by_token = _by_token(ctx)
    by_headers, rule = None, ""
    if by_token is None and msg.in_reply_to:
        by_headers, _ = ticket_by_message_ids(session, msg.in_reply_to)
        rule = "In-Reply-To"
    if by_token is None and by_headers is None and msg.references:
        by_headers, _ = ticket_by_message_ids(session, msg.references)
        rule = "References"
    decision = threads.decide(view(session, by_token), view(session, by_headers), rule,
                              ctx.author, ctx.now, ctx.settings.threading)
    ctx.decision = decision
    ctx.ticket = next((t for t in (by_token, by_headers)
                       if decision.ticket and t is not None and t.id == decision.ticket.id),
                      None)
    ctx.trace.append(f"thread: {policy(decision)} — {decision.reason}")
    return None


def policy(decision: Decision) -> str:
    """What the threading policy makes of the message, in words: what becomes of it
    unless a later step says otherwise (the agent step, for a proven agent's answer)."""
    number = decision.ticket.number if decision.ticket else ""
    return {Action.NEW: "new ticket", Action.NEW_LINKED: f"new ticket linked to #{number}",
            Action.APPEND: f"append to #{number}",
            Action.REOPEN: f"reopen #{number}"}[decision.action]


def prefixes(ctx: Context) -> set[str]:
    """The token prefixes of ours: the installation's and every department's."""
    return {ctx.settings.threading.prefix, *ctx.known.prefixes}


def new_ticket_subject(ctx: Context) -> str:
    """A new ticket's subject: the message's without tokens of ours (a mistyped one,
    the one of the ticket a linked ticket follows), as the ticket gets its own."""
    return strip_tokens(ctx.msg.subject, prefixes(ctx)) or "(no subject)"


def _by_token(ctx: Context) -> Ticket | None:
    """The first ticket a valid token in the subject names (ours or a department's prefix)."""
    for number, valid in find_tokens(ctx.msg.subject, prefixes(ctx)):
        if not valid:
            ctx.trace.append(f"thread: token #{number} has a wrong check digit; ignored")
            continue
        ticket = ticket_by_number(ctx.session, number)
        if ticket is not None:
            return ticket
        ctx.trace.append(f"thread: token #{number} names no ticket; ignored")
    return None
