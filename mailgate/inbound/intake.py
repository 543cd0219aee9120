"""What the daemon's transports (SMTP/LMTP sessions, IMAP pollers) call for each
message: the pipeline, one log line, the metrics, and a wake-up for the outbox
sender when the message queued mail. (`mailgate ingest`, the MTA pipe, calls
`pipeline.ingest` itself.)"""
from __future__ import annotations

import logging
from typing import Callable

from ..errors import TemporaryFailure
from ..gateway import Gateway
from ..metrics import Metrics
from ..pipeline import Envelope, Result, ingest
from .delivery import DeliveryPool

log = logging.getLogger("mailgate.inbound")


class Intake:
    """`deliver` runs the pipeline: in-process by default, in a delivery worker
    (`delivery.DeliveryPool.ingest`) in the daemon."""

    def __init__(self, gw: Gateway, metrics: Metrics,
                 deliver: Callable[[bytes, Envelope], Result] | None = None,
                 on_queued: Callable[[], None] | None = None):
        self.gw = gw
        self.metrics = metrics
        self.deliver = deliver or (lambda raw, envelope: ingest(gw, raw, envelope))
        self.on_queued = on_queued

    @property
    def concurrency(self) -> int:
        """Messages that can be delivered at once: the delivery pool's workers; 1 when
        the pipeline runs in-process, on the caller's thread."""
        pool = getattr(self.deliver, "__self__", None)
        return pool.size if isinstance(pool, DeliveryPool) else 1

    def __call__(self, raw: bytes, envelope: Envelope, label: str = "") -> Result:
        try:
            result = self.deliver(raw, envelope)
        except TemporaryFailure as error:
            self.metrics.temporary.labels(envelope.source).inc()
            log.warning("temporary failure, sender will retry", extra={"fields": {
                "source": envelope.source, "label": label, "error": str(error)}})
            raise
        self.metrics.messages.labels(envelope.source, result.outcome).inc()
        self.metrics.latency.labels(envelope.source).observe(result.seconds)
        if result.outcome == "new":
            self.metrics.tickets.inc()
        if result.queued and self.on_queued is not None:
            self.on_queued()
        log.info("%s %s", result.outcome, f"#{result.ticket}" if result.ticket else "-",
                 extra={"fields": {
                     "source": envelope.source, "label": label, "inbound": result.inbound_id,
                     "ticket": result.ticket, "outcome": result.outcome,
                     "seconds": round(result.seconds, 4), "reason": result.reason or None}})
        return result
