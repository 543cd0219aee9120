"""The daemon's delivery processes: the whole pipeline per message, in bounded workers.

The SMTP/LMTP listener and the IMAP pollers hand raw bytes to `DeliveryPool.ingest`,
which runs `pipeline.ingest` in one of several worker processes: the parsing and
database work of many messages then runs on all cores, and each worker is the
time and memory bound of the parse. A worker reports when parsing is done; if it
overruns or dies before that, the message itself is the problem and is put in
quarantine here; if it is lost after that (a stalled database), nothing is
promised and the sender is told to retry.
"""
from __future__ import annotations

import logging
import pickle
import time

from .. import quarantine
from ..config import Settings
from ..errors import TemporaryFailure
from ..gateway import Gateway
from ..pipeline import Envelope, Result, ingest
from ..storage import sha256_hex
from .workers import WorkerLost, WorkerPool, limit_memory, serve

log = logging.getLogger("mailgate.delivery")
STORE_AND_DB_TIMEOUT = 120.0


def _delivery_main(conn, settings: Settings) -> None:
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)
    limit_memory(settings.limits.parse_memory)
    gw = Gateway(settings.replace(limits={"parse_workers": 0}))

    def handle(request: bytes, progress):
        raw, envelope = pickle.loads(request)
        del request  # one copy of a large message is enough
        try:
            return ingest(gw, raw, envelope, on_parsed=progress)
        except TemporaryFailure as error:
            return error

    try:
        serve(conn, handle)
    finally:
        gw.close()


class DeliveryPool:
    def __init__(self, gw: Gateway, size: int):
        self.gw = gw  # the daemon's own, for quarantining what a lost worker held
        self._pool = WorkerPool(size, _delivery_main, (gw.settings,))

    def ingest(self, raw: bytes, envelope: Envelope) -> Result:
        started = time.monotonic()
        timeouts = (self.gw.settings.limits.parse_timeout + 10, STORE_AND_DB_TIMEOUT)
        try:
            reply = self._pool.call(pickle.dumps((raw, envelope)), timeouts)
        except WorkerLost as lost:
            if lost.stage > 0:  # parsed; stalled in storage or database: retry later
                raise TemporaryFailure(f"delivery worker {lost.reason} after parsing") from lost
            log.warning("parsing %s: quarantined", lost.reason)
            result = quarantine.keep(self.gw, raw, sha256_hex(raw), envelope, "limit",
                                     f"parsing {lost.reason}")
            result.seconds = time.monotonic() - started
            return result
        if isinstance(reply, TemporaryFailure):
            raise reply
        return reply

    def close(self, wait: float = 0.0) -> None:
        self._pool.close(wait)
