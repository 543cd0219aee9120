"""Agents work from their mail client: who counts as an agent, and what their reply does.

A From: header is trivially forged, so From alone never makes a message an
agent's. It is an agent's only if From is an active agent of the ticket's
department **and** one proof holds:
1. In-Reply-To/References carries the signed, unexpired Message-ID of a
   notification we sent that agent (or the department's team address) about this
   ticket (`signing.py`), or
2. an Authentication-Results header written by our own mail boundary shows
   DMARC (or aligned DKIM/SPF) pass for the agent's domain (`mail/authres.py`).
(`proof.py` checks both.)

A verified agent's reply has its quoted history cut; commands at its top are
applied; the rest is relayed to the customer (or kept as an internal note with
`#note`). Everything runs in the pipeline's transaction.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import sla, tickets
from .apply import store_message
from .config import Settings
from .mail.headers import normalize_address
from .mail.commands import Command, split_commands
from .mail.parse import ParsedMessage
from .mail.quotes import strip_quoted
from .models import Agent, Contact, Department, Inbound, Participant, Ticket
from .outbound import notify
from .signing import TEAM, signer_for
from .storage import Storage

def agent_of(session: Session, address: str | None, department_id: int) -> Agent | None:
    """The active agent with `address` who works in the department, if any."""
    agent = tickets.agent_by_email(session, address)
    if agent is None or not agent.active:
        return None
    return agent if any(d.id == department_id for d in agent.departments) else None


@dataclass
class AgentOutcome:
    ticket: Ticket
    notes: list[str] = field(default_factory=list)


def handle_reply(session: Session, storage: Storage, settings: Settings, msg: ParsedMessage,
                 ticket: Ticket, agent: Agent, inbound: Inbound, now: dt.datetime
                 ) -> AgentOutcome:
    """Store the agent's reply, apply its commands, relay it (unless #note)."""
    commands, body = split_commands(strip_quoted(msg.text))
    note = any(c.name == "note" and not c.error for c in commands)
    kind = "internal_note" if note else "agent_reply"
    message, refused = store_message(session, storage, settings, ticket, msg, None, kind,
                                     inbound, False, now, text=body)
    message.author_email, message.author_name = agent.email, agent.name or msg.from_name
    message.direction = "in" if note else "out"
    message.html_body = None  # the original, quotes and all, stays in the raw store
    outcome = AgentOutcome(ticket, [f"agent: {agent.email}, {len(commands)} command(s)"])
    applied, errors = apply_commands(session, settings, ticket, agent, commands, now,
                                     internal=note)
    errors += [(f"attachment {name}", reason) for name, reason in refused]
    explicit_status = any(c.name == "status" for c in commands if not c.error)
    if not note and body.strip():
        session.flush()
        notify.agent_reply(session, settings, ticket, message, agent, now)
        outcome.notes.append("agent: reply relayed to the customer")
        sla.agent_answered(ticket, now)
        if not explicit_status:
            tickets.set_status(session, ticket, "answered", agent.email, now=now)
    elif note:
        outcome.notes.append("agent: internal note, not sent to the customer")
    ticket.updated_at = now
    if errors:
        _command_result(session, settings, ticket, agent, applied, errors, now)
        outcome.notes.append(f"agent: {len(errors)} command(s) not applied")
    outcome.notes.extend(f"command: {line}" for line in applied)
    return outcome


def apply_commands(session: Session, settings: Settings, ticket: Ticket, agent: Agent,
                   commands: list[Command], now: dt.datetime, internal: bool = False
                   ) -> tuple[list[str], list[tuple[str, str]]]:
    """(lines applied, (line, why not) for the others)."""
    applied, errors = [], []
    for command in commands:
        if command.name in ("note", "new"):
            continue
        if command.error:
            errors.append((command.line, command.error))
            continue
        problem = _apply(session, settings, ticket, agent, command, now, internal)
        if problem:
            errors.append((command.line, problem))
        else:
            applied.append(command.line)
    return applied, errors


def _apply(session, settings, ticket, agent, command: Command, now, internal) -> str | None:
    name, arg = command.name, command.arg.strip()
    if name == "status":
        old = ticket.status
        if tickets.set_status(session, ticket, arg.lower(), agent.email, now=now) \
                and not internal:
            notify.status_changed(session, settings, ticket, old, arg.lower(), now=now)
    elif name == "close":
        old = ticket.status
        if tickets.set_status(session, ticket, "closed", agent.email, now=now):
            notify.status_changed(session, settings, ticket, old, "closed", now=now)
    elif name == "priority":
        tickets.set_priority(session, ticket, arg.lower(), agent.email)
    elif name == "assign":
        target = agent if arg.lower() == "me" else agent_of(
            session, normalize_address(arg), ticket.department_id)
        if target is None:
            return f"{arg} is not an active agent of department {ticket.department.key}"
        if ticket.assignee_id != target.id:
            tickets.record_event(session, ticket, "assign", agent.email,
                                 ticket.assignee.email if ticket.assignee else None,
                                 target.email)
            ticket.assignee = target
    elif name == "department":
        dept = session.scalar(select(Department).where(Department.key == arg))
        if dept is None:
            return f"no department {arg!r}"
        tickets.set_department(session, ticket, dept, agent.email)
    elif name == "cc":
        contact = tickets.contact_for(session, normalize_address(arg))
        session.flush()
        if tickets.add_participant(session, ticket, contact, "cc"):
            tickets.record_event(session, ticket, "cc", agent.email, new=contact.email)
    elif name == "uncc":
        return _uncc(session, ticket, agent, normalize_address(arg))
    elif name == "category":
        tickets.record_event(session, ticket, "category", agent.email, ticket.category, arg)
        ticket.category = arg
    return None


def _uncc(session, ticket, agent, address) -> str | None:
    row = session.scalar(select(Participant).join(Contact).where(
        Participant.ticket_id == ticket.id, Contact.email == address,
        Participant.role == "cc"))
    if row is None:
        return f"{address} is not in Cc on this ticket"
    session.delete(row)
    tickets.record_event(session, ticket, "uncc", agent.email, old=address)
    return None


def _command_result(session, settings, ticket, agent, applied, errors, now) -> None:
    notify.to_agent(session, settings, ticket, agent, "command_result", {
        "errors": [{"line": line, "reason": reason} for line, reason in errors],
        "applied": applied}, now)


def new_ticket_for_customer(session: Session, storage: Storage, settings: Settings,
                            msg: ParsedMessage, agent: Agent, customer: str,
                            department_id: int, inbound: Inbound, now: dt.datetime
                            ) -> AgentOutcome:
    """`#new customer@…`: an agent opens a ticket on a customer's behalf and writes first."""
    contact = tickets.contact_for(session, customer)
    ticket = tickets.create_ticket(session, department_id, contact,
                                   msg.subject or "(no subject)", now=now)
    session.flush()
    outcome = handle_reply(session, storage, settings, msg, ticket, agent, inbound, now)
    outcome.notes.insert(0, f"agent: #new opened #{ticket.number} for {customer}")
    return outcome
