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
from .mail.headers import normalize_address
from .mail.attachments import Refused, screen
from .mail.commands import split_commands
from .mail.language import guess_locale
from .mail.parse import ParsedMessage
from .mail.quotes import strip_quoted
from .models import Attachment, Contact, Inbound, Message, Ticket
from .proof import Proof
from .storage import Storage
from .mail.threads import Decision

# A customer's reply moves a ticket that was waiting on them back to the agents.
REOPEN_ON_REPLY = {"answered": "open", "resolved": "open"}


@dataclass
class Applied:
    ticket: Ticket
    message: Message
    created: bool
    refused: list[tuple[str, str]] = field(default_factory=list)  # (filename, reason)
    status_change: tuple[str, str] | None = None
    refused_command: str = ""  # a command not run: nothing proved its sender
    notes: list[str] = field(default_factory=list)  # for the decision trace


def requester_address(msg: ParsedMessage, noreply: bool) -> str | None:
    """Whom a new ticket answers: From, except that a no-reply sender's Reply-To names
    the person behind it (a web form). Never who the author is (that is From)."""
    if noreply and msg.reply_to:
        return msg.reply_to
    return msg.from_addr


def close_command(text: str, settings: Settings) -> str:
    """The close word (`#close`, or a localized one) the customer wrote at the top, or ""."""
    commands, _ = split_commands(strip_quoted(text), settings.outbound.close_words)
    if commands and commands[0].name == "close" and commands[0].error is None:
        return commands[0].line.strip()
    return ""


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
        notes.append(Refused.of(att, reason))  # unpacks as (filename, reason)
        tickets.record_event(session, ticket, "attachment_refused", message.author_email,
                             old=notes[-1].facts()[:200], new=att.filename, detail=reason)
    return message, notes


def _add_cc_participants(session: Session, ticket: Ticket, msg: ParsedMessage,
                         own: set[str], sender: str) -> None:
    for addr in msg.to + msg.cc:
        addr = normalize_address(addr)
        if addr and addr != sender and addr not in own:
            tickets.add_participant(session, ticket, tickets.contact_for(session, addr), "cc")


def apply(session: Session, storage: Storage, settings: Settings, msg: ParsedMessage,
          decision: Decision, department_id: int | None, sender: str, automatic: bool,
          own_addresses: set[str], inbound: Inbound | None, now: dt.datetime,
          requester: str | None = None, proof: Proof | None = None) -> Applied:
    """Create or continue a ticket according to `decision`. `sender` is the author
    (From); a new ticket's requester is `requester` (From, or a no-reply sender's
    Reply-To). A customer's command runs only when `proof` holds for the author."""
    new = decision.action in ("new", "new_linked")
    whom = (requester or sender) if new else sender
    contact = tickets.contact_for(session, whom, msg.from_name if whom == msg.from_addr
                                  else "")
    if not contact.locale and not automatic:  # answer in the language they write in
        contact.locale = guess_locale(msg.subject, strip_quoted(msg.text))
    status_change, refused_command, notes = None, "", []
    if new:
        linked = session.get(Ticket, decision.ticket.id) if decision.ticket else None
        if department_id is None:
            department_id = linked.department_id
        ticket = tickets.create_ticket(session, department_id, contact,
                                       msg.subject or "(no subject)", linked=linked, now=now)
        _add_cc_participants(session, ticket, msg, own_addresses, contact.email)
        created = True
    else:
        ticket = session.get(Ticket, decision.ticket.id)
        created = False
        target = "open" if decision.action == "reopen" else REOPEN_ON_REPLY.get(ticket.status)
        command = "" if automatic else close_command(msg.text, settings)
        if command:
            how = _customer_proof(proof, decision, contact, ticket)
            if how:
                target = "closed"
                notes.append(f"command: {command} by {sender}, verified by {how}")
            else:
                refused_command = command
                notes.append(f"command: {command} not run: nothing proves {sender} wrote it")
                tickets.record_event(session, ticket, "unverified_command", sender,
                                     new=command[:100], detail="sender not verified")
        if target and not automatic:
            old = ticket.status
            if tickets.set_status(session, ticket, target, sender, now=now, detail=(
                    "closed by the customer" if target == "closed" else "customer replied")):
                status_change = (old, target)
        ticket.updated_at = now
    message, refused = store_message(session, storage, settings, ticket, msg, contact,
                                     "customer_reply", inbound, automatic, now)
    return Applied(ticket, message, created, refused, status_change, refused_command, notes)


def _customer_proof(proof: Proof | None, decision: Decision, contact: Contact,
                    ticket: Ticket) -> str | None:
    """How the author proves a command of theirs: a participant, and a proof (proof.py)."""
    if proof is None or contact.id is None or contact.email not in decision.ticket.participants:
        return None  # `foreign_sender = "append"` never lets a non-participant command
    return proof.for_customer(ticket.id, contact.id, contact.email)
