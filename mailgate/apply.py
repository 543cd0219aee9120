"""Apply: make the pipeline's decision real in the caller's session (no commit here).

Creates the ticket or appends the message, stores accepted attachments, records
refused ones and status changes as events.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from . import tickets
from .config import Settings
from .headers import normalize_address
from .inbound.attachments import screen
from .inbound.commands import split_commands
from .inbound.language import guess_locale
from .inbound.parse import ParsedMessage
from .inbound.quotes import strip_quoted
from .models import Attachment, Contact, Inbound, Message, Ticket
from .storage import Storage
from .threading.resolve import Decision

# A customer's reply moves a ticket that was waiting on them back to the agents.
REOPEN_ON_REPLY = {"answered": "open", "resolved": "open"}


@dataclass
class Applied:
    ticket: Ticket
    message: Message
    created: bool
    refused: list[tuple[str, str]] = field(default_factory=list)  # (filename, reason)
    status_change: tuple[str, str] | None = None


def requester_address(msg: ParsedMessage, noreply: bool) -> str | None:
    """From, except that a no-reply sender's Reply-To speaks for the person behind it."""
    if noreply and msg.reply_to:
        return msg.reply_to
    return msg.from_addr


def customer_closes(text: str, settings: Settings) -> bool:
    """Did the customer write a close word (`#close`, or a localized one) at the top?"""
    commands, _ = split_commands(strip_quoted(text), settings.outbound.close_words)
    return bool(commands) and commands[0].name == "close" and commands[0].error is None


def store_message(session: Session, storage: Storage, settings: Settings, ticket: Ticket,
                  msg: ParsedMessage, author: Contact | None, kind: str, inbound: Inbound | None,
                  automatic: bool, now: dt.datetime, text: str | None = None
                  ) -> tuple[Message, list[tuple[str, str]]]:
    message = Message(
        ticket=ticket, inbound=inbound, direction="in", kind=kind,
        author_email=author.email if author else (msg.from_addr or ""),
        author_name=msg.from_name, message_id=msg.message_id,
        in_reply_to=msg.in_reply_to[0] if msg.in_reply_to else None,
        references=" ".join(msg.references) or None, subject=msg.subject,
        text_body=msg.text if text is None else text, html_body=msg.html, automatic=automatic,
        received_at=now, attachments=[])
    session.add(message)
    accepted, refused = screen(msg.attachments, settings.limits)
    for att in accepted:
        digest = storage.attachments.put(att.data, att.sha256)
        message.attachments.append(Attachment(
            filename=att.filename, stored_name=storage.attachments.relative_path(digest),
            content_type=att.content_type, sniffed_type=att.sniffed_type, size=att.size,
            sha256=digest, content_id=att.content_id, inline=att.inline))
    notes = []
    for att, reason in refused:
        notes.append((att.filename, reason))
        tickets.record_event(session, ticket, "attachment_refused", message.author_email,
                             new=att.filename, detail=reason)
    return message, notes


def _add_cc_participants(session: Session, ticket: Ticket, msg: ParsedMessage,
                         own: set[str], sender: str) -> None:
    for addr in msg.to + msg.cc:
        addr = normalize_address(addr)
        if addr and addr != sender and addr not in own:
            tickets.add_participant(session, ticket, tickets.contact_for(session, addr), "cc")


def apply(session: Session, storage: Storage, settings: Settings, msg: ParsedMessage,
          decision: Decision, department_id: int | None, sender: str, automatic: bool,
          own_addresses: set[str], inbound: Inbound | None, now: dt.datetime) -> Applied:
    """Create or continue a ticket according to `decision`."""
    contact = tickets.contact_for(session, sender, msg.from_name if sender == msg.from_addr
                                  else "")
    if not contact.locale and not automatic:  # answer in the language they write in
        contact.locale = guess_locale(msg.subject, strip_quoted(msg.text))
    status_change = None
    if decision.action in ("new", "new_linked"):
        linked = session.get(Ticket, decision.ticket.id) if decision.ticket else None
        if department_id is None:
            department_id = linked.department_id
        ticket = tickets.create_ticket(session, department_id, contact,
                                       msg.subject or "(no subject)", linked=linked, now=now)
        _add_cc_participants(session, ticket, msg, own_addresses, sender)
        created = True
    else:
        ticket = session.get(Ticket, decision.ticket.id)
        created = False
        target = "open" if decision.action == "reopen" else REOPEN_ON_REPLY.get(ticket.status)
        if not automatic and customer_closes(msg.text, settings):
            target = "closed"
        if target and not automatic:
            old = ticket.status
            if tickets.set_status(session, ticket, target, sender, now=now, detail=(
                    "closed by the customer" if target == "closed" else "customer replied")):
                status_change = (old, target)
        ticket.updated_at = now
    message, refused = store_message(session, storage, settings, ticket, msg, contact,
                                     "customer_reply", inbound, automatic, now)
    return Applied(ticket, message, created, refused, status_change)
