"""Quarantine: messages that could not be processed, kept with the reason.

The raw bytes stay in the raw store (by sha256); the quarantine row says why,
how often it was tried, and whether an admin's retry resolved it. A message
that fails again while still quarantined bumps its entry instead of adding one.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from .errors import TemporaryFailure
from .models import Inbound, Quarantine, utcnow

if TYPE_CHECKING:
    from .gateway import Gateway
    from .pipeline import Envelope, Result

log = logging.getLogger("mailgate.quarantine")


def keep(gw: "Gateway", raw: bytes, digest: str, envelope: "Envelope", kind: str,
         reason: str) -> "Result":
    """Store `raw` durably in quarantine (its own transaction); TemporaryFailure if we cannot."""
    from .pipeline import Result

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
                               mailbox_default=envelope.mailbox_default or None, error_class=kind,
                               error=reason, attempts=1, created_at=now, last_attempt_at=now)
            session.add(entry)
        else:
            entry.attempts += 1
            entry.error_class, entry.error, entry.last_attempt_at = kind, reason, now
        trace = [f"quarantine: {kind}: {reason}"]
        record = Inbound(sha256=digest, source=envelope.source, envelope_from=envelope.mail_from,
                         envelope_to=list(envelope.rcpt_to), size=len(raw),
                         outcome="quarantined", trace=trace, received_at=now)
        session.add(record)
        session.flush()
        log_method = log.error if kind == "bug" else log.info
        log_method("quarantined %s message %s as #%d: %s", envelope.source, digest[:12],
                   entry.id, reason)
        return Result("quarantined", None, record.id, entry.id, reason, trace)


def entries(session, include_resolved: bool = False) -> list[Quarantine]:
    query = select(Quarantine).order_by(Quarantine.id)
    if not include_resolved:
        query = query.where(Quarantine.resolved_at.is_(None))
    return list(session.scalars(query))
