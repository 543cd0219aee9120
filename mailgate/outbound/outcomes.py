"""What became of one delivery attempt: the values the sender's steps hand each other.

A transport or SMS backend answers with one of these instead of raising; the
sender records each kind in its own way (`record.py`). Any OS or network error
while delivering is Temporary; only an answer the standard defines as final
(SMTP 5xx to MAIL, RCPT or DATA; an HTTP 4xx about the text) is Permanent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union


@dataclass(frozen=True)
class Outgoing:
    """One finished mail: `name` is the outbox id, fixed for every attempt."""
    name: str
    envelope_from: str
    recipients: list[str]
    raw: bytes


@dataclass(frozen=True)
class Delivered:
    """Out of our hands. `refused`: recipients the relay refused for good while it
    accepted the others. `staged`: the file transport's file, written but not yet
    renamed into place when the journal saw it. `journalled`: the transport already
    had the delivery journalled at its point of no return."""
    refused: tuple[str, ...] = ()
    note: str | None = None
    staged: Path | None = None
    journalled: bool = False

    @property
    def remark(self) -> str | None:
        """What the outbox row's `last_error` says: the refused recipients, else the note."""
        if self.refused:
            return f"refused: {', '.join(self.refused)}"
        return self.note


@dataclass(frozen=True)
class Temporary:
    """Not delivered; try again later."""
    reason: str


@dataclass(frozen=True)
class Permanent:
    """Refused for good; `recipients` count a hard bounce each."""
    reason: str
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unsendable:
    """Our side cannot build the message (a template or data problem): kept, failed,
    for an admin to fix and retry; nobody's address is blamed."""
    reason: str


@dataclass(frozen=True)
class Unfinished:
    """Journalled as delivered, then the transport could not finish and the journal
    could not take it back (a disk that refuses writes): the journal's replay
    finishes the delivery and records it; the row stays ours meanwhile."""
    reason: str


Outcome = Union[Delivered, Temporary, Permanent, Unsendable, Unfinished]
