"""Queue outgoing mail and SMS in the caller's transaction (the outbox), never send here.

A ticket change and the mail it causes commit together: a ticket never exists
without its acknowledgement queued, and a rolled-back change sends nothing. The
sender job (`sender.py`) renders and delivers later. Contexts are plain values.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..mail.attachments import refused_views
from ..localdates import language
from ..service import ALWAYS_UTC
from ..models import Address, Agent, Contact, Department, Message, Outbox, Participant, Suppression, Ticket
from ..signing import TEAM, Reader, signer_for, visible_to
from ..tickets import token_for
from .reflect import reflected, safe_name, safe_text

CUSTOMER_FACING = {"ack", "agent_reply", "status_change", "rejection", "reminder",
                   "auto_closed", "command_refused"}
AUTO_REPLIED = {"ack", "status_change", "rejection", "reminder", "auto_closed",
                "command_refused"}
AUTO_GENERATED = {"new_ticket", "customer_reply", "command_result", "sla_warning",
                  "escalation", "digest", "held"}
SMS_KINDS = {"ack", "agent_reply", "status_change"}
RATE_LIMITED = {"ack", "rejection", "held", "command_refused"}


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def new_message_id(settings: Settings, kind: str, ticket: Ticket | None) -> str:
    host = settings.outbound.hostname or settings.gateway.hostname
    number = ticket.number if ticket is not None and ticket.id else "0"
    return f"<mg.{kind}.{number}.{secrets.token_hex(8)}@{host}>"


def department_sender(session: Session, settings: Settings, ticket: Ticket) -> tuple[str, str]:
    """(From address, display name) for mail about `ticket`."""
    return department_sender_for(session, settings, ticket.department)


def department_sender_for(session: Session, settings: Settings,
                          department: Department) -> tuple[str, str]:
    # asked several times per message: looked up once per unit of work
    known = session.info.setdefault("department_sender", {})
    if department.id not in known:
        address = settings.outbound.from_address or session.scalar(
            select(Address.address).where(Address.department_id == department.id)
            .order_by(Address.id).limit(1)) or f"mailgate@{settings.gateway.hostname}"
        known[department.id] = (address, settings.outbound.from_name or department.name)
    return known[department.id]


def locale_for(settings: Settings, contact: Contact | None, ticket: Ticket | None) -> str:
    if contact is not None and contact.locale:
        return language(contact.locale)
    if ticket is not None and ticket.department.locale:
        return language(ticket.department.locale)
    return language(settings.outbound.default_locale)


def timezone_for(settings: Settings, ticket: Ticket) -> str:
    """Dates in mail: the department's service calendar, else `[outbound] timezone`."""
    policy = settings.service.policy(ticket.department.key)
    return policy.timezone if policy.calendar is not ALWAYS_UTC else settings.outbound.timezone


def ticket_context(session: Session, settings: Settings, ticket: Ticket) -> dict:
    dept = ticket.department
    address, _ = department_sender(session, settings, ticket)
    return {
        "ticket": {"number": ticket.number, "token": token_for(ticket, settings.threading.prefix),
                   "subject": ticket.subject, "status": ticket.status,
                   "priority": ticket.priority, "category": ticket.category,
                   "department": dept.name, "department_key": dept.key,
                   "created_at": iso(ticket.created_at),
                   "due_at": iso(ticket.first_response_due)},
        "department": {"key": dept.key, "name": dept.name, "address": address,
                       "promise": dept.promise or settings.outbound.response_promise},
        "requester": {"name": ticket.requester.name, "email": ticket.requester.email},
        "close_word": settings.outbound.close_words[0] if settings.outbound.close_words
        else "#close",
        "timezone": timezone_for(settings, ticket),
    }


def message_context(message: Message) -> dict:
    return {"text": message.text_body or "", "author_name": message.author_name,
            "author_email": message.author_email, "received_at": iso(message.received_at),
            "attachments": [{"filename": a.filename, "size": a.size}
                            for a in message.attachments]}


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


def suppressed(session: Session, addresses: list[str]) -> set[str]:
    if not addresses:
        return set()
    return set(session.scalars(select(Suppression.address).where(
        Suppression.address.in_(addresses), Suppression.suppressed.is_(True))))


