"""What a transport hands the pipeline with the raw bytes, and what it gets back."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ..vocabulary import Outcome


class Vouch(StrEnum):
    """An admin's word on mail held as an unproven agent's (`quarantine retry --as`)."""
    AGENT = "agent"  # the agent From is genuine
    CUSTOMER = "customer"  # treat it as a customer's mail


@dataclass(frozen=True)
class Envelope:
    source: str  # a vocabulary.Source value: pipe | smtp | lmtp | imap | retry
    mail_from: str | None = None  # None: unknown; "": null reverse-path
    rcpt_to: tuple[str, ...] = ()
    mailbox_default: str = ""  # department of the IMAP mailbox it came from
    vouched: Vouch | None = None  # only an admin's retry sets this, never a transport
    peer: str = ""  # SMTP/LMTP client address
    retried_from: str = ""  # a retried message: the source it first came from


@dataclass
class Result:
    outcome: Outcome
    ticket: str | None = None  # ticket number
    inbound_id: int | None = None
    quarantine_id: int | None = None
    reason: str = ""
    trace: list[str] = field(default_factory=list)
    seconds: float = 0.0
    unusable: bool = False  # not mail at all (exit status 65 for the pipe)
    queued: bool = False  # outgoing mail or SMS was queued: wake the sender
