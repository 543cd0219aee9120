"""Delivery failures coming back: match them to what we sent, count hard bounces.

Automatic mail leaves with a VERP envelope sender that names its outbox row and
carries a keyed tag of it (`bounces+o42.1a2b3c4d5e6f@example.com`, like SRS or
BATV), so a report names the message that failed even when the remote MTA's
report is unreadable, and nobody can make one up: a report to an untagged or
wrongly tagged address is recorded and ignored. A hard bounce counts against
the address that row was sent to, never against an address the report names;
after `[outbound] suppress_after` of them the address is suppressed and gets no
more mail. Whether a report is permanent is decided by `flufl.bounce` (GNU
Mailman's detectors for DSNs and the many non-standard formats), falling back to
the DSN status we parsed. Bounces never open tickets.
"""
from __future__ import annotations

import datetime as dt
import email
import re
from dataclasses import dataclass

import flufl.bounce
from sqlalchemy.orm import Session

from ..config import Settings
from ..mail.headers import split_plus
from ..mail.parse import DeliveryReport
from ..models import Suppression, utcnow
from ..signing import Signer
from .outbox import SUPPRESSED_KEY

_VERP_TAG = re.compile(r"^o(\d{1,18})(?:\.([0-9a-f]{1,64}))?$")


@dataclass(frozen=True)
class Verp:
    """Mail to our bounce address. `outbox_id` is None when its tag is missing or wrong."""
    address: str
    outbox_id: int | None


def is_bounce_address(settings: Settings, address: str | None) -> bool:
    base = settings.outbound.bounce_address.lower()
    return bool(base and address and split_plus(address.lower())[0] == base)


def verp_address(signer: Signer, bounce_address: str, outbox_id: int) -> str:
    """The envelope sender for outbox row `outbox_id`."""
    local, _, domain = bounce_address.partition("@")
    return f"{local}+o{outbox_id}.{signer.tag(f'o{outbox_id}')}@{domain}"


def read_verp(settings: Settings, signer: Signer, addresses: list[str],
              now: dt.datetime) -> Verp | None:
    """The first of `addresses` that is our bounce address, with its outbox id if the
    tag verifies; None when none of them is our bounce address."""
    for address in addresses:
        if not is_bounce_address(settings, address):
            continue
        match = _VERP_TAG.match(split_plus(address.lower())[1] or "")
        if match and match.group(2) and signer.tag_matches(f"o{match.group(1)}",
                                                           match.group(2), now):
            return Verp(address, int(match.group(1)))
        return Verp(address, None)
    return None


def is_hard(raw: bytes, report: DeliveryReport | None) -> bool:
    """Is this delivery report a permanent failure?"""
    try:
        temporary, permanent = flufl.bounce.all_failures(email.message_from_bytes(raw))
    except Exception:  # a detector tripping over a malformed report: use our own reading
        temporary, permanent = frozenset(), frozenset()
    if permanent:
        return True
    if temporary or report is None:
        return False
    return report.status.startswith("5") or (not report.status and report.action == "failed")


def count_hard_bounce(session: Session, settings: Settings, address: str,
                      reason: str) -> Suppression:
    address = address.lower()
    session.info.pop(SUPPRESSED_KEY, None)  # what `outbox.suppressed` knew may change
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
