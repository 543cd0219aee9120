"""Writing outbox rows: the one place a mail or SMS is queued, in the caller's transaction.

A row says what to send (kind, template values, locale) and to whom; the sender
(`sender.py`) renders and delivers it later. Suppressed addresses (too many
hard bounces, `bounces.py`) get nothing.

A row is written at once by one INSERT (`INSERT_ROW`), not added to the session
for its next flush: nothing reads it back in the transaction that queues it, and
the unit of work's bookkeeping for it cost more than the statement
(benchmarks/pipeline_profile.py). Its ticket must therefore have an id (a new
ticket is flushed before its mail is queued); `queued_in` says whether the
transaction queued anything, for the caller that wakes the sender after commit.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import Outbox, Suppression, Ticket
from ..signing import mail_host
from .limits import RATE_LIMITED, domain_of

AUTO_REPLIED = {"ack", "status_change", "merged", "rejection", "reminder", "auto_closed",
                "command_refused", "my_tickets", "status_link"}
AUTO_GENERATED = {"new_ticket", "customer_reply", "command_result", "sla_warning",
                  "escalation", "digest", "held"}
SMS_KINDS = {"ack", "agent_reply", "status_change"}


@dataclass(frozen=True)
class Queued:
    """A row written: its channel, kind and recipients."""
    channel: str
    kind: str
    recipients: list[str]


@dataclass(frozen=True, kw_only=True)
class Mail:
    """One mail to queue: its `kind` (the template) and the values it is rendered with,
    who gets it, whose (address, display name) it goes out in, and how it threads.
    `message_id` None: a fresh unsigned one. `rate_network`: the client network whose
    mail caused it, counted by the automatic-reply caps (`limits.py`)."""
    kind: str
    recipients: list[str]
    context: dict
    locale: str
    sender: tuple[str, str]
    ticket: Ticket | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    rate_network: str | None = None


def queue(session: Session, settings: Settings, mail: Mail, now: dt.datetime) -> Queued | None:
    """One outbox row; None when every recipient is suppressed."""
    recipients = [r for r in dict.fromkeys(mail.recipients) if r]
    blocked = suppressed(session, recipients)
    recipients = [r for r in recipients if r not in blocked]
    if not recipients:
        return None
    limited = mail.kind in RATE_LIMITED
    return _write(session, mail.ticket, now, channel="email", kind=mail.kind,
                  locale=mail.locale, recipients=recipients, sender=mail.sender[0],
                  sender_name=mail.sender[1], context=mail.context,
                  message_id=mail.message_id or new_message_id(settings, mail.kind,
                                                               mail.ticket),
                  in_reply_to=mail.in_reply_to, references=mail.references,
                  auto_submitted="auto-replied" if mail.kind in AUTO_REPLIED else
                  "auto-generated" if mail.kind in AUTO_GENERATED else None,
                  rate_key=recipients[0] if limited else None,
                  rate_domain=domain_of(recipients[0]) if limited else None,
                  rate_network=mail.rate_network if limited else None)


def queue_mail(session: Session, settings: Settings, ticket: Ticket | None, kind: str,
               recipients: list[str], context: dict, locale: str, sender: tuple[str, str],
               in_reply_to: str | None = None, references: str | None = None,
               message_id: str | None = None, now: dt.datetime | None = None,
               rate_network: str | None = None) -> Queued | None:
    """`queue` in the spelling `jobs.py` calls (`notify.queue_mail`), kept until it
    builds a `Mail` itself."""
    mail = Mail(ticket=ticket, kind=kind, recipients=recipients, context=context,
                locale=locale, sender=sender, message_id=message_id, in_reply_to=in_reply_to,
                references=references, rate_network=rate_network)
    return queue(session, settings, mail, now or dt.datetime.now(dt.timezone.utc))


def queue_sms(session: Session, ticket: Ticket, kind: str, context: dict, locale: str,
              now: dt.datetime) -> Queued | None:
    """A text to the requester's phone, for the kinds that have one, when their
    department sends SMS."""
    phone = ticket.requester.phone
    if kind not in SMS_KINDS or not phone or not ticket.department.sms_enabled:
        return None
    return _write(session, ticket, now, channel="sms", kind=kind, locale=locale,
                  recipients=[phone], sender="", sender_name="", context=context,
                  message_id=None, in_reply_to=None, references=None, auto_submitted=None,
                  rate_key=None, rate_domain=None, rate_network=None)


# every column a queued row sets, as bind parameters: built once (see limits.CAPS)
INSERT_ROW = insert(Outbox.__table__).values(
    {name: bindparam(name) for name in (
        "ticket_id", "channel", "kind", "locale", "recipients", "sender", "sender_name",
        "context", "message_id", "in_reply_to", "references", "auto_submitted", "rate_key",
        "rate_domain", "rate_network", "status", "attempts", "next_attempt_at",
        "created_at")})
QUEUED_KEY = "mailgate.queued"  # the session.info key of `queued_in`


def _write(session: Session, ticket: Ticket | None, now: dt.datetime, **values) -> Queued:
    if ticket is not None and ticket.id is None:
        raise ValueError("mail about a ticket not yet flushed: it has no number")
    session.execute(INSERT_ROW, {**values, "ticket_id": ticket.id if ticket else None,
                                 "status": "pending", "attempts": 0,
                                 "next_attempt_at": now, "created_at": now})
    _this_transaction(session, QUEUED_KEY)["queued"] = True
    return Queued(values["channel"], values["kind"], values["recipients"])


def queued_in(session: Session) -> bool:
    """Whether the session's transaction queued a row (the sender is woken after it commits)."""
    return bool(_this_transaction(session, QUEUED_KEY))


def _this_transaction(session: Session, key: str) -> dict:
    """A dict kept in `session.info[key]` for the session's current transaction: a new,
    empty one once another transaction has begun."""
    transaction, kept = session.info.get(key, (None, None))
    if transaction is not session.get_transaction():
        kept = {}
        session.info[key] = (session.get_transaction(), kept)
    return kept


# asked for every mail queued: built once (see limits.CAPS)
SUPPRESSED = select(Suppression.address).where(
    Suppression.address.in_(bindparam("addresses", expanding=True)),
    Suppression.suppressed.is_(True))
SUPPRESSED_KEY = "mailgate.suppressed"  # the session.info key of `suppressed`


def suppressed(session: Session, addresses: list[str]) -> set[str]:
    """Those of `addresses` that get nothing. What a transaction has asked is kept for
    it (in `session.info`), so a caller about to queue several mails asks once for all
    their recipients; counting a hard bounce (`bounces.py`) forgets it."""
    known = _this_transaction(session, SUPPRESSED_KEY)
    unknown = [a for a in dict.fromkeys(addresses) if a not in known]
    if unknown:
        found = set(session.scalars(SUPPRESSED, {"addresses": unknown}))
        known.update((address, address in found) for address in unknown)
    return {address for address in addresses if known[address]}


def new_message_id(settings: Settings, kind: str, ticket: Ticket | None) -> str:
    host = mail_host(settings)
    number = ticket.number if ticket is not None and ticket.id else "0"
    return f"<mg.{kind}.{number}.{secrets.token_hex(8)}@{host}>"
