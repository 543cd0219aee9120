"""What the status pages show, read from the database as plain values.

A contact sees a ticket they are a participant of (requester or Cc), and of it
only the public conversation: the customers' messages, as the agents'
notification shows them (`outbound.contexts.message_context`), and the agents'
answers that went out; never internal notes, never mail that went to agents only.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from ..config import Settings
from ..mail.htmltext import html_to_text
from ..models import Attachment, Contact, Message, Participant, Ticket
from ..outbound.contexts import message_context, timezone_for
from ..vocabulary import Status

PUBLIC_KINDS = ("customer_reply", "agent_reply")
OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.IN_PROGRESS, Status.ANSWERED)
LIST_LIMIT = 500  # tickets on one list page, newest first


@dataclass(frozen=True)
class Filters:
    """The list page's filters, already parsed: created on or after `since`, before
    `until` (exclusive), in `category`, with a status in `statuses` (empty: any)."""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    category: str = ""
    statuses: tuple[str, ...] = ()


def contact(session: Session, contact_id: int) -> Contact | None:
    return session.get(Contact, contact_id)


def takes_part(contact_id: int):
    """The condition on tickets: `contact_id` is the requester or a participant."""
    return or_(Ticket.requester_id == contact_id, Ticket.id.in_(
        select(Participant.ticket_id).where(Participant.contact_id == contact_id)))


def visible_ticket(session: Session, ticket_id: int, contact_id: int) -> Ticket | None:
    """The ticket, if `contact_id` takes part in it."""
    return session.scalar(select(Ticket).where(Ticket.id == ticket_id, takes_part(contact_id)))


def public_messages(session: Session, ticket: Ticket) -> list[Message]:
    return list(session.scalars(
        select(Message).where(Message.ticket_id == ticket.id, Message.kind.in_(PUBLIC_KINDS))
        .options(selectinload(Message.attachments)).order_by(Message.received_at, Message.id)))


def message_view(message: Message) -> dict:
    view = message_context(message)
    if not view["text"].strip() and message.html_body:
        view["text"] = html_to_text(message.html_body)
    view["from_agent"] = message.kind == "agent_reply"
    view["attachment_ids"] = [a.id for a in message.attachments]
    return view


def ticket_view(session: Session, settings: Settings, ticket: Ticket) -> dict:
    """The ticket and its public conversation, newest message last."""
    # an agent's mail of commands only, a customer's reply that only quoted: nothing to read
    messages = [message_view(m) for m in public_messages(session, ticket)
                if m.text_body.strip() or m.html_body or m.attachments]
    return {**summary(settings, ticket), "messages": messages}


def summary(settings: Settings, ticket: Ticket) -> dict:
    return {"id": ticket.id, "number": ticket.number, "subject": ticket.subject,
            "status": ticket.status, "category": ticket.category or "",
            "department": ticket.department.name, "department_key": ticket.department.key,
            "priority": ticket.priority,
            "created_at": ticket.created_at, "updated_at": ticket.updated_at,
            "closed_at": ticket.closed_at, "timezone": timezone_for(settings, ticket)}


def contact_tickets(session: Session, settings: Settings, contact_id: int,
                    filters: Filters) -> list[dict]:
    """The contact's tickets that pass `filters`: the open ones first, newest first."""
    query = (select(Ticket).where(takes_part(contact_id))
             .options(selectinload(Ticket.department)))
    if filters.since:
        query = query.where(Ticket.created_at >= filters.since)
    if filters.until:
        query = query.where(Ticket.created_at < filters.until)
    if filters.category:
        query = query.where(Ticket.category == filters.category)
    if filters.statuses:
        query = query.where(Ticket.status.in_(filters.statuses))
    found = session.scalars(query.order_by(Ticket.created_at.desc(), Ticket.id.desc())
                            .limit(LIST_LIMIT))
    rows = [summary(settings, ticket) for ticket in found]
    return sorted(rows, key=lambda row: row["status"] not in OPEN_STATUSES)  # stable


def contact_categories(session: Session, contact_id: int) -> list[str]:
    """The topics the contact's tickets have, for the filter's choices."""
    return sorted(filter(None, session.scalars(
        select(Ticket.category).where(takes_part(contact_id)).distinct())))


def visible_attachment(session: Session, attachment_id: int, contact_id: int
                       ) -> Attachment | None:
    """The attachment, if it belongs to a public message of a ticket the contact takes
    part in."""
    return session.scalar(
        select(Attachment).join(Message).join(Ticket)
        .where(Attachment.id == attachment_id, Message.kind.in_(PUBLIC_KINDS),
               takes_part(contact_id)))


def latest_ticket(session: Session, contact_id: int) -> Ticket | None:
    """The contact's most recent ticket (a fresh list link is mail about it)."""
    return session.scalar(select(Ticket).where(takes_part(contact_id))
                          .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(1))
