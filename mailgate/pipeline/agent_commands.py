"""The `#commands` at the top of a verified agent's mail: status, close, priority,
assign, department, cc/uncc, category, merge (`#note` and `#new` are read by agent.py)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import sla, tickets
from ..mail.commands import Command, merge_number
from ..mail.headers import normalize_address
from ..models import Agent, Contact, Department, Participant, Ticket
from ..outbound import notify
from ..vocabulary import Status
from .context import Context


def agent_of(session: Session, address: str | None, department_id: int) -> Agent | None:
    """The active agent with `address` who works in the department, if any. Read from
    the department's agents, which the agents' notification of the same message reads
    again (the Department is in the session since the guard step's directory)."""
    if not address:
        return None
    department = session.get(Department, department_id)
    return next((agent for agent in department.agents
                 if agent.email == address and agent.active), None)


def apply_commands(ctx: Context, ticket: Ticket, agent: Agent, commands: list[Command],
                   internal: bool = False, answered: bool = False
                   ) -> tuple[list[str], list[tuple[str, str]]]:
    """(lines applied, (line, why not) for the others). `answered`: the reply is relayed
    to the customer, and tells them of a status change itself (no status mail)."""
    applied, errors = [], []
    for command in commands:
        if command.name in ("note", "new"):
            continue
        if command.error:
            errors.append((command.line, command.error))
            continue
        problem = _apply(ctx, ticket, agent, command, internal, answered)
        if problem:
            errors.append((command.line, problem))
        else:
            applied.append(command.line)
    return applied, errors


def _apply(ctx: Context, ticket: Ticket, agent: Agent, command: Command,
           internal: bool, answered: bool = False) -> str | None:
    session, name, arg = ctx.session, command.name, command.arg.strip()
    if name in ("status", "close"):
        _set_status(ctx, ticket, agent, Status.CLOSED if name == "close" else arg.lower(),
                    tell=(name == "close" or not internal) and not answered)
    elif name == "priority":
        tickets.set_priority(session, ticket, arg.lower(), agent.email)
    elif name == "assign":
        return _assign(session, ticket, agent, arg)
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
    elif name == "merge":
        return _merge(ctx, ticket, agent, merge_number(arg))
    return None


def _set_status(ctx: Context, ticket: Ticket, agent: Agent, status: str, tell: bool) -> None:
    old = ticket.status
    if tickets.set_status(ctx.session, ticket, status, agent.email, now=ctx.now) and tell:
        notify.status_changed(ctx.session, ctx.settings, ticket, old, status, now=ctx.now)


def _assign(session: Session, ticket: Ticket, agent: Agent, arg: str) -> str | None:
    target = agent if arg.lower() == "me" else agent_of(
        session, normalize_address(arg), ticket.department_id)
    if target is None:
        return f"{arg} is not an active agent of department {ticket.department.key}"
    if ticket.assignee_id != target.id:
        tickets.record_event(session, ticket, "assign", agent.email,
                             ticket.assignee.email if ticket.assignee else None,
                             target.email)
        ticket.assignee = target
    return None


def _merge(ctx: Context, ticket: Ticket, agent: Agent, number: str) -> str | None:
    """`#merge 100023`: this ticket goes into 100023 (or where that one went), of a
    department the agent works in; each requester is told once."""
    target = tickets.ticket_by_number(ctx.session, number)
    if target is None:
        return f"no ticket {number}"
    if agent_of(ctx.session, agent.email, target.department_id) is None:
        return f"#{target.number} is a ticket of department {target.department.key}, " \
               "where you are not an agent"
    try:
        target = tickets.merge(ctx.session, ticket, target, agent.email, ctx.now)
    except tickets.MergeRefused as refused:
        return str(refused)
    sla.refresh(ctx.settings, target, ctx.now)
    notify.merged(ctx.session, ctx.settings, ticket, target, ctx.now)
    return None


def _uncc(session: Session, ticket: Ticket, agent: Agent, address: str) -> str | None:
    row = session.scalar(select(Participant).join(Contact).where(
        Participant.ticket_id == ticket.id, Contact.email == address,
        Participant.role == "cc"))
    if row is None:
        return f"{address} is not in Cc on this ticket"
    session.delete(row)
    tickets.record_event(session, ticket, "uncc", agent.email, old=address)
    return None


def report_errors(ctx: Context, ticket: Ticket, agent: Agent, applied: list[str],
                  errors: list[tuple[str, str]]) -> None:
    """Tell the agent which of their commands were not applied, and why."""
    notify.to_agent(ctx.session, ctx.settings, ticket, agent, "command_result", {
        "errors": [{"line": line, "reason": reason} for line, reason in errors],
        "applied": applied}, ctx.now)
