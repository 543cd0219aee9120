"""Agent: mail from an agent of the department, proven, is an answer, not a ticket.

A From: header is trivially forged, so From alone never makes a message an
agent's. It is an agent's only if From is an active agent of the ticket's
department **and** one proof holds (`proof.py`):
1. In-Reply-To/References carries the signed, unexpired Message-ID of a
   notification we sent that agent (or the department's team address) about this
   ticket (`signing.py`), or
2. an Authentication-Results header written by our own mail boundary shows
   DMARC (or aligned DKIM/SPF) pass for the agent's domain (`mail/authres.py`),
or an admin vouched for it when releasing it from quarantine. An unproven agent
From on a ticket where that address is no participant is held in quarantine; an
admin who releases it as a customer's (`quarantine retry --as customer`) has its
text appended to the ticket it answers, never a new ticket in the agent's name.

A verified agent's reply has its quoted history cut; commands at its top are
applied (`agent_commands.py`); the rest is relayed to the customer (or kept as an
internal note with `#note`). `#new customer@…` to a department opens a ticket on
the customer's behalf. Everyone else goes on to the apply step.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from .. import sla, tickets
from ..errors import MessageRejected, Rejection
from ..mail.commands import split_commands
from ..mail.headers import normalize_address
from ..mail.threads import Action
from ..models import Agent, Ticket
from ..outbound import notify
from ..vocabulary import Outcome, Status
from ..status_labels import shown_change
from .agent_commands import agent_of, apply_commands, report_errors
from .context import Context
from .envelope import Result, Vouch
from .store import store_message
from .thread import new_ticket_subject, policy

log = logging.getLogger("mailgate.pipeline")


def step(ctx: Context) -> Result | None:
    if ctx.automatic:
        return None
    if ctx.envelope.vouched == Vouch.CUSTOMER:
        return _released_as_customers(ctx)
    agent = _agent(ctx)
    if agent is None:
        return None
    ticket = ctx.ticket
    if ticket is not None:
        if ctx.decision.action != Action.APPEND:
            ctx.trace.append(f"agent: an agent's answer, appended to #{ticket.number} "
                             f"(not {policy(ctx.decision)}: that is for customers' mail)")
        notes = handle_reply(ctx, ticket, agent)
    else:
        commands, _ = split_commands(ctx.reply_text)
        new = next((c for c in commands if c.name == "new" and not c.error), None)
        if new is None:
            return None  # an agent writing to a department without #new: an ordinary ticket
        ticket, notes = new_ticket_for_customer(ctx, agent, normalize_address(new.arg))
    sla.refresh(ctx.settings, ticket, ctx.now)
    ctx.trace.extend(notes)
    return ctx.finish(Outcome.APPENDED if ctx.decision.ticket else Outcome.NEW, ticket)


def _agent(ctx: Context) -> Agent | None:
    """The agent whose From this is, if a proof holds; None for everyone else."""
    ticket = ctx.ticket
    department_id = ticket.department_id if ticket else ctx.department_id
    agent = agent_of(ctx.session, ctx.msg.from_addr, department_id) if department_id \
        else None
    if agent is None:
        return None
    how = "an admin (quarantine retry --as agent)" if ctx.envelope.vouched == Vouch.AGENT \
        else ctx.proof.for_agent(tickets.merged_ids(ctx.session, ticket) if ticket else (),
                                 agent.id, agent.email)
    if how is None:
        log.warning("mail with agent From %s but no proof", agent.email,
                    extra={"fields": {"ticket": ticket.number if ticket else None}})
        ctx.trace.append(f"agent: From is agent {agent.email} but nothing proves it")
        if ticket is not None and ctx.msg.from_addr not in ctx.decision.ticket.participants:
            raise MessageRejected(f"From: {agent.email} (an agent) without a signed reference "
                                  "or trusted authentication; held for review",
                                  Rejection.UNVERIFIED, about=(ticket.number, agent.email))
        return None
    ctx.trace.append(f"agent: {agent.email} verified by {how}")
    return agent


def _released_as_customers(ctx: Context) -> None:
    """Mail held as an unproven agent's, released by an admin as a customer's text: it
    is appended to the ticket it answers as customer text — no command runs, nothing
    is relayed, nobody gets an automatic reply — and never opens a ticket."""
    ticket = ctx.ticket
    if ticket is None:
        raise MessageRejected("released as a customer's text, but it answers no ticket",
                              Rejection.UNVERIFIED)
    if ctx.decision.action in (Action.NEW, Action.NEW_LINKED):
        ctx.decision = replace(ctx.decision, action=Action.APPEND)
    ctx.may_autorespond = False
    ctx.trace.append(f"agent: released by an admin as a customer's text (quarantine retry "
                     f"--as customer): {policy(ctx.decision)}, no command run, no "
                     "automatic reply")
    return None


def handle_reply(ctx: Context, ticket: Ticket, agent: Agent) -> list[str]:
    """Store the agent's reply, apply its commands, relay it (unless #note)."""
    session, now = ctx.session, ctx.now
    commands, body = split_commands(ctx.reply_text)
    note = any(c.name == "note" and not c.error for c in commands)
    message, refused = store_message(ctx, ticket, "internal_note" if note else "agent_reply",
                                     text=body)
    message.author_email, message.author_name = agent.email, agent.name or ctx.msg.from_name
    message.direction = "in" if note else "out"
    message.html_body = None  # the original, quotes and all, stays in the raw store
    notes = [f"agent: {agent.email}, {len(commands)} command(s)"]
    relayed = not note and bool(body.strip())
    before = ticket.status
    applied, errors = apply_commands(ctx, ticket, agent, commands, internal=note,
                                     answered=relayed)
    errors += [(f"attachment {name}", reason) for name, reason in refused]
    # a status the commands set (#status, #close) stays; otherwise an answer is "answered"
    explicit_status = any(c.name in ("status", "close") for c in commands if not c.error)
    if relayed:
        session.flush()
        notify.agent_reply(session, ctx.settings, ticket, message, agent, now,
                           status=status_change(ctx.settings, before, ticket.status))
        notes.append("agent: reply relayed to the customer")
        sla.agent_answered(ticket, now)
        if not explicit_status:
            tickets.set_status(session, ticket, Status.ANSWERED, agent.email, now=now)
    elif note:
        notes.append("agent: internal note, not sent to the customer")
    ticket.updated_at = now
    if errors:
        report_errors(ctx, ticket, agent, applied, errors)
        notes.append(f"agent: {len(errors)} command(s) not applied")
    notes.extend(f"command: {line}" for line in applied)
    return notes


def status_change(settings, old: str, new: str) -> dict | None:
    """The status change the commands made (`#status resolved`, `#close`), when it is
    one the customer is told of, for the answer to tell: one mail, so the status never
    arrives before the answer that caused it."""
    shown = shown_change(settings, old, new)
    return {"old": old, "new": shown, "reason": ""} if shown else None


def new_ticket_for_customer(ctx: Context, agent: Agent, customer: str
                            ) -> tuple[Ticket, list[str]]:
    """`#new customer@…`: an agent opens a ticket on a customer's behalf and writes first."""
    contact = tickets.contact_for(ctx.session, customer)
    ticket = tickets.create_ticket(ctx.session, ctx.department_id, contact,
                                   new_ticket_subject(ctx), now=ctx.now)
    ctx.session.flush()
    notes = handle_reply(ctx, ticket, agent)
    return ticket, [f"agent: #new opened #{ticket.number} for {customer}", *notes]
