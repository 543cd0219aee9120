"""In-Reply-To and References for mail to one customer, built from their side of the thread only.

Every id we put into mail to an agent or to another customer is that reader's
proof (`signing.py`); a customer's mail must never carry one, or its reader
could answer as someone else.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Contact, Message, Ticket
from ..signing import visible_to


def thread_headers(session: Session, ticket: Ticket, reader: Contact,
                   newest: Message | None = None) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) continuing `reader`'s side of the thread: their own
    newest message on the ticket and what it referred to, less every id we signed for
    someone else. Internal notes, agents' mail and other customers' mail never feed
    it, so no agent's proof reaches a customer. `newest`: the message being
    answered, when the caller holds it (a new ticket's first)."""
    if newest is not None and newest.kind == "customer_reply" and \
            newest.author_email == reader.email:
        last = newest if newest.message_id else None
    else:
        last = session.scalar(select(Message).where(
            Message.ticket_id == ticket.id, Message.kind == "customer_reply",
            Message.author_email == reader.email,
            Message.message_id.is_not(None)).order_by(Message.id.desc()).limit(1))
    if last is None or not visible_to(last.message_id, reader.id):
        return None, None
    chain = [i for i in (last.references or "").split() if visible_to(i, reader.id)]
    return last.message_id, " ".join(chain[-18:] + [last.message_id])