def network_of(address: str | None) -> str | None:
    """The client network an automatic-reply cap counts: /24 for IPv4, /56 for IPv6."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 56
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def over_rate_limit(session: Session, settings: Settings, address: str,
                    now: dt.datetime, network: str | None = None) -> str | None:
    """Why no automatic reply may go to `address` now (caused by mail from `network`),
    or None: at most `ack_limit_per_hour` to one address, `ack_limit_per_domain` to
    one domain and `ack_limit_per_network` caused by one client network an hour."""
    out = settings.outbound
    hour = Outbox.created_at >= now - dt.timedelta(hours=1)

    def count(*where) -> int:
        return session.scalar(select(func.count()).select_from(Outbox).where(hour, *where))

    if count(Outbox.rate_key == address) >= out.ack_limit_per_hour:
        return f"{address} had {out.ack_limit_per_hour} this hour"
    domain = address.rsplit("@", 1)[-1]
    if count(Outbox.rate_key.like(f"%@{domain}")) >= out.ack_limit_per_domain:
        return f"{domain} had {out.ack_limit_per_domain} this hour"
    if network and count(Outbox.rate_network == network) >= out.ack_limit_per_network:
        return f"mail from {network} caused {out.ack_limit_per_network} this hour"
    return None


def queue_mail(session: Session, settings: Settings, ticket: Ticket | None, kind: str,
               recipients: list[str], context: dict, locale: str, sender: tuple[str, str],
               in_reply_to: str | None = None, references: str | None = None,
               message_id: str | None = None, now: dt.datetime | None = None,
               rate_network: str | None = None) -> Outbox | None:
    """One outbox row; None when every recipient is suppressed."""
    recipients = [r for r in dict.fromkeys(recipients) if r]
    blocked = suppressed(session, recipients)
    recipients = [r for r in recipients if r not in blocked]
    if not recipients:
        return None
    row = Outbox(
        ticket=ticket, channel="email", kind=kind, locale=locale, recipients=recipients,
        sender=sender[0], sender_name=sender[1], context=context,
        message_id=message_id or new_message_id(settings, kind, ticket),
        in_reply_to=in_reply_to, references=references,
        auto_submitted="auto-replied" if kind in AUTO_REPLIED else
        "auto-generated" if kind in AUTO_GENERATED else None,
        rate_key=recipients[0] if kind in RATE_LIMITED else None,
        rate_network=rate_network if kind in RATE_LIMITED else None,
        status="pending", attempts=0, next_attempt_at=now or dt.datetime.now(dt.timezone.utc),
        created_at=now or dt.datetime.now(dt.timezone.utc))
    session.add(row)
    return row


def queue_sms(session: Session, settings: Settings, ticket: Ticket, kind: str,
              contact: Contact, context: dict, locale: str, now: dt.datetime) -> Outbox | None:
    if kind not in SMS_KINDS or not contact.phone or not ticket.department.sms_enabled:
        return None
    row = Outbox(ticket=ticket, channel="sms", kind=kind, locale=locale,
                 recipients=[contact.phone], context=context, status="pending", attempts=0,
                 next_attempt_at=now, created_at=now)
    session.add(row)
    return row


def agent_recipients(ticket: Ticket, only_assignee: bool = False) -> list[str]:
    if only_assignee and ticket.assignee is not None and ticket.assignee.active:
        return [ticket.assignee.email]
    if ticket.department.team_address:
        return [ticket.department.team_address]
    return sorted(a.email for a in ticket.department.agents if a.active)


def to_customer(session: Session, settings: Settings, ticket: Ticket, kind: str,
                context: dict, now: dt.datetime, cc: bool = False,
                answering: Message | None = None, network: str | None = None) -> list[Outbox]:
    """Mail to the requester (and with `cc` to each Cc participant), one mail per
    reader, each with a Message-ID signed for that reader: a reply that carries it
    proves its writer is that customer (`apply.py`). SMS to the requester."""
    requester = ticket.requester
    readers = [requester]
    if cc:
        readers += list(session.scalars(
            select(Contact).join(Participant).where(Participant.ticket_id == ticket.id,
                                                    Participant.role == "cc")
            .order_by(Contact.id)))
    signer = signer_for(settings)
    sender = department_sender(session, settings, ticket)
    rows = []
    for reader in dict.fromkeys(readers):
        locale = locale_for(settings, reader, ticket)
        name = safe_name(reader.name) if kind in AUTO_REPLIED else reader.name
        personal = {**context, "recipient": {"name": name, "email": reader.email,
                                             "role": "customer"}}
        in_reply_to, references = thread_headers(session, ticket, reader, answering)
        rows.append(queue_mail(session, settings, ticket, kind, [reader.email], personal,
                               locale, sender, in_reply_to, references, now=now,
                               message_id=signer.message_id(ticket.id, reader.id,
                                                            Reader.CUSTOMER, now),
                               rate_network=network))
    rows.append(queue_sms(session, settings, ticket, kind, requester,
                          {**context, "recipient": {"name": requester.name,
                                                    "email": requester.email,
                                                    "role": "customer"}},
                          locale_for(settings, requester, ticket), now))
    return [r for r in rows if r is not None]


def _to_agents(session: Session, settings: Settings, ticket: Ticket, kind: str,
               context: dict, now: dt.datetime, only_assignee: bool = False) -> list[Outbox]:
    rows = []
    locale = language(ticket.department.locale or settings.outbound.default_locale)
    sender = department_sender(session, settings, ticket)
    agent_ids = {a.email: a.id for a in ticket.department.agents}
    if ticket.assignee is not None:
        agent_ids[ticket.assignee.email] = ticket.assignee.id
    signer = signer_for(settings)
    for address in agent_recipients(ticket, only_assignee):
        ctx = {**context, "recipient": {"name": "", "email": address, "role": "agent"}}
        # signed: a reply carrying this Message-ID proves it answers our mail (agent_mail.py)
        message_id = signer.message_id(ticket.id, agent_ids.get(address, TEAM), now=now)
        row = queue_mail(session, settings, ticket, kind, [address], ctx, locale, sender,
                         now=now, message_id=message_id)
        if row is not None:
            rows.append(row)
    return rows


# -- what the pipeline and the commands call --------------------------------------

def after_new_ticket(session: Session, settings: Settings, ticket: Ticket, message: Message,
                     may_autorespond: bool, refused: list[tuple[str, str]],
                     now: dt.datetime, network: str | None = None) -> list[str]:
    """Acknowledgement (+ SMS) and rejection notice to the requester, notification to agents.
    `network`: the client network the mail came from (automatic-reply caps).
    Returns trace lines."""
    notes = []
    base = ticket_context(session, settings, ticket)
    limited = over_rate_limit(session, settings, ticket.requester.email, now, network) \
        if may_autorespond else None
    if may_autorespond and not limited:
        # the sender may be forged: repeat nothing of theirs but a cut, defanged subject
        # and name, so an acknowledgement can't carry someone's text to a victim
        safe = reflected(base)
        to_customer(session, settings, ticket, "ack",
                    {**safe, "message": {"attachments": [
                        {"filename": safe_text(a.filename), "size": a.size}
                        for a in message.attachments]}},
                    now, answering=message, network=network)
        notes.append("notify: acknowledgement queued")
        if refused:
            _rejection(session, settings, ticket, safe, refused, now, network)
            notes.append("notify: rejection notice queued")
    elif may_autorespond:
        notes.append(f"notify: no acknowledgement, {limited}")
    else:
        notes.append("notify: automatic mail, no acknowledgement")
    files, big = _attachable(message, settings.outbound.attach_limit)
    rows = _to_agents(session, settings, ticket, "new_ticket",
                      {**base, "message": {**message_context(message),
                                           "refused": refused_views(refused)}, "files": files,
                       "big_attachments": big}, now)
    notes.append(f"notify: {len(rows)} agent notification(s) queued")
    return notes


def after_customer_reply(session: Session, settings: Settings, ticket: Ticket,
                         message: Message, may_autorespond: bool,
                         refused: list[tuple[str, str]], now: dt.datetime,
                         network: str | None = None, refused_command: str = "") -> list[str]:
    """Notify the agents; tell the customer about refused files, and about a command
    (`refused_command`, e.g. "#close") not run because nothing proved the sender."""
    base = ticket_context(session, settings, ticket)
    files, big = _attachable(message, settings.outbound.attach_limit)
    shown = {**message_context(message), "refused": refused_views(refused)}
    if refused_command:
        shown["unverified"] = refused_command
    rows = _to_agents(session, settings, ticket, "customer_reply",
                      {**base, "message": shown, "files": files,
                       "big_attachments": big}, now, only_assignee=True)
    notes = [f"notify: {len(rows)} agent notification(s) queued"]
    if not (refused or refused_command) or not may_autorespond:
        return notes
    author = message.author_email
    limited = over_rate_limit(session, settings, author, now, network)
    if limited:
        notes.append(f"notify: no notice to the customer, {limited}")
        return notes
    if refused:
        _rejection(session, settings, ticket, reflected(base), refused, now, network)
        notes.append("notify: rejection notice queued")
    if refused_command:
        _command_refused(session, settings, ticket, base, author, refused_command, now,
                         network)
        notes.append(f"notify: {author} told that {refused_command} was not run")
    return notes


def status_changed(session: Session, settings: Settings, ticket: Ticket, old: str, new: str,
                   reason: str = "", now: dt.datetime | None = None) -> list[Outbox]:
    """Status mail to the requester when the change is one the admin made customer-visible."""
    now = now or dt.datetime.now(dt.timezone.utc)
    shown = "reopened" if old in ("resolved", "closed") and new == "open" else new
    if shown not in settings.outbound.notify_statuses:
        return []
    context = {**ticket_context(session, settings, ticket),
               "status": {"old": old, "new": shown, "reason": reason or ""}}
    return to_customer(session, settings, ticket, "status_change", context, now)


def to_agent(session: Session, settings: Settings, ticket: Ticket, agent: Agent, kind: str,
             extra: dict, now: dt.datetime) -> Outbox | None:
    """Mail about `ticket` to one agent. Its Message-ID is signed like every
    notification, so answering it is a verified reply (agent_mail.py)."""
    context = {**ticket_context(session, settings, ticket), **extra,
               "recipient": {"name": agent.name, "email": agent.email, "role": "agent"}}
    return queue_mail(session, settings, ticket, kind, [agent.email], context,
                      locale_for(settings, None, ticket),
                      department_sender(session, settings, ticket), now=now,
                      message_id=signer_for(settings).message_id(ticket.id, agent.id, now=now))


def held_for_review(session: Session, settings: Settings, ticket: Ticket, agent: Agent,
                    quarantine_id: int, now: dt.datetime) -> Outbox | None:
    """To the agent whose From was on mail held as unverified (pipeline._tell_agent_held)."""
    if over_rate_limit(session, settings, agent.email, now):
        return None
    return to_agent(session, settings, ticket, agent, "held",
                    {"quarantine_id": quarantine_id}, now)


def agent_reply(session: Session, settings: Settings, ticket: Ticket, message: Message,
                agent: Agent, now: dt.datetime) -> list[Outbox]:
    """Relay an agent's answer to the requester and the Cc participants."""
    context = {**ticket_context(session, settings, ticket),
               "message": message_context(message),
               "agent": {"name": agent.name, "email": agent.email}}
    return to_customer(session, settings, ticket, "agent_reply", context, now, cc=True)


def _rejection(session, settings, ticket, base, refused, now, network=None) -> None:
    context = {**base, "refused": [{"filename": safe_text(f), "reason": r} for f, r in refused],
               "reason": "", "limit_bytes": settings.limits.max_attachment_size}
    to_customer(session, settings, ticket, "rejection", context, now, network=network)


def _command_refused(session, settings, ticket, base, author, command, now, network) -> None:
    """A short notice to the participant whose command we did not run (to them only;
    a stranger's command is just text, and they get nothing)."""
    reader = session.scalar(select(Contact).join(Participant).where(
        Contact.email == author, Participant.ticket_id == ticket.id))
    if reader is None:
        return
    context = {**reflected(base), "command": command,
               "recipient": {"name": safe_name(reader.name), "email": reader.email,
                             "role": "customer"}}
    queue_mail(session, settings, ticket, "command_refused", [reader.email], context,
               locale_for(settings, reader, ticket), department_sender(session, settings, ticket),
               now=now, message_id=signer_for(settings).message_id(ticket.id, reader.id,
                                                                   Reader.CUSTOMER, now),
               rate_network=network)


def _attachable(message: Message, limit: int) -> tuple[list[dict], list[dict]]:
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
