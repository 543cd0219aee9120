"""The "my tickets" mail: a customer's tickets, as their `#tickets` request filtered
them, queued as one outbox row in the caller's transaction.

Who asked is From; the list goes to that address only (never to Reply-To, which
anyone can point elsewhere). When the request proved its writer (a Message-ID we
signed for them, or our boundary's Authentication-Results: `proof.py`), the list
shows each ticket's subject; otherwise it shows no text anyone wrote — number,
token, department, category, status and dates only — and says how to get the
subjects: answer this mail (its Message-ID is signed for them), which proves it.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..config import Settings
from ..mail.ticket_query import CLOSED, OPEN, TicketQuery
from ..models import Contact, Department, Participant, Ticket, iso
from ..signing import Reader, signer_for, visible_to
from ..tickets import token_for
from .outbox import Mail, Queued, queue
from .reflect import safe_name, safe_text


def tickets_of(session: Session, contact: Contact, query: TicketQuery,
               limit: int) -> tuple[list[Ticket], int]:
    """(the contact's tickets that match, open ones first, newest first, at most
    `limit`; how many matched in all). Tickets merged into another are left out."""
    where = [Participant.contact_id == contact.id, Ticket.merged_into_id.is_(None)]
    if query.statuses:
        where.append(Ticket.status.in_(sorted(query.statuses)))
    if query.since:
        start = dt.datetime.combine(query.since, dt.time(), dt.timezone.utc)
        where.append(Ticket.created_at >= start)
    if query.category:
        where.append(func.lower(Ticket.category) == query.category.lower())
    matching = select(Ticket.id).join(Participant, Participant.ticket_id == Ticket.id) \
        .where(*where)
    total = session.scalar(select(func.count()).select_from(matching.subquery()))
    closed = Ticket.status.in_(sorted(CLOSED))
    rows = session.scalars(
        select(Ticket).where(Ticket.id.in_(matching))
        .options(selectinload(Ticket.department))
        .order_by(closed, Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))
    return list(rows), total


def categories_of(session: Session, contact: Contact) -> frozenset[str]:
    """The categories of the contact's tickets: words a plain "my tickets" may name."""
    rows = session.scalars(select(Ticket.category).distinct()
                           .join(Participant, Participant.ticket_id == Ticket.id)
                           .where(Participant.contact_id == contact.id,
                                  Ticket.category.is_not(None)))
    return frozenset(c for c in rows if c)


def list_context(settings: Settings, tickets: list[Ticket], total: int,
                 query: TicketQuery, verified: bool, name: str, timezone: str,
                 signature: str = "") -> dict:
    """Plain values for the `my_tickets` templates."""
    return {
        "tickets": [_row(settings, t, verified) for t in tickets],
        "total": total,
        "verified": verified,
        "query": _filters(query),
        "recipient_name": safe_name(name),
        "close_word": settings.outbound.close_words[0] if settings.outbound.close_words
        else "#close",
        "request_word": settings.customers.list_words[0]
        if settings.customers.list_words else "#tickets",
        "timezone": timezone,
        "signature": signature,  # the department written to, signing the mail
    }


def _filters(query: TicketQuery) -> dict:
    """The filters as the mail names them: "open"/"closed" for those sets of statuses;
    `since` at noon UTC, so that its date reads the same in every time zone."""
    state = "open" if query.statuses == OPEN else "closed" if query.statuses == CLOSED else ""
    since = dt.datetime.combine(query.since, dt.time(12), dt.timezone.utc) \
        if query.since else None
    return {"state": state, "statuses": [] if state else sorted(query.statuses),
            "since": iso(since) if since else "", "category": safe_text(query.category, 40),
            "notes": list(query.notes)}


def _row(settings: Settings, ticket: Ticket, verified: bool) -> dict:
    department: Department = ticket.department
    return {"number": ticket.number, "token": token_for(ticket, settings.threading.prefix),
            "subject": safe_text(ticket.subject) if verified else "",
            "department": department.name, "department_key": department.key,
            "category": safe_text(ticket.category or "", 40), "status": ticket.status,
            "created_at": iso(ticket.created_at), "updated_at": iso(ticket.updated_at),
            "closed": ticket.status in CLOSED}


def queue_list(session: Session, settings: Settings, *, address: str,
               contact: Contact | None, locale: str, sender: tuple[str, str],
               context: dict, now: dt.datetime, answering: str | None = None,
               network: str | None = None) -> Queued | None:
    """One `my_tickets` mail to `address` (the request's From). Its Message-ID is
    signed for the contact (ticket 0: about no one ticket), so that answering it
    proves them; `answering`: the request's Message-ID, which it threads on."""
    message_id = signer_for(settings).message_id(0, contact.id, Reader.CUSTOMER, now) \
        if contact is not None else None
    if answering and not visible_to(answering, contact.id if contact else -1):
        answering = None  # an id of ours signed for someone else: never theirs to see
    return queue(session, settings, Mail(
        kind="my_tickets", recipients=[address], context=context, locale=locale,
        sender=sender, message_id=message_id, in_reply_to=answering,
        references=answering, rate_network=network), now)


def contact_by_address(session: Session, address: str) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.email == address))
