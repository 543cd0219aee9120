"""An admin's retry of a quarantined message: the same path again, from its raw bytes."""
from __future__ import annotations

from ..gateway import Gateway
from ..models import Quarantine, utcnow
from ..vocabulary import Outcome, Source
from . import quarantine
from .envelope import Envelope, Result, Vouch
from .runner import ingest


def retry_quarantined(gw: Gateway, entry_id: int, vouched: str = "") -> Result:
    """Run a quarantined message through the pipeline again; resolve the entry if it passes.
    `vouched` ("agent" or "customer") is an admin's word on mail held as `unverified`."""
    with gw.db.unit_of_work() as session:
        entry = quarantine.unresolved(session, entry_id)
        if vouched and entry.error_class != "unverified":
            raise ValueError(f"quarantine entry {entry_id} is {entry.error_class}, not "
                             "unverified: --as is only for mail held as an unproven agent's")
        envelope = Envelope(Source.RETRY, entry.envelope_from, tuple(entry.envelope_to or ()),
                            entry.mailbox_default or "",
                            vouched=Vouch(vouched) if vouched else None,
                            retried_from=entry.source)
        sha = entry.sha256
    raw = gw.storage.raw.get(sha)
    result = ingest(gw, raw, envelope)
    with gw.db.unit_of_work() as session:
        entry = session.get(Quarantine, entry_id)
        entry.last_attempt_at = utcnow()
        if result.outcome != Outcome.QUARANTINED:
            entry.resolved_at = utcnow()
            entry.resolution = f"retried: {result.outcome}" + (
                f" #{result.ticket}" if result.ticket else "") + (
                f" (as {vouched}, vouched by an admin)" if vouched else "")
    return result
