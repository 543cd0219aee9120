"""The IDLE watcher: a second connection, read-only, that waits in IDLE and wakes the
poller as soon as the server reports new mail (EXISTS or RECENT). A server without
IDLE leaves the account to the poll interval; a lost connection is made again after
2, 4, 8 … MAX_BACKOFF seconds."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

from imapclient import IMAPClient

from ...config import ImapAccount
from .client import CONNECTION_ERRORS, MAX_BACKOFF, logout

log = logging.getLogger("mailgate.imap")


@dataclass
class IdleWatcher:
    """`run()` until `stopped` is set (checked every `check_every` seconds); IDLE is
    renewed every `renew_after` seconds (RFC 2177: a server may end one after 30 minutes)."""

    account: ImapAccount
    connect: Callable[[], IMAPClient]
    wake: Callable[[], object]
    stopped: threading.Event
    clock: Callable[[], float]
    check_every: float
    renew_after: float

    def run(self) -> None:
        failures = 0
        while not self.stopped.is_set():
            client = None
            try:
                client = self.connect()
                if not client.has_capability("IDLE"):
                    log.info("server has no IDLE; polling only",
                             extra={"fields": {"account": self.account.name}})
                    return
                client.select_folder(self.account.folder, readonly=True)
                failures = 0
                self._idle(client)
            except CONNECTION_ERRORS as error:
                failures += 1
                log.warning("IDLE connection lost", extra={"fields": {
                    "account": self.account.name, "error": str(error)}})
                self.stopped.wait(min(MAX_BACKOFF, 2.0 ** failures))
            finally:
                if client is not None:
                    logout(client)

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until stopped; after each report of new mail, leave IDLE and wake."""
        while not self.stopped.is_set():
            started = self.clock()
            client.idle()
            news = self._news_within_renewal(client, started)
            client.idle_done()
            if news:
                self.wake()

    def _news_within_renewal(self, client: IMAPClient, started: float) -> bool:
        while not self.stopped.is_set() and self.clock() - started < self.renew_after:
            responses = client.idle_check(timeout=self.check_every)
            if any(r[1] in (b"EXISTS", b"RECENT") for r in responses if len(r) > 1):
                return True
        return False
