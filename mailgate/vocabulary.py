"""The words the whole gateway shares: ticket statuses and priorities, where a
message came from, and what became of it. Each is a StrEnum, so the database
keeps the plain string and code compares against the member."""
from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Source(StrEnum):
    """The transport that brought a message in (`retry`: an admin's quarantine retry)."""
    PIPE = "pipe"
    SMTP = "smtp"
    LMTP = "lmtp"
    IMAP = "imap"
    RETRY = "retry"


class Outcome(StrEnum):
    """What became of an inbound message (the `inbound.outcome` column)."""
    NEW = "new"
    APPENDED = "appended"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    TICKET_LIST = "ticket_list"  # a customer's "#tickets": answered with their list, no ticket
    SPAM = "spam"  # an admin's rule says so: kept, never a ticket (guard's spam: quarantine)
    BOUNCE = "bounce"
    QUARANTINED = "quarantined"


STATUSES = tuple(s.value for s in Status)
PRIORITIES = tuple(p.value for p in Priority)
