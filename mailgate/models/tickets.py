"""Tickets, their participants, messages, attachments and events."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..mail.tokens import ticket_number
from .base import Base, utcnow
from .people import Agent, Contact, Department


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # set when merged (tickets.merge): the ticket its messages went to; closed since
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    subject: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    category: Mapped[str | None] = mapped_column(String(100))
    product: Mapped[str | None] = mapped_column(String(100))  # [fields] products
    tags: Mapped[list[str] | None] = mapped_column(JSON)  # set by [[rules]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)  # reports
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


Index("ix_tickets_requester_status", Ticket.requester_id, Ticket.status)
