"""`MailboxPoller`: one account's passes — one at a time, under a cluster lock — and
the backoff after a failed one.

Order for every message: fetch with BODY.PEEK[] (leaves it unread) -> pipeline
commit (or quarantine) -> mark \\Seen / move -> remember its UID (once a batch, and
when the pass ends: one filed meanwhile is not fetched again). As many messages
as the intake has delivery workers go through the pipeline at once (`inorder.py`),
but they are filed away and remembered in UID order, each only once it and every
one before it is handled: `imap_state.last_uid` never passes a message that was
not. A crash between commit and flag refetches the message, which the pipeline
then records as a duplicate. A temporary failure (database down) stops the pass
once the messages in flight have settled, without filing that message or any
after it; they are tried again on the next pass. Failed passes back off 2, 4, 8 …
300 s; after a pass that handled messages before it failed, the wait is 2 s again.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Callable

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import exc

from ...config import ImapAccount
from ...db import Database
from ...errors import TemporaryFailure
from ...locks import cluster_lock
from ...metrics import Metrics
from ...pipeline import Envelope
from ..oauth import TokenSource
from .client import CONNECTION_ERRORS, MAX_BACKOFF, connect, file_away, logout, new_messages
from .idle import IdleWatcher
from .inorder import InOrder
from .state import FolderState

log = logging.getLogger("mailgate.imap")
RETRYABLE = (TemporaryFailure, exc.OperationalError, exc.InterfaceError, *CONNECTION_ERRORS)


class MailboxPoller:
    """`poll()` is called on an interval by the scheduler and, with `watch()` running
    (servers with IDLE), as soon as the server announces new mail. `concurrency`:
    messages in the pipeline at once; None: the intake's own (`Intake.concurrency`,
    its delivery workers), 1 for an intake that does not say."""

    def __init__(self, account: ImapAccount, intake: Callable, db: Database,
                 metrics: Metrics | None = None,
                 connector: Callable[..., IMAPClient] = connect,
                 clock: Callable[[], float] = time.monotonic,
                 concurrency: int | None = None):
        self.account = account
        self.intake = intake
        self.concurrency = concurrency
        self.db = db
        self.metrics = metrics
        self.connector = connector
        self.clock = clock
        self.tokens = TokenSource(account) if account.auth == "xoauth2" else None
        self.state = FolderState(db, account)
        self.failures = 0  # consecutive passes that failed without handling a message
        self.next_attempt = 0.0
        self._handled_in_pass = 0
        self._filed = 0  # the last UID filed away and not yet remembered
        self._client: IMAPClient | None = None
        self._running = threading.Lock()
        self._again = False
        self.stopped = threading.Event()

    # -- connection -----------------------------------------------------------
    def _connection(self) -> IMAPClient:
        if self._client is None:
            self._client = self.connector(self.account, self.tokens)
        return self._client

    def disconnect(self) -> None:
        if self._client is not None:
            logout(self._client)
            self._client = None

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the messages in hand, then log out."""
        self.stopped.set()
        if self._running.acquire(timeout=timeout):
            try:
                self.disconnect()
            finally:
                self._running.release()

    # -- one pass -------------------------------------------------------------
    def poll(self) -> int:
        """Process what is new; returns how many messages were handled. Never raises."""
        if self.clock() < self.next_attempt or self.stopped.is_set():
            return 0
        if not self._running.acquire(blocking=False):
            self._again = True  # a wake-up during a pass: run once more after it
            return 0
        handled = 0
        try:
            while True:
                self._again = False
                handled += self._locked_pass()
                if not self._again:
                    return handled
        finally:
            self._running.release()

    def _locked_pass(self) -> int:
        self._handled_in_pass = 0
        try:
            with cluster_lock(self.db, f"imap:{self.account.name}") as held:
                if not held:
                    return 0
                self._pass()
        except RETRYABLE as error:
            self._failed(error)
            return 0
        self.failures, self.next_attempt = 0, 0.0
        return self._handled_in_pass

    def _pass(self) -> None:
        """The new messages through the intake, several at once; each filed away and
        remembered in UID order. The first failure ends the pass once those in
        flight have settled."""
        client = self._connection()
        fetched = new_messages(client, self.account, self.state.last_uid, self.stopped)
        try:
            with InOrder(self._deliver, self._in_flight(), name="imap-deliver") as line:
                for uid, raw in fetched:
                    self._file_away(client, line.ready())
                    if line.failed or self.stopped.is_set():
                        break
                    line.start(uid, raw)
                self._file_away(client, line.rest())
        finally:
            self._remember()
        if line.failure is not None:
            raise line.failure

    def _in_flight(self) -> int:
        return self.concurrency or getattr(self.intake, "concurrency", 1)

    def _deliver(self, uid: int, raw: bytes):
        envelope = Envelope("imap", None, (), self.account.department)
        return self.intake(raw, envelope, f"{self.account.name}:{uid}")

    def _file_away(self, client: IMAPClient, handled: list) -> None:
        """Flag or move each handled message, in UID order."""
        for uid, result in handled:
            file_away(client, self.account, uid, result.outcome == "quarantined")
            self._handled_in_pass += 1
            self._filed = uid
            if self._handled_in_pass % max(1, self.account.batch_size) == 0:
                self._remember()

    def _remember(self) -> None:
        """The last UID filed away, in the database: once a batch and when a pass ends
        (messages filed meanwhile are not fetched again: seen, moved or flagged)."""
        if self._filed:
            self.state.remember(self._filed)
            self._filed = 0

    def _failed(self, error: BaseException) -> None:
        """Back off: 2, 4, 8 … MAX_BACKOFF seconds while passes fail without progress;
        a pass that handled messages before it failed starts again at 2 s."""
        if self._handled_in_pass:
            self.failures = 0
        self.failures += 1
        delay = min(MAX_BACKOFF, 2.0 ** self.failures)
        self.next_attempt = self.clock() + delay
        if self.metrics:
            self.metrics.poll_errors.labels(self.account.name).inc()
        if self.tokens and isinstance(error, IMAPClientError):
            self.tokens.invalidate()
        log.warning("poll failed, retrying in %.0f s", delay, extra={"fields": {
            "account": self.account.name, "error": f"{error.__class__.__name__}: {error}"}})
        self.disconnect()

    # -- IDLE -----------------------------------------------------------------
    def watch(self, check_every: float = 5.0, renew_after: float = 25 * 60) -> None:
        """IDLE on a second connection and poll as soon as the server reports new mail.

        Runs until `stopped` is set (checked every `check_every` seconds).
        """
        connect_again = functools.partial(self.connector, self.account, self.tokens)
        IdleWatcher(self.account, connect_again, self.poll, self.stopped, self.clock,
                    check_every, renew_after).run()
