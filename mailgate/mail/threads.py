"""Thread: does this message continue a ticket, reopen it, or start a new one? Pure.

The caller looks up the ticket the subject token names and the ticket whose
stored Message-IDs the In-Reply-To/References point at, and hands both in as
`TicketView`s; `decide()` applies the policy and says why, for the trace.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..config import ThreadingSettings


@dataclass(frozen=True)
class TicketView:
    id: int
    number: str
    status: str
    participants: frozenset[str] = field(default_factory=frozenset)
    closed_at: dt.datetime | None = None


@dataclass(frozen=True)
class Decision:
    action: str  # append | reopen | new | new_linked
    ticket: TicketView | None  # the ticket appended to / reopened / linked from
    rule: str  # what found the ticket: subject token | In-Reply-To | References | none
    reason: str


def decide(token_ticket: TicketView | None, header_ticket: TicketView | None,
           header_rule: str, sender: str | None, now: dt.datetime,
           settings: ThreadingSettings, sender_is_agent: bool = False) -> Decision:
    """Apply the threading policy to the tickets found by token and by headers."""
    if token_ticket is not None:
        ticket, rule = token_ticket, "subject token"
    elif header_ticket is not None:
        ticket, rule = header_ticket, header_rule
    else:
        return Decision("new", None, "none", "no token of ours and no known Message-ID")

    known = sender_is_agent or (sender is not None and sender in ticket.participants)
    if not known and settings.foreign_sender == "new_linked":
        return Decision("new_linked", ticket, rule,
                        f"{sender} is not a participant of #{ticket.number}; "
                        "policy new_linked opens a linked ticket")
    who = "" if known else f" ({sender} not a participant; policy append)"

    if ticket.status == "closed":
        window = dt.timedelta(days=settings.reopen_days)
        if ticket.closed_at is not None and now - ticket.closed_at > window:
            return Decision("new_linked", ticket, rule,
                            f"#{ticket.number} closed more than {settings.reopen_days} days ago")
        return Decision("reopen", ticket, rule, f"reply to closed #{ticket.number} within "
                        f"{settings.reopen_days} days reopens it{who}")
    return Decision("append", ticket, rule, f"{rule} matched #{ticket.number}{who}")
