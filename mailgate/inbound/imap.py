"""IMAP poller: fetch new messages by UID, run each through the pipeline, flag after commit.

Each configured account has one `MailboxPoller`. `poll()` is called on an
interval by the scheduler and, for servers with IDLE, by an IDLE watcher as soon
as the server announces new mail. A poll pass holds a cluster lock for its
account, so with several daemons on one PostgreSQL only one polls it at a time.

Order for every message: fetch with BODY.PEEK[] (leaves it unread) -> pipeline
commit (or quarantine) -> mark \\Seen / move -> remember its UID. A crash between
commit and flag refetches the message, which the pipeline then records as a
duplicate. A temporary failure (database down) stops the pass without touching
the message; it is tried again on the next pass. Failed passes back off 2, 4, 8 …
300 s; after a pass that handled messages before it failed, the wait is 2 s again.
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from typing import Callable

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import exc

from ..config import ImapAccount
from ..db import Database
from ..errors import TemporaryFailure
from ..locks import cluster_lock
from ..metrics import Metrics
from ..models import ImapState, utcnow
from ..pipeline import Envelope
from .oauth import TokenError, TokenSource

log = logging.getLogger("mailgate.imap")
QUARANTINE_FLAG = b"$MailgateQuarantined"
CONNECTION_ERRORS = (IMAPClientError, OSError, socket.timeout, ssl.SSLError, TokenError,
                     EOFError)
RETRYABLE = (TemporaryFailure, exc.OperationalError, exc.InterfaceError, *CONNECTION_ERRORS)
MAX_BACKOFF = 300.0


def connect(account: ImapAccount, tokens: TokenSource | None = None) -> IMAPClient:
    """A logged-in client. TLS that was asked for is never silently skipped."""
    context = ssl.create_default_context(cafile=account.ca_file or None)
    client = IMAPClient(account.host, account.effective_port, ssl=account.security == "tls",
                        ssl_context=context if account.security == "tls" else None,
                        timeout=account.timeout)
    try:
        if account.security == "starttls":
            client.starttls(context)  # raises when the server cannot; we do not go on
        if account.auth == "xoauth2":
            client.oauth2_login(account.user, tokens.token())
        else:
            client.login(account.user, account.password)
    except BaseException:
        _close(client)
        raise
    return client


def _close(client) -> None:
    try:
        client.logout()
    except Exception:  # already broken: just drop it
        try:
            client.shutdown()
        except Exception:
            pass


class MailboxPoller:
    def __init__(self, account: ImapAccount, intake: Callable, db: Database,
                 metrics: Metrics | None = None,
                 connector: Callable[..., IMAPClient] = connect,
                 clock: Callable[[], float] = time.monotonic):
        self.account = account
        self.intake = intake
        self.db = db
        self.metrics = metrics
        self.connector = connector
        self.clock = clock
        self.tokens = TokenSource(account) if account.auth == "xoauth2" else None
        self.failures = 0  # consecutive passes that failed without handling a message
        self.next_attempt = 0.0
        self._handled_in_pass = 0
        self.supports_idle = False
        self._client: IMAPClient | None = None
        self._running = threading.Lock()
        self._again = False
        self.stopped = threading.Event()

    # -- connection -----------------------------------------------------------
    def _connection(self) -> IMAPClient:
        if self._client is None:
            self._client = self.connector(self.account, self.tokens)
            self.supports_idle = self._client.has_capability("IDLE")
        return self._client

    def disconnect(self) -> None:
        if self._client is not None:
            _close(self._client)
            self._client = None

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the message in hand, then log out."""
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
                handled = self._pass()
        except RETRYABLE as error:
            self._failed(error)
            return 0
        self.failures, self.next_attempt = 0, 0.0
        return handled

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

    def _pass(self) -> int:
        client = self._connection()
        folder = self.account.folder
        info = client.select_folder(folder)
        last_uid = self._last_uid(int(info[b"UIDVALIDITY"]))
        criteria = ["UID", f"{last_uid + 1}:*", "NOT", "DELETED"]
        if self.account.after == "seen":
            criteria.append("UNSEEN")
        uids = sorted(uid for uid in client.search(criteria) if uid > last_uid)
        handled = 0
        size = max(1, self.account.batch_size)
        for start in range(0, len(uids), size):
            batch = uids[start:start + size]
            fetched = client.fetch(batch, ["BODY.PEEK[]"])
            for uid in batch:
                if self.stopped.is_set():
                    return handled
                if uid not in fetched:  # expunged meanwhile
                    continue
                raw = fetched[uid][b"BODY[]"]
                envelope = Envelope("imap", None, (), self.account.department)
                result = self.intake(raw, envelope, f"{self.account.name}:{uid}")
                self._file_away(client, uid, result.outcome == "quarantined")
                self._remember(uid)
                handled += 1
                self._handled_in_pass += 1
            del fetched
        return handled

    def _file_away(self, client: IMAPClient, uid: int, quarantined: bool) -> None:
        account = self.account
        if quarantined:
            if account.quarantine_folder:
                self._move(client, uid, account.quarantine_folder)
            else:
                client.add_flags([uid], [QUARANTINE_FLAG, b"\\Seen"])
        elif account.after == "move":
            self._move(client, uid, account.processed_folder)
        else:
            client.add_flags([uid], [b"\\Seen"])

    @staticmethod
    def _move(client: IMAPClient, uid: int, folder: str) -> None:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        if client.has_capability("MOVE"):
            client.move([uid], folder)
        else:
            client.copy([uid], folder)
            client.delete_messages([uid])
            if client.has_capability("UIDPLUS"):
                client.uid_expunge([uid])
            else:
                client.expunge()

    # -- state ----------------------------------------------------------------
    def _last_uid(self, uidvalidity: int) -> int:
        with self.db.unit_of_work() as session:
            state = session.get(ImapState, self.account.name)
            if state is None:
                session.add(ImapState(account=self.account.name, folder=self.account.folder,
                                      uidvalidity=uidvalidity, last_uid=0))
                return 0
            if state.uidvalidity != uidvalidity or state.folder != self.account.folder:
                log.warning("UIDVALIDITY changed: rescanning the folder", extra={"fields": {
                    "account": self.account.name, "old": state.uidvalidity,
                    "new": uidvalidity}})
                state.uidvalidity, state.folder, state.last_uid = \
                    uidvalidity, self.account.folder, 0
            return state.last_uid

    def _remember(self, uid: int) -> None:
        with self.db.unit_of_work() as session:
            state = session.get(ImapState, self.account.name)
            state.last_uid = max(state.last_uid, uid)
            state.updated_at = utcnow()

    # -- IDLE -----------------------------------------------------------------
    def watch(self, check_every: float = 5.0, renew_after: float = 25 * 60) -> None:
        """IDLE on a second connection and poll as soon as the server reports new mail.

        Runs until `stopped` is set (checked every `check_every` seconds).
        """
        stop = self.stopped
        failures = 0
        while not stop.is_set():
            client = None
            try:
                client = self.connector(self.account, self.tokens)
                if not client.has_capability("IDLE"):
                    log.info("server has no IDLE; polling only",
                             extra={"fields": {"account": self.account.name}})
                    return
                client.select_folder(self.account.folder, readonly=True)
                failures = 0
                while not stop.is_set():
                    started = self.clock()
                    client.idle()
                    news = False
                    while not stop.is_set() and self.clock() - started < renew_after:
                        responses = client.idle_check(timeout=check_every)
                        if any(r[1] in (b"EXISTS", b"RECENT") for r in responses if len(r) > 1):
                            news = True
                            break
                    client.idle_done()
                    if news:
                        self.poll()
            except CONNECTION_ERRORS as error:
                failures += 1
                log.warning("IDLE connection lost", extra={"fields": {
                    "account": self.account.name, "error": str(error)}})
                stop.wait(min(MAX_BACKOFF, 2.0 ** failures))
            finally:
                if client is not None:
                    _close(client)
