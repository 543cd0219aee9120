"""Quarantine: messages that could not be processed, kept with the reason.

The raw bytes stay in the raw store (by sha256); the quarantine row says why,
how often it was tried, and whether an admin resolved it: a retry that passed, or
a discard with the admin's reason (the bytes stay; the entry leaves the list). A
message that fails again while still quarantined bumps its entry instead of adding one.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from .. import tickets
from ..errors import Rejection, TemporaryFailure
from ..gateway import Gateway
from ..models import Inbound, Quarantine, utcnow
from ..outbound import notify
from ..vocabulary import Outcome
from .envelope import Envelope, Result

log = logging.getLogger("mailgate.quarantine")


def keep(gw: Gateway, raw: bytes, digest: str, envelope: Envelope, kind: Rejection,
         reason: str) -> Result:
    """Store `raw` durably in quarantine (its own transaction); TemporaryFailure if we cannot."""
    try:
        gw.storage.raw.put(raw, digest)
    except OSError as error:  # disk full, read-only: nothing is kept, the sender retries
        raise TemporaryFailure(f"quarantine: storage: {error}") from error
    now = utcnow()
    with gw.db.unit_of_work() as session:
        entry = session.scalar(select(Quarantine).where(
            Quarantine.sha256 == digest, Quarantine.resolved_at.is_(None)))
        if entry is None:
            entry = Quarantine(sha256=digest, size=len(raw), source=envelope.source,
                               envelope_from=envelope.mail_from,
                               envelope_to=list(envelope.rcpt_to),
                               mailbox_default=envelope.mailbox_default or None,
                               error_class=kind, error=reason, attempts=1, created_at=now,
                               last_attempt_at=now)
            session.add(entry)
        else:
            entry.attempts += 1
            entry.error_class, entry.error, entry.last_attempt_at = kind, reason, now
        trace = [f"quarantine: {kind}: {reason}"]
        record = Inbound(sha256=digest, source=envelope.source, envelope_from=envelope.mail_from,
                         envelope_to=list(envelope.rcpt_to), size=len(raw),
                         outcome=Outcome.QUARANTINED.value, trace=trace, received_at=now)
        session.add(record)
        session.flush()
        log_method = log.error if kind == Rejection.BUG else log.info
        log_method("quarantined %s message %s as #%d: %s", envelope.source, digest[:12],
                   entry.id, reason)
        return Result(Outcome.QUARANTINED, None, record.id, entry.id, reason, trace)


def tell_agent_held(gw: Gateway, number: str, address: str, quarantine_id: int) -> bool:
    """Tell the agent whose address was on mail we held: if they wrote it, it did not
    reach the customer; if not, someone used their address. At most
    `ack_limit_per_hour` such notices per agent; the message stays held either way."""
    try:
        with gw.db.unit_of_work() as session:
            ticket = tickets.ticket_by_number(session, number)
            agent = tickets.agent_by_email(session, address)
            if ticket is None or agent is None:
                return False
            return notify.held_for_review(session, gw.settings, ticket, agent, quarantine_id,
                                          gw.now()) is not None
    except Exception:  # the message is safe in quarantine; the notice is a courtesy
        log.exception("could not queue the held-mail notice for %s", address)
        return False


def unresolved(session, entry_id: int) -> Quarantine:
    """The entry `entry_id`, waiting for an admin: NotFound, or ValueError if resolved."""
    entry = session.get(Quarantine, entry_id)
    if entry is None:
        raise tickets.NotFound(f"no quarantine entry {entry_id}")
    if entry.resolved_at is not None:
        raise ValueError(f"quarantine entry {entry_id} is already resolved "
                         f"({entry.resolution})")
    return entry


def discard(session, entry_id: int, reason: str) -> Quarantine:
    """An admin gives up on an entry (mail with no From, spam): resolved as discarded
    with their reason and left out of the list; its raw bytes stay in the raw store."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("give a reason for discarding")
    entry = unresolved(session, entry_id)
    entry.resolved_at = utcnow()
    entry.resolution = f"discarded: {reason}"[:200]
    log.info("quarantine entry #%d discarded: %s", entry_id, reason)
    return entry


def entries(session, include_resolved: bool = False) -> list[Quarantine]:
    query = select(Quarantine).order_by(Quarantine.id)
    if not include_resolved:
        query = query.where(Quarantine.resolved_at.is_(None))
    return list(session.scalars(query))
