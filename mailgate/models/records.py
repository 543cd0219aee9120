"""What the gateway keeps of its own work: every inbound message, quarantine,
the outbox and suppressions, IMAP poller state, alerts and job runs done once."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    JSON,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow
from .tickets import Ticket


class Inbound(Base):
    """One record per message received, whatever became of it, with its decision trace."""

    __tablename__ = "inbound"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Set on the first delivery only; unique so that racing deliveries of one
    # message cannot both commit a ticket.
    dedup_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    source: Mapped[str] = mapped_column(String(8))
    envelope_from: Mapped[str | None] = mapped_column(String(320))
    envelope_to: Mapped[list] = mapped_column(JSON, default=list)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    outcome: Mapped[str] = mapped_column(String(16))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    trace: Mapped[list] = mapped_column(JSON, default=list)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ticket: Mapped[Ticket | None] = relationship()


class Quarantine(Base):
    """A message that could not be processed; its raw bytes stay in the raw store."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str] = mapped_column(String(8))
    envelope_from: Mapped[str | None] = mapped_column(String(320))
    envelope_to: Mapped[list] = mapped_column(JSON, default=list)
    mailbox_default: Mapped[str | None] = mapped_column(String(64))  # IMAP mailbox's department
    error_class: Mapped[str] = mapped_column(String(32))  # limit | parse | bug
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    resolution: Mapped[str | None] = mapped_column(String(200))


class Outbox(Base):
    """One outgoing message (mail or SMS), written in the transaction of the change that
    causes it; a sender job renders and delivers it, with retries."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"),
                                                  index=True)
    channel: Mapped[str] = mapped_column(String(8))  # email | sms
    kind: Mapped[str] = mapped_column(String(32))  # template name: ack, new_ticket, …
    locale: Mapped[str] = mapped_column(String(16))
    recipients: Mapped[list] = mapped_column(JSON)  # addresses or E.164 numbers
    sender: Mapped[str] = mapped_column(String(320), default="")  # From: address
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    context: Mapped[dict] = mapped_column(JSON)  # plain values for the template
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    auto_submitted: Mapped[str | None] = mapped_column(String(20))
    rate_key: Mapped[str | None] = mapped_column(String(320), index=True)  # automatic replies
    # the client network whose mail caused an automatic reply (outbound/limits.py)
    rate_network: Mapped[str | None] = mapped_column(String(64), index=True)
    rate_domain: Mapped[str | None] = mapped_column(String(255))  # rate_key's domain
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))  # the sender's token
    last_error: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)  # as rendered and sent
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    ticket: Mapped[Ticket | None] = relationship()


# the claim (outbound/claims.py) reads due rows in this order and takes the first it may
Index("ix_outbox_due", Outbox.status, Outbox.next_attempt_at, Outbox.id)
# the hourly caps on automatic replies (outbound/limits.py) count one hour of one key
Index("ix_outbox_rate_key_created", Outbox.rate_key, Outbox.created_at)
Index("ix_outbox_rate_network_created", Outbox.rate_network, Outbox.created_at)
Index("ix_outbox_rate_domain_created", Outbox.rate_domain, Outbox.created_at)


class Suppression(Base):
    """Addresses that bounced hard: counted, and suppressed after repeated hard bounces."""

    __tablename__ = "suppressions"
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SlaAlert(Base):
    """A warning, escalation, reminder or auto-close done for one deadline: at most once."""

    __tablename__ = "sla_alerts"
    __table_args__ = (UniqueConstraint("ticket_id", "kind", "stage", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # first_response | … | waiting
    stage: Mapped[str] = mapped_column(String(20))  # warning | escalation | reminder | closed
    due_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """A periodic job done for a period (e.g. a department's digest for a day): once."""

    __tablename__ = "job_runs"
    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    period: Mapped[str] = mapped_column(String(40), primary_key=True)
    ran_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ImapState(Base):
    """Where the poller of one IMAP account stands: the folder's UIDVALIDITY and last UID done."""

    __tablename__ = "imap_state"
    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    folder: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

