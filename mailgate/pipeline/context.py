"""One message on its way through the steps: what came in, and what each step decided.

Steps read what earlier steps wrote and add their own part; the fields below are
in the order the steps fill them. `finish()` writes the message's inbound row and
ends the path with a `Result`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.orm import Session

from ..gateway import Gateway
from ..mail.authres import Boundary
from ..mail.guard import Verdict
from ..mail.parse import ParsedMessage
from ..mail import quotes
from ..mail.route import Route
from ..mail.rules import Ruling
from ..mail.threads import Decision
from ..models import Inbound, Message, Ticket
from ..outbound import outbox
from ..proof import Proof
from ..tickets import Directory
from ..vocabulary import Outcome
from . import write
from .envelope import Envelope, Result


@dataclass
class Applied:
    """What the apply step wrote: the ticket made or continued, and the message."""
    ticket: Ticket
    message: Message
    created: bool
    refused: list[tuple[str, str]] = field(default_factory=list)  # (filename, reason)
    status_change: tuple[str, str] | None = None
    refused_command: str = ""  # a command not run: nothing proved its sender
    quote_only: bool = False  # a reply with nothing new above the history it quotes


@dataclass(eq=False)
class Context:
    session: Session
    gw: Gateway
    msg: ParsedMessage
    raw: bytes
    digest: str  # sha256 of `raw`
    envelope: Envelope
    now: dt.datetime
    record: Inbound  # this message's inbound row, written by finish() (write.py)
    trace: list[str] = field(default_factory=list)
    # the messages stored on tickets (store.py), written by finish() after the record
    stored: list[tuple[Message, Ticket]] = field(default_factory=list)
    # guard
    candidates: list[tuple[str, str]] = field(default_factory=list)  # (address, header)
    known: Directory | None = None  # the departments and the addresses the message names
    own: set[str] = field(default_factory=set)  # our own addresses
    boundary: Boundary = field(default_factory=Boundary)  # what our own boundary wrote
    verdict: Verdict | None = None
    # author
    author: str = ""  # From: whose message it is
    requester: str | None = None  # whom a new ticket answers
    proof: Proof | None = None
    may_autorespond: bool = False
    # route
    route: Route | None = None
    # rules: what the admin's rules decided (apply honours it on a new ticket)
    ruling: Ruling | None = None
    # thread
    decision: Decision | None = None
    ticket: Ticket | None = None  # the ticket the decision names; after apply, the one written
    # apply
    applied: Applied | None = None
    understood: list[dict] = field(default_factory=list)  # fields the customer set, for the ack

    @property
    def settings(self):
        return self.gw.settings

    @property
    def automatic(self) -> bool:
        """Mail a program wrote (notifications, auto-replies, bounces): kept and marked
        automatic, never answered; it decides no language and runs no command."""
        return self.verdict.automatic

    @property
    def quiet(self) -> bool:
        """Automatic mail, or a reply that only quotes, on a ticket that already was:
        stored, but it changes no status, moves no deadline and tells nobody."""
        return (self.automatic or self.applied.quote_only) and not self.applied.created

    @property
    def department_id(self) -> int | None:
        """The routed department's id, if the message was routed."""
        return self.known.department_ids[self.route.department] if self.route else None

    @cached_property
    def new_text(self) -> str:
        """What the writer typed, quoted history cut (quotes.py), computed once; "" when
        they typed nothing of their own."""
        return quotes.new_text(self.msg.text)

    @property
    def reply_text(self) -> str:
        """The text with its quoted history cut; all of it when nothing of it is new."""
        return self.new_text or self.msg.text.strip()

    def finish(self, outcome: Outcome, ticket: Ticket | None = None,
               reason: str = "") -> Result:
        """Write what the steps changed, then the message's own rows (`write.py`), and
        end the message's path."""
        self.record.outcome = outcome.value
        self.record.trace = list(self.trace)
        self.session.flush()  # the ticket, its contacts, participants and events
        inbound_id = write.inbound(self.session, self.record, ticket)
        write.messages(self.session, self.stored, inbound_id)
        return Result(outcome, ticket.number if ticket is not None else None,
                      inbound_id, reason=reason, trace=list(self.trace),
                      queued=outbox.queued_in(self.session))
