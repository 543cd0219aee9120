"""Thread: does this message continue a ticket, reopen it, or start a new one? Pure.

The caller looks up the ticket the subject token names and the ticket whose
stored Message-IDs the In-Reply-To/References point at, and hands both in as
`TicketView`s; `decide()` applies the policy and says why, for the trace.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from ..config import ThreadingSettings
from ..vocabulary import Status


@dataclass(frozen=True)
class TicketView:
    id: int
    number: str
    status: str
    participants: frozenset[str] = field(default_factory=frozenset)
    closed_at: dt.datetime | None = None


class Action(StrEnum):
    """What becomes of the message: a ticket of its own, or a part of one found."""
    NEW = "new"
    NEW_LINKED = "new_linked"  # a new ticket linked to the one found
    APPEND = "append"
    REOPEN = "reopen"


@dataclass(frozen=True)
class Decision:
    action: Action
    ticket: TicketView | None  # the ticket appended to / reopened / linked from
    rule: str  # what found the ticket: subject token | In-Reply-To | References | none
    reason: str


def decide(token_ticket: TicketView | None, header_ticket: TicketView | None,
           header_rule: str, sender: str | None, now: dt.datetime,
           settings: ThreadingSettings) -> Decision:
    """Apply the threading policy to the tickets found by token and by headers."""
    if token_ticket is not None:
        ticket, rule = token_ticket, "subject token"
    elif header_ticket is not None:
        ticket, rule = header_ticket, header_rule
    else:
        return Decision(Action.NEW, None, "none", "no token of ours and no known Message-ID")

    known = sender is not None and sender in ticket.participants
    if not known and settings.foreign_sender == "new_linked":
        return Decision(Action.NEW_LINKED, ticket, rule,
                        f"{sender} is not a participant of #{ticket.number}; "
                        "policy new_linked opens a linked ticket")
    who = "" if known else f" ({sender} not a participant; policy append)"

    if ticket.status == Status.CLOSED:
        window = dt.timedelta(days=settings.reopen_days)
        if ticket.closed_at is not None and now - ticket.closed_at > window:
            return Decision(Action.NEW_LINKED, ticket, rule,
                            f"#{ticket.number} closed more than {settings.reopen_days} days ago")
        return Decision(Action.REOPEN, ticket, rule, f"reply to closed #{ticket.number} within "
                        f"{settings.reopen_days} days reopens it{who}")
    return Decision(Action.APPEND, ticket, rule, f"{rule} matched #{ticket.number}{who}")
