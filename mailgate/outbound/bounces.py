"""Delivery failures coming back: match them to what we sent, count hard bounces.

Automatic mail leaves with a VERP envelope sender (`bounces+o42@example.com`:
outbox row 42), so a bounce names the message that failed even when the remote
MTA's report is unreadable. A hard bounce (5.x.x) counts against the address;
after `[outbound] suppress_after` of them the address is suppressed and gets no
more mail. Bounces never open tickets.
"""
from __future__ import annotations

import re

from sqlalchemy.orm import Session

from ..config import Settings
from ..headers import split_plus
from ..models import Suppression, utcnow

_VERP_TAG = re.compile(r"^o(\d{1,18})$")


def is_bounce_address(settings: Settings, address: str | None) -> bool:
    base = settings.outbound.bounce_address.lower()
    return bool(base and address and split_plus(address.lower())[0] == base)


def verp_outbox_id(settings: Settings, addresses: list[str]) -> int | None:
    """The outbox id in the first of `addresses` that is our VERP bounce address."""
    for address in addresses:
        if is_bounce_address(settings, address):
            tag = split_plus(address.lower())[1] or ""
            match = _VERP_TAG.match(tag)
            if match:
                return int(match.group(1))
    return None


def is_hard(status: str, action: str) -> bool:
    return status.startswith("5") or (not status and action == "failed")


def count_hard_bounce(session: Session, settings: Settings, address: str,
                      reason: str) -> Suppression:
    address = address.lower()
    row = session.get(Suppression, address)
    if row is None:
        row = Suppression(address=address, hard_bounces=0, suppressed=False)
        session.add(row)
    row.hard_bounces += 1
    row.last_reason = reason[:1000]
    row.updated_at = utcnow()
    if row.hard_bounces >= settings.outbound.suppress_after:
        row.suppressed = True
    return row
