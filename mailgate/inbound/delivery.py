"""The daemon's delivery processes: the whole pipeline per message, in bounded workers.

The SMTP/LMTP listeners and the IMAP pollers hand raw bytes to the intake
(`intake.Intake`), which in the daemon delivers through `DeliveryPool.ingest`: it
runs `pipeline.ingest` in one of several worker processes, so that the parsing and
database work of many messages runs on all cores, and each worker is the time and
memory bound of the parse. A worker reports when parsing is done. If it
overruns its time before that, the message itself is the problem and is put in
quarantine here. If it dies before that, the message gets one more try in a fresh
worker (the OOM killer or an admin may have killed a worker holding a healthy
message); only a message that killed a worker twice is quarantined. A worker lost
after parsing (a stalled database) promises nothing: the sender is told to retry.
The daemon starts every worker (`start`) before it listens, so that the first
message does not wait for one; a worker is replaced as soon as it is lost.
"""
from __future__ import annotations

import logging
import pickle
import time

from ..config import Settings
from ..errors import TemporaryFailure
from ..gateway import Gateway
from ..logs import setup_logging
from ..pipeline import Envelope, Result, ingest, quarantine
from ..storage import sha256_hex
from .workers import WorkerLost, WorkerPool, limit_memory, serve

log = logging.getLogger("mailgate.delivery")
STORE_AND_DB_TIMEOUT = 120.0


def _delivery_main(conn, settings: Settings) -> None:
    setup_logging(settings.log)  # a fresh process: the daemon's set-up is not inherited
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    limit_memory(settings.limits.parse_memory)
    gw = Gateway(settings)

    def handle(request: bytes, progress):
        raw, envelope = pickle.loads(request)
        del request  # one copy of a large message is enough
        try:
            return ingest(gw, raw, envelope, on_parsed=progress)
        except TemporaryFailure as error:
            return error
        except Exception as error:  # not even quarantine could keep it: never kill the worker
            log.exception("delivery failed and the message could not be kept")
            return TemporaryFailure(f"{error.__class__.__name__}: {error}"[:500])

    try:
        serve(conn, handle)
    finally:
        gw.close()


class DeliveryPool:
    """`ingest(raw, envelope)` in one of `size` worker processes: the pipeline's
    `Result`, or `TemporaryFailure` when the sender should try again."""

    def __init__(self, gw: Gateway, size: int):
        self.gw = gw  # the daemon's own, for quarantining what a lost worker held
        self._pool = WorkerPool(size, _delivery_main, (gw.settings,), preload=(__name__,))

    @property
    def size(self) -> int:
        """Messages it runs at once: one per worker."""
        return self._pool.size

    def start(self) -> None:
        self._pool.start()

    def ingest(self, raw: bytes, envelope: Envelope) -> Result:
        started = time.monotonic()
        timeouts = (self.gw.settings.limits.parse_timeout + 10, STORE_AND_DB_TIMEOUT)
        request = pickle.dumps((raw, envelope))
        for attempt in (1, 2):
            try:
                reply = self._pool.call(request, timeouts)
                break
            except WorkerLost as lost:
                if lost.stage > 0:  # parsed; stalled in storage or database: retry later
                    raise TemporaryFailure(f"delivery worker {lost.reason} after parsing") \
                        from lost
                if lost.died and attempt == 1:
                    log.warning("delivery worker died before the message was parsed; trying "
                                "it once more in a fresh worker", extra={"fields": {
                                    "source": envelope.source, "reason": lost.reason}})
                    continue
                reason = f"parsing {lost.reason}" + (", the second worker it was given"
                                                     if lost.died else "")
                log.warning("%s: quarantined", reason)
                result = quarantine.keep(self.gw, raw, sha256_hex(raw), envelope, "limit", reason)
                result.seconds = time.monotonic() - started
                return result
        if isinstance(reply, TemporaryFailure):
            raise reply
        return reply

    def close(self, wait: float = 0.0) -> None:
        self._pool.close(wait)
