"""In-Reply-To and References for mail to one reader, built from their side of the thread only.

Every id we put into mail to an agent or to another customer is that reader's
proof (`signing.py`); a customer's mail must never carry one, or its reader
could answer as someone else. An agent's mail about a ticket refers to the
earlier mail about it to that same address, so the ticket is one thread in their
mail client: each of those ids was signed for that agent (or team address) and
that ticket, already theirs, and none signed for anyone else.
"""
from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..models import Contact, Message, Outbox, Ticket
from ..signing import SIGNED, Reader, visible_to

MAX_REFERENCES = 18  # ids kept in References: the newest, and for agents the first


# built once, with bind parameters (see limits.CAPS): the reader's newest message on
# the ticket with an id, and the ticket's outgoing mail in order
LAST_OWN = select(Message).where(
    Message.ticket_id == bindparam("ticket_id"), Message.kind == "customer_reply",
    Message.author_email == bindparam("email"),
    Message.message_id.is_not(None)).order_by(Message.id.desc()).limit(1)
MAIL_ABOUT = select(Outbox.message_id, Outbox.recipients).where(
    Outbox.ticket_id == bindparam("ticket_id"), Outbox.channel == "email").order_by(Outbox.id)


def thread_headers(session: Session, ticket: Ticket, reader: Contact,
                   newest: Message | None = None) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) continuing `reader`'s side of the thread: their own
    newest message on the ticket and what it referred to, less every id we signed for
    someone else. Internal notes, agents' mail and other customers' mail never feed
    it, so no agent's proof reaches a customer. `newest`: the message being
    answered, when the caller holds it (it may not be written yet): theirs when they
    wrote it, else (or when it has no Message-ID) their newest one written before."""
    if newest is not None and newest.kind == "customer_reply" and \
            newest.author_email == reader.email and newest.message_id:
        last = newest
    else:
        last = session.scalar(LAST_OWN, {"ticket_id": ticket.id, "email": reader.email})
    if last is None or not visible_to(last.message_id, reader.id):
        return None, None
    chain = [i for i in (last.references or "").split() if visible_to(i, reader.id)]
    return last.message_id, " ".join(chain[-MAX_REFERENCES:] + [last.message_id])


def agent_thread_headers(session: Session, ticket: Ticket, address: str,
                         agent_id: int) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) continuing the mail about `ticket` sent to `address`
    alone under ids signed for `agent_id` (`signing.TEAM`: a team address): the newest
    is answered, the first (the new ticket's notification) and the latest are referred to."""
    if ticket.id is None:
        return None, None
    rows = session.execute(MAIL_ABOUT, {"ticket_id": ticket.id})
    ids = [mid for mid, recipients in rows
           if recipients == [address] and _signed_for(mid, ticket.id, agent_id)]
    if not ids:
        return None, None
    return ids[-1], " ".join(ids[:1] + ids[1:][-(MAX_REFERENCES - 1):])


def _signed_for(message_id: str | None, ticket_id: int, agent_id: int) -> bool:
    """Is this id one we signed for agent `agent_id` about ticket `ticket_id`?"""
    match = SIGNED.match(message_id or "")
    return match is not None and match.group(1) == Reader.AGENT.value and \
        (int(match.group(2)), int(match.group(3))) == (ticket_id, agent_id)
