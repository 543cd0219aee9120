"""The plain values a template about a ticket receives, and whose name the mail goes out in.

Templates never see ORM objects: everything here reads the ticket, its
department and its messages once and returns dicts of strings, numbers and
ISO 8601 dates (`samples.py` shows the shapes).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ..config import Settings
from ..localdates import language
from ..models import Contact, Department, Message, Ticket, iso
from ..service import ALWAYS_UTC
from ..signing import mail_host
from ..tickets import token_for
from ..web.links import status_url


def department_sender(settings: Settings, ticket: Ticket) -> tuple[str, str]:
    """(From address, display name) for mail about `ticket`."""
    return department_sender_for(settings, ticket.department)


def department_sender_for(settings: Settings, department: Department) -> tuple[str, str]:
    """`[outbound] from_address`, else the department's first address (loaded with it,
    `Department.first_address`), else mailgate@ our host name."""
    address = settings.outbound.from_address or department.first_address or \
        f"mailgate@{mail_host(settings)}"
    return address, settings.outbound.from_name or department.name


def locale_for(settings: Settings, contact: Contact | None, ticket: Ticket | None) -> str:
    if contact is not None and contact.locale:
        return language(contact.locale)
    if ticket is not None and ticket.department.locale:
        return language(ticket.department.locale)
    return language(settings.outbound.default_locale)


def timezone_for(settings: Settings, ticket: Ticket) -> str:
    """Dates in mail: the zone of the department's service calendar (its own, else
    `[service.calendar]`), where its working hours and deadlines are; `[outbound]
    timezone` only for a department without one (README says so)."""
    policy = settings.service.policy(ticket.department.key)
    # compared by value: settings reach the delivery workers pickled, as copies
    return policy.timezone if policy.calendar != ALWAYS_UTC else settings.outbound.timezone


def promised_hours(settings: Settings, ticket: Ticket) -> dict:
    """The department's targets for the ticket's priority, told to the customer: hours
    to the first answer and to the resolution (0: none set), and whether they are
    working hours (a service calendar) or plain ones (24/7)."""
    policy = settings.service.policy(ticket.department.key)

    def hours(kind: str) -> float:
        target = policy.target(kind, ticket.priority or "normal")
        return round(target.total_seconds() / 3600, 1) if target else 0

    return {"response_hours": hours("first_response"),
            "resolution_hours": hours("resolution"),
            "working_time": policy.calendar != ALWAYS_UTC}


def ticket_context(session: Session, settings: Settings, ticket: Ticket) -> dict:
    dept = ticket.department
    address, _ = department_sender(settings, ticket)
    return {
        "ticket": {"number": ticket.number, "token": token_for(ticket, settings.threading.prefix),
                   "subject": ticket.subject, "status": ticket.status,
                   "priority": ticket.priority, "category": ticket.category,
                   "department": dept.name, "department_key": dept.key,
                   "created_at": iso(ticket.created_at),
                   "due_at": iso(ticket.first_response_due)},
        "department": {"key": dept.key, "name": dept.name, "address": address,
                       "promise": dept.promise or settings.outbound.response_promise,
                       **promised_hours(settings, ticket)},
        "requester": {"name": ticket.requester.name, "email": ticket.requester.email},
        "close_word": settings.outbound.close_words[0] if settings.outbound.close_words
        else "#close",
        "timezone": timezone_for(settings, ticket),
    }


def reader_context(settings: Settings, ticket: Ticket, reader: Contact,
                   now: dt.datetime) -> dict:
    """What mail to one customer carries for them alone: `status_url`, the ticket's
    status page signed for that reader ("" without `[web] base_url`)."""
    return {"status_url": status_url(settings, ticket.id, reader.id, now)}


def message_context(message: Message) -> dict:
    return {"text": message.text_body or "", "author_name": message.author_name,
            "author_email": message.author_email, "received_at": iso(message.received_at),
            "attachments": [{"filename": a.filename, "size": a.size}
                            for a in message.attachments]}


def attachable(message: Message, limit: int) -> tuple[list[dict], list[dict]]:
    """(files attached to the agents' mail, up to `limit` bytes in all; the others, listed)."""
    files, big, total = [], [], 0
    for att in message.attachments:
        item = {"filename": att.filename, "size": att.size, "sha256": att.sha256,
                "content_type": att.sniffed_type or att.content_type}
        if total + att.size <= limit:
            files.append(item)
            total += att.size
        else:
            big.append({"filename": att.filename, "size": att.size})
    return files, big
