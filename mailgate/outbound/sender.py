"""The outbox sender: settle, claim, prepare, deliver, journal, record — with retries.

Each of a bounded pool of workers (`[outbound] workers`, each with its own
relay connection) repeats, delivering one mail at a time:

1. **settle** (`ledger.py`, at most every `SETTLE_EVERY` s, and at once after a
   database fault): replay this host's journal of deliveries the database has
   not recorded yet, and put the rows of dead senders of this host back to
   `pending` (`journal.py`, `claims.py`);
2. **claim** the next due rows, up to `BATCH` in one transaction (`claims.py`:
   `sending` under our token; on PostgreSQL an advisory lock on each, held until
   its outcome is recorded), then take each through steps 3–5 in turn; rows a
   stopping worker did not reach go back to the queue as they were. A database
   that fails meanwhile does not stop the others: they are ours, and each
   delivery is journalled (step 5) and recorded once the database is back;
3. **prepare** the bytes (`delivery.py`: render the templates, attach files) and
   keep a copy beside the journal, so that a delivery recorded from the journal
   shows what was sent;
4. **deliver** through the transport or the SMS backend, which answer with an
   outcome (`outcomes.py`);
5. **journal** a delivery durably (the file transport before its final
   rename, the relay after its 250) before the database hears of it;
6. **record** the outcomes of the rows claimed together, in one transaction once
   each was tried (`ledger.py`, `record.py`): sent; temporary failures
   retried with exponential backoff; permanent ones stop, are recorded on the
   ticket and count as hard bounces. If the database fails here, the journal
   (for a delivery) or memory (for a failure) keeps the outcome until it can be
   recorded; the row stays ours meanwhile and is never delivered twice. A disk
   that refuses writes leaves journal files for later (`refusals.py`).

The daemon runs the workers as threads (`start`, `wake`, `stop`; idle workers
wait in `wakeups.py`); `run_once` drains what is due with the same pool and
returns (the CLI, tests).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from ..errors import TemporaryFailure
from ..gateway import Gateway
from ..models import Outbox
from .claims import Claim, Claimer, give_back
from .delivery import Delivery, Link
from .journal import DeliveryJournal
from .ledger import Attempted, Ledger
from .presence import Presence
from .render import Templates
from .sms import make_backend
from .transport import make_transport
from .wakeups import Wakeups

log = logging.getLogger("mailgate.outbox")
DATABASE_PAUSE = 5.0  # seconds a worker waits after the database failed it
# rows a worker claims at once: a message's acknowledgement and agents' notification,
# and a little more in a burst, for one claim transaction instead of one each
BATCH = 4


class OutboxSender:
    def __init__(self, gw: Gateway, templates: Templates | None = None, transport=None,
                 sms_backend=None, workers: int | None = None):
        self.gw = gw
        hostname = gw.settings.outbound.hostname or gw.settings.gateway.hostname
        self.transport = transport or make_transport(gw.settings, hostname)
        self.workers = workers or gw.settings.outbound.workers
        folder = Path(gw.settings.storage.dir) / "outbox-journal"
        self.journal = DeliveryJournal(folder, fsync=gw.settings.storage.fsync)
        self.presence = Presence(folder / "claimers")
        self.claimer = Claimer(gw.db, self.presence.token, gw.now)
        self.delivery = Delivery(gw, templates or Templates(gw.settings),
                                 sms_backend or make_backend(gw.settings.sms), self.journal)
        self.ledger = Ledger(gw, self.journal, self.presence, self.transport)
        self.wakeups = Wakeups()
        self._lock = threading.Lock()
        self._present = 0  # run_once calls and the service sharing the presence file
        self._budget: int | None = None
        self._threads: list[threading.Thread] = []

    # -- the daemon's service -------------------------------------------------
    def start(self) -> None:
        """Recover what a killed predecessor left, then start the workers."""
        self._enter()
        try:
            self.recover()
        except TemporaryFailure as error:  # the workers settle again once it is back
            log.warning("outbox recovery postponed: %s", error)
        self._threads = [threading.Thread(target=self._serve, daemon=True,
                                          name=f"outbox-{n}") for n in range(self.workers)]
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """Something was queued: one idle worker looks (and wakes the next if it found work)."""
        self.wakeups.wake()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the deliveries in hand and stop."""
        self.wakeups.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        self._leave()

    def recover(self) -> None:
        """At start: replay the journal, free dead senders' rows, remove orphan files."""
        self.ledger.settle(force=True)

    def _serve(self) -> None:
        link = Link(self.transport)
        while not self.wakeups.stopping:
            try:
                handled = self._step(link, BATCH)
            except TemporaryFailure as error:
                log.warning("outbox: %s", error)
                link.close()
                self.wakeups.idle(DATABASE_PAUSE)
                continue
            except Exception:  # our bug: logged loudly, the worker carries on
                log.exception("outbox worker")
                link.close()
                self.wakeups.idle(DATABASE_PAUSE)
                continue
            if not handled:
                link.close()
                self.wakeups.idle(self.gw.settings.outbound.send_interval)
        link.close()

    # -- one pass -------------------------------------------------------------
    def run_once(self, limit: int = 100) -> int:
        """Deliver what is due now with the worker pool; returns how many rows were handled."""
        counts: list[int] = []
        errors: list[BaseException] = []
        self._budget = limit
        self._enter()
        try:
            self.ledger.settle(force=True)
            threads = [threading.Thread(target=self._drain, args=(counts, errors),
                                        name=f"outbox-once-{n}")
                       for n in range(min(self.workers, max(1, limit)))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            self._leave()
            self._budget = None
        if errors and not sum(counts):
            raise errors[0]
        return sum(counts)

    def _drain(self, counts: list[int], errors: list[BaseException]) -> None:
        """One worker of `run_once`: deliver while the budget lasts and rows are due."""
        link, handled = Link(self.transport), 0
        try:
            while granted := self._spend(BATCH):
                done = self._step(link, granted)
                if not done:
                    break
                handled += done
        except BaseException as error:
            errors.append(error)
        finally:
            link.close()
            counts.append(handled)

    def _spend(self, wanted: int) -> int:
        """How many rows of the budget of `run_once` this worker may take (`wanted`
        when there is no budget)."""
        with self._lock:
            if self._budget is None:
                return wanted
            granted = min(wanted, max(0, self._budget))
            self._budget -= granted
            return granted

    def _refund(self, unused: int) -> None:
        """A budgeted pass returns the units of the budget it did not use."""
        with self._lock:
            if self._budget is not None:
                self._budget += unused

    def _enter(self) -> None:
        with self._lock:
            self._present += 1
            if self._present == 1:
                self.presence.enter()

    def _leave(self) -> None:
        with self._lock:
            self._present -= 1
            if self._present == 0:
                self.presence.leave()

    # -- one delivery ---------------------------------------------------------
    def _step(self, link: Link, up_to: int) -> int:
        """Settle, claim up to `up_to` rows and see them through; how many were handled
        (0 when nothing is due)."""
        self.ledger.settle()
        claims = self.claimer.claim_some(self.ledger.live, up_to)
        if not claims:
            self._refund(up_to)
            return 0
        self.wake()  # more may be due: let an idle worker look
        started, attempts = 0, []
        with self.ledger.holding(*(claim.row.id for claim in claims)):
            try:
                for claim in claims:
                    if started and self.wakeups.stopping:
                        break
                    started += 1
                    attempts.append(Attempted(claim, *self.delivery.attempt(claim.row, link)))
            finally:
                self._refund(up_to - started)
                self._let_go(claims, attempts, started)
        return started

    def _let_go(self, claims: list[Claim], attempts: list[Attempted], started: int) -> None:
        """Record the outcomes of the rows tried, give back those not reached (after
        `started`), and release every claim."""
        try:
            if attempts:
                self.ledger.record(attempts)
            self._return(claims[started:])
        finally:
            for claim in claims:
                claim.release()

    @staticmethod
    def _return(claims: list[Claim]) -> None:
        """Rows claimed and not attempted back to the queue; a database that fails here
        leaves them to `Ledger.release_orphans`."""
        if not claims:
            return
        try:
            give_back(claims)
        except TemporaryFailure as error:
            log.warning("outbox: %d claimed rows left claimed (%s); freed later",
                        len(claims), error)

    # -- metrics --------------------------------------------------------------
    def depth(self) -> int:
        """Messages waiting (pending or being sent)."""
        with self.gw.db.unit_of_work() as session:
            return session.scalar(select(func.count()).select_from(Outbox).where(
                Outbox.status.in_(("pending", "sending"))))

    def oldest_due_age(self) -> float:
        """Seconds the longest-waiting due message has been due (0 when none is)."""
        now = self.gw.now()
        with self.gw.db.unit_of_work() as session:
            oldest = session.scalar(select(func.min(Outbox.next_attempt_at)).where(
                Outbox.status.in_(("pending", "sending")), Outbox.next_attempt_at <= now))
        return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
