"""Recording an outcome in the outbox, in the caller's unit of work.

Every write is conditional on the claim (`claims.MINE`): a row that another
sender took meanwhile, or that a journal replay already recorded, is left as
it is, and the function says so by returning False.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from .. import tickets
from ..config import Settings
from ..models import Outbox, Ticket
from . import bounces
from .claims import MINE, TABLE, Claimed, claim_params
from .journal import Entry
from .outcomes import Delivered, Outcome, Permanent, Temporary

log = logging.getLogger("mailgate.outbox")
MAX_BACKOFF = 6 * 3600.0
# on a row recorded from the journal without the bytes as sent
UNKEPT = ("recorded from the delivery journal, whose copy of the bytes as sent was lost "
          "(the disk refused it, or a power cut)")


def outcome(session: Session, settings: Settings, row: Claimed, result: Outcome,
            raw: bytes | None, now: dt.datetime) -> bool:
    """Record what became of this attempt at `row` (`raw`: the bytes as sent)."""
    if isinstance(result, Delivered):
        return sent(session, settings, row, result.refused, result.remark, raw, now)
    if isinstance(result, Temporary):
        return retry(session, settings, row, result.reason, now)
    if isinstance(result, Permanent):
        return failed(session, settings, row, result.reason,
                      result.recipients or tuple(row.recipients))
    return failed(session, settings, row, result.reason, ())


def sent(session: Session, settings: Settings, row: Claimed, refused: tuple[str, ...],
         note: str | None, raw: bytes | None, now: dt.datetime) -> bool:
    return _mark_sent(session, settings, (row.id, row.claimer, row.attempts), refused,
                      note, raw, now)


def replayed(session: Session, settings: Settings, entry: Entry, raw: bytes | None,
             now: dt.datetime) -> bool:
    """A journalled delivery, recorded after a crash or a database fault (`raw`: the
    bytes as sent, from the journal; a row whose copy was lost says so)."""
    note = entry.note
    if raw is None and entry.sha256 is not None:
        note = "; ".join(filter(None, (entry.note, UNKEPT)))
    return _mark_sent(session, settings, (entry.id, entry.claimer, entry.attempt),
                      entry.refused, note, raw, now)


MARK_SENT = update(TABLE).where(MINE).values(status="sent", sent_at=bindparam("sent_at"),
                                            last_error=bindparam("note"))
MARK_SENT_WITH_BYTES = MARK_SENT.values(raw=bindparam("raw"))


def _mark_sent(session: Session, settings: Settings, claim: tuple[int, str, int],
               refused: tuple[str, ...], note: str | None, raw: bytes | None,
               now: dt.datetime) -> bool:
    """Row `claim` (id, claimer, attempt) sent at `now`, with the bytes as sent if known;
    each of `refused` (refused by the relay, accepted for the others) counts as a hard
    bounce. False when the row is no longer under that claim."""
    ident, claimer, attempt = claim
    values = {**claim_params(ident, claimer, attempt), "sent_at": now, "note": note}
    statement = MARK_SENT
    if raw is not None:
        statement, values["raw"] = MARK_SENT_WITH_BYTES, raw
    if not session.execute(statement, values).rowcount:
        return False
    for address in refused:
        bounces.count_hard_bounce(session, settings, address, "refused by the relay")
    return True


def retry(session: Session, settings: Settings, row: Claimed, reason: str,
          now: dt.datetime) -> bool:
    stored = _ours(session, row)
    if stored is None:
        return False
    out = settings.outbound
    stored.last_error = reason[:2000]
    if row.attempts >= out.max_attempts:
        stored.status = "failed"
        _event(session, stored, f"gave up after {row.attempts} attempts: {reason}")
        log.error("outbox %d: gave up after %d attempts: %s", row.id, row.attempts, reason)
        return True
    delay = min(MAX_BACKOFF, out.retry_base * 2 ** (row.attempts - 1))
    stored.status = "pending"
    stored.next_attempt_at = now + dt.timedelta(seconds=delay)
    log.warning("outbox %d: temporary failure, attempt %d: %s", row.id, row.attempts, reason)
    return True


def failed(session: Session, settings: Settings, row: Claimed, reason: str,
           bounced: tuple[str, ...]) -> bool:
    """Refused for good (`bounced` count a hard bounce each) or unsendable (none)."""
    stored = _ours(session, row)
    if stored is None:
        return False
    stored.status, stored.last_error = "failed", reason[:2000]
    _event(session, stored, reason)
    if row.channel == "email":
        for address in bounced:
            bounces.count_hard_bounce(session, settings, address, reason)
    log.error("outbox %d failed permanently: %s", row.id, reason)
    return True


def _ours(session: Session, row: Claimed) -> Outbox | None:
    return session.scalars(select(Outbox).where(MINE),
                           claim_params(row.id, row.claimer, row.attempts)).first()


def _event(session: Session, stored: Outbox, detail: str) -> None:
    if stored.ticket_id is not None:
        ticket = session.get(Ticket, stored.ticket_id)
        tickets.record_event(session, ticket, "delivery_failed", "mailgate",
                             new=stored.kind, detail=f"outbox {stored.id}: {detail}"[:2000])
