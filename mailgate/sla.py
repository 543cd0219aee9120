"""Deadlines of a ticket in working time: computed from its state, stored on the ticket.

`refresh()` is called after anything that changes a ticket (the pipeline, an
agent's reply or commands, the command line, the jobs). It is idempotent and
derives everything from the ticket's state, so every caller gets the same rules:

- first response: `created_at` + the target, until the first agent answer;
- next response: from the customer's message that is waiting for an answer
  (`next_response_start`) + the target, until the agent answers;
- resolution: `created_at` + the target + the working time spent waiting on the
  customer; paused while the ticket is `answered` (`paused_since`) and resumed
  when they reply.

A priority or department change recomputes with the new target and calendar; a
priority without a target of its own takes a lower one's (`Policy.target`).
"""
from __future__ import annotations

import datetime as dt

from .config import Settings
from .models import Ticket
from .service import Policy

WAITING_ON_CUSTOMER = "answered"
DONE = ("resolved", "closed")


def policy_for(settings: Settings, ticket: Ticket) -> Policy:
    return settings.service.policy(ticket.department.key if ticket.department else None)


def refresh(settings: Settings, ticket: Ticket, now: dt.datetime) -> None:
    policy = policy_for(settings, ticket)
    calendar = policy.calendar
    if ticket.status == WAITING_ON_CUSTOMER:
        if ticket.paused_since is None:
            ticket.paused_since = now
    elif ticket.paused_since is not None:
        waited = calendar.working_between(ticket.paused_since, now)
        ticket.paused_working = (ticket.paused_working or 0.0) + waited.total_seconds()
        ticket.paused_since = None

    def due(kind: str, start: dt.datetime | None, extra: float = 0.0) -> dt.datetime | None:
        target = policy.target(kind, ticket.priority)
        if target is None or start is None:
            return None
        return calendar.add_working(start, target + dt.timedelta(seconds=extra)) \
            .astimezone(dt.timezone.utc)

    open_ = ticket.status not in DONE
    ticket.first_response_due = due("first_response", ticket.created_at) \
        if open_ and ticket.first_response_at is None else None
    ticket.next_response_due = due("next_response", ticket.next_response_start) \
        if open_ and ticket.status != WAITING_ON_CUSTOMER else None
    ticket.resolution_due = due("resolution", ticket.created_at, ticket.paused_working or 0.0) \
        if open_ and ticket.status != WAITING_ON_CUSTOMER else None


def customer_waiting(ticket: Ticket, now: dt.datetime) -> None:
    """A customer wrote on a ticket that already had an answer: the next-response clock runs."""
    if ticket.first_response_at is not None and ticket.next_response_start is None:
        ticket.next_response_start = now


def agent_answered(ticket: Ticket, now: dt.datetime) -> None:
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.next_response_start = None


def deadlines(ticket: Ticket) -> dict[str, dt.datetime]:
    return {kind: value for kind, value in (
        ("first_response", ticket.first_response_due),
        ("next_response", ticket.next_response_due),
        ("resolution", ticket.resolution_due)) if value is not None}


def overdue(ticket: Ticket, now: dt.datetime) -> bool:
    return any(value <= now for value in deadlines(ticket).values())
