"""The data model: one schema for SQLite and PostgreSQL.

Times are stored as UTC and always come back timezone-aware.
Schema changes go through Alembic (mailgate/migrations); `tests/test_schema.py`
checks that the migrations produce exactly these tables.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    LargeBinary,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .mail.tokens import ticket_number


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(value: dt.datetime | None) -> str | None:
    """A stored time as ISO 8601 for JSON and templates (None stays None)."""
    return value.isoformat() if value else None


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime}


agent_departments = Table(
    "agent_departments",
    Base.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)


class Department(Base):
    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str | None] = mapped_column(String(16))
    locale: Mapped[str | None] = mapped_column(String(16))
    team_address: Mapped[str | None] = mapped_column(String(320))  # instead of each agent
    promise: Mapped[str | None] = mapped_column(Text)  # response promise in acknowledgements
    sms_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list[Address]] = relationship(back_populates="department")
    agents: Mapped[list[Agent]] = relationship(secondary=agent_departments,
                                               back_populates="departments")


class Address(Base):
    """An address that routes to a department; stored lower-case."""

    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"),
                                               index=True)
    department: Mapped[Department] = relationship(back_populates="addresses")


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    departments: Mapped[list[Department]] = relationship(secondary=agent_departments,
                                                         back_populates="agents")


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    subject: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    category: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    # service-level deadlines (sla.py), in working time of the department's calendar
    first_response_due: Mapped[dt.datetime | None] = mapped_column(index=True)
    next_response_due: Mapped[dt.datetime | None] = mapped_column(index=True)
    resolution_due: Mapped[dt.datetime | None] = mapped_column(index=True)
    next_response_start: Mapped[dt.datetime | None]  # customer waiting since
    paused_since: Mapped[dt.datetime | None]  # waiting on the customer since
    paused_working: Mapped[float] = mapped_column(default=0.0)  # working seconds waited

    department: Mapped[Department] = relationship()
    requester: Mapped[Contact] = relationship()
    assignee: Mapped[Agent | None] = relationship()
    messages: Mapped[list[Message]] = relationship(back_populates="ticket",
                                                   order_by="Message.id")
    events: Mapped[list[TicketEvent]] = relationship(back_populates="ticket",
                                                     order_by="TicketEvent.id")
    participants: Mapped[list[Participant]] = relationship(back_populates="ticket")

    @property
    def number(self) -> str:
        """The public number: derived from the id, with a check digit (mail/tokens.py)."""
        return ticket_number(self.id)


class Participant(Base):
    """Who may write on a ticket besides agents: the requester and Cc'd contacts."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("ticket_id", "contact_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # requester | cc
    ticket: Mapped[Ticket] = relationship(back_populates="participants")
    contact: Mapped[Contact] = relationship()


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    kind: Mapped[str] = mapped_column(String(20))
    author_email: Mapped[str] = mapped_column(String(320), default="")
    author_name: Mapped[str] = mapped_column(String(200), default="")
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(500), default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str | None] = mapped_column(Text)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    inbound: Mapped[Inbound | None] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(back_populates="message",
                                                         order_by="Attachment.id")


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"),
                                            index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")  # as sent, metadata only
    stored_name: Mapped[str] = mapped_column(String(100))  # path inside the store
    content_type: Mapped[str] = mapped_column(String(100), default="")  # declared
    sniffed_type: Mapped[str] = mapped_column(String(100), default="")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_id: Mapped[str | None] = mapped_column(String(255))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[Message] = relationship(back_populates="attachments")


class TicketEvent(Base):
    """A change on a ticket: status, priority, department, link, refusal, bounce."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(320), default="")
    old_value: Mapped[str | None] = mapped_column(String(200))
    new_value: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ticket: Mapped[Ticket] = relationship(back_populates="events")


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


Index("ix_outbox_due", Outbox.status, Outbox.next_attempt_at)


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


Index("ix_tickets_requester_status", Ticket.requester_id, Ticket.status)
