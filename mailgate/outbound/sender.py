"""The outbox sender: settle, claim, prepare, deliver, journal, record — with retries.

Each of a bounded pool of workers (`WORKERS`, each with its own relay
connection) repeats one delivery at a time:

1. **settle** (at most every `SETTLE_EVERY` s, and at once after a database
   fault): replay this host's journal of deliveries the database has not
   recorded yet, and put the rows of dead senders of this host back to
   `pending` (`journal.py`, `claims.py`);
2. **claim** one due row (`claims.py`: `sending` under our token; on
   PostgreSQL an advisory lock held until the end);
3. **prepare** the bytes (render the templates, attach files);
4. **deliver** through the transport or the SMS backend, which answer with an
   outcome (`outcomes.py`);
5. **journal** a delivery durably (the file transport before its final
   rename, the relay after its 250) before the database hears of it;
6. **record** the outcome (`record.py`): sent; temporary failures retried with
   exponential backoff; permanent ones stop, are recorded on the ticket and
   count as hard bounces. If the database fails here, the journal (for a
   delivery) or memory (for a failure) keeps the outcome until it can be
   recorded; the row stays ours meanwhile and is never delivered twice.

The daemon runs the workers as threads (`start`, `wake`, `stop`); `run_once`
drains what is due with the same pool and returns (the CLI, tests).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from ..errors import TemporaryFailure
from ..gateway import Gateway
from ..models import Outbox
from ..signing import signer_for
from . import bounces, record
from .claims import Claim, Claimed, Claimer, release_dead, release_orphans
from .compose import build_email
from .journal import DeliveryJournal, Entry, Presence
from .outcomes import Delivered, Outcome, Outgoing, Permanent, Temporary, Unsendable
from .render import Templates
from .sms import deliver as deliver_sms
from .sms import fit, make_backend
from .transport import make_transport

log = logging.getLogger("mailgate.outbox")
WORKERS = 4  # deliveries at once (each worker keeps its own relay connection)
SETTLE_EVERY = 1.0  # seconds between looks for dead senders and unrecorded deliveries
ORPHAN_AFTER = dt.timedelta(seconds=30)  # an own claim no worker holds is lost after this
DATABASE_PAUSE = 5.0  # seconds a worker waits after the database failed it


class OutboxSender:
    def __init__(self, gw: Gateway, templates: Templates | None = None, transport=None,
                 sms_backend=None, workers: int = WORKERS):
        self.gw = gw
        self.templates = templates or Templates(gw.settings)
        hostname = gw.settings.outbound.hostname or gw.settings.gateway.hostname
        self.transport = transport or make_transport(gw.settings, hostname)
        self.sms = sms_backend or make_backend(gw.settings.sms)
        self.workers = max(1, workers)
        folder = Path(gw.settings.storage.dir) / "outbox-journal"
        self.journal = DeliveryJournal(folder, fsync=gw.settings.storage.fsync)
        self.presence = Presence(folder / "claimers")
        self.claimer = Claimer(gw.db, self.presence.token, gw.now)
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._unrecorded: list[tuple[Claimed, Outcome, bytes | None]] = []
        self._live: set[str] = set()
        self._settled_at = -SETTLE_EVERY
        self._settling = threading.Lock()
        self._present = 0  # run_once calls and the service sharing the presence file
        self._budget: int | None = None
        self._cond = threading.Condition()
        self._signal = False
        self._stopping = False
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
        with self._cond:
            self._signal = True
            self._cond.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the deliveries in hand and stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []
        self._leave()

    def recover(self) -> None:
        """At start: replay the journal, free dead senders' rows, remove orphan files."""
        self._settle(force=True)
        removed = self.transport.remove_orphans() + self.journal.remove_orphans()
        if removed:
            log.info("outbox: removed %d orphan temporary files", removed)

    def _serve(self) -> None:
        link = _Link(self.transport)
        while not self._stopping:
            try:
                handled = self._step(link)
            except TemporaryFailure as error:
                log.warning("outbox: %s", error)
                link.close()
                self._idle(DATABASE_PAUSE)
                continue
            except Exception:  # our bug: logged loudly, the worker carries on
                log.exception("outbox worker")
                link.close()
                self._idle(DATABASE_PAUSE)
                continue
            if not handled:
                link.close()
                self._idle(self.gw.settings.outbound.send_interval)
        link.close()

    def _idle(self, timeout: float) -> None:
        with self._cond:
            if not self._signal and not self._stopping:
                self._cond.wait(timeout)
            self._signal = False

    # -- one pass -------------------------------------------------------------
    def run_once(self, limit: int = 100) -> int:
        """Deliver what is due now with the worker pool; returns how many rows were handled."""
        counts: list[int] = []
        errors: list[BaseException] = []
        self._budget = limit
        self._enter()
        try:
            self._settle(force=True)

            def drain() -> None:
                link, handled = _Link(self.transport), 0
                try:
                    while self._spend() and self._step(link):
                        handled += 1
                except BaseException as error:
                    errors.append(error)
                finally:
                    link.close()
                    counts.append(handled)

            threads = [threading.Thread(target=drain, name=f"outbox-once-{n}")
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

    def _spend(self) -> bool:
        with self._lock:
            if self._budget is None:
                return True
            if self._budget <= 0:
                return False
            self._budget -= 1
            return True

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
    def _step(self, link: "_Link") -> bool:
        """Settle, claim one row and see it through; False when nothing is due."""
        self._settle()
        claim = self.claimer.claim(self._live)
        if claim is None:
            self._give_back()
            return False
        self.wake()  # more may be due: let an idle worker look
        with self._lock:
            self._in_flight.add(claim.row.id)
        try:
            outcome, raw, entry = self._deliver(claim.row, link)
            self._record(claim, outcome, raw, entry)
        finally:
            claim.release()
            with self._lock:
                self._in_flight.discard(claim.row.id)
        return True

    def _give_back(self) -> None:
        """A budgeted pass that found nothing returns the unit it spent."""
        with self._lock:
            if self._budget is not None:
                self._budget += 1

    def _deliver(self, row: Claimed, link: "_Link") -> tuple[Outcome, bytes | None, Path | None]:
        """Prepare, deliver and journal; (outcome, bytes as sent, journal entry or None)."""
        journalled: list[Path] = []

        def journal(delivered: Delivered):
            path = self.journal.write(self._entry(row, delivered))
            journalled.append(path)

            def undo() -> None:  # the transport could not finish after all
                journalled.remove(path)
                self.journal.remove(path, durable=True)
            return undo

        raw = None
        if row.channel == "sms":
            text = self._prepare(lambda: fit(
                self.templates.render_sms(row.kind, row.locale, row.context),
                self.gw.settings.sms.max_segments), row)
            if not isinstance(text, str):
                return text, None, None
            outcome = deliver_sms(self.sms, row.recipients[0], text)
        else:
            raw = row.raw or self._prepare(lambda: self._render_email(row), row)
            if not isinstance(raw, bytes):
                return raw, None, None
            outcome = link.get().send(Outgoing(str(row.id), self._envelope_from(row),
                                               row.recipients, raw), journal)
        if isinstance(outcome, Delivered) and not outcome.journalled:
            try:
                journal(outcome)
            except OSError as error:  # delivered all the same: record it straight away
                log.error("outbox %d: delivered, but the journal failed: %s", row.id, error)
        return outcome, raw, (journalled[0] if journalled else None)

    def _prepare(self, build, row: Claimed):
        try:
            return build()
        except OSError as error:  # a template or attachment file we cannot read now
            return Temporary(f"cannot prepare: {error}")
        except Exception as error:  # a template or data problem: keep the row for an admin
            log.exception("outbox %d could not be prepared", row.id)
            return Unsendable(f"{error.__class__.__name__}: {error}")

    def _entry(self, row: Claimed, delivered: Delivered) -> Entry:
        return Entry(row.id, row.claimer, row.attempts, delivered.refused, _note(delivered),
                     str(delivered.staged) if delivered.staged else None)

    def _envelope_from(self, row: Claimed) -> str:
        settings = self.gw.settings.outbound
        if not settings.bounce_address:
            return row.sender
        return bounces.verp_address(signer_for(self.gw.settings), settings.bounce_address,
                                    row.id)

    def _render_email(self, row: Claimed) -> bytes:
        rendered = self.templates.render(row.kind, row.locale, row.context)
        return build_email(
            sender=row.sender, sender_name=row.sender_name, recipients=row.recipients,
            rendered=rendered, message_id=row.message_id, in_reply_to=row.in_reply_to,
            references=row.references, auto_submitted=row.auto_submitted,
            loop_marker=self.gw.settings.gateway.instance,
            files=row.context.get("files", []), read_file=self.gw.storage.attachments.get,
            extra_headers={"X-Mailgate-Ticket": row.context["ticket"]["number"]}
            if "ticket" in row.context else None)

    # -- record ---------------------------------------------------------------
    def _record(self, claim: Claim, outcome: Outcome, raw: bytes | None,
                entry: Path | None) -> None:
        try:
            with claim.unit() as session:
                ours = self._apply(session, claim.row, outcome, raw)
        except TemporaryFailure as error:
            log.warning("outbox %d: %s not recorded yet: %s", claim.row.id,
                        outcome.__class__.__name__.lower(), error)
            with self._lock:
                if entry is None:  # the journal has the others
                    self._unrecorded.append((claim.row, outcome, raw))
                self._settled_at = -SETTLE_EVERY  # settle again before the next claim
            return
        if entry is not None:
            self.journal.remove(entry)
        if not ours:
            log.info("outbox %d: recorded meanwhile by another sender", claim.row.id)
        elif isinstance(outcome, Delivered):
            row = claim.row
            log.info("sent %s %s", row.channel, row.kind, extra={"fields": {
                "outbox": row.id, "to": ",".join(row.recipients), "attempt": row.attempts}})

    def _apply(self, session, row: Claimed, outcome: Outcome, raw: bytes | None) -> bool:
        settings, now = self.gw.settings, self.gw.now()
        if isinstance(outcome, Delivered):
            return record.sent(session, settings, row, outcome.refused, _note(outcome), raw, now)
        if isinstance(outcome, Temporary):
            return record.retry(session, settings, row, outcome.reason, now)
        if isinstance(outcome, Permanent):
            return record.failed(session, settings, row, outcome.reason,
                                 outcome.recipients or tuple(row.recipients))
        return record.failed(session, settings, row, outcome.reason, ())

    # -- settle ---------------------------------------------------------------
    def _settle(self, force: bool = False) -> None:
        """Replay the journal, free dead senders' rows, retry unrecorded outcomes."""
        if not force and time.monotonic() - self._settled_at < SETTLE_EVERY:
            return
        if not self._settling.acquire(blocking=force):
            return  # another worker is at it
        try:
            live, dead = self.presence.others()
            self._live = live
            self._replay(live)
            if dead:
                with self.gw.db.unit_of_work() as session:
                    freed = release_dead(session, dead)
                for token in dead:
                    self.presence.forget(token)
                if freed:
                    log.warning("outbox: %d messages of a stopped sender queued again", freed)
            self._record_unrecorded()
            self._release_orphans()
            self._settled_at = time.monotonic()
        finally:
            self._settling.release()

    def _replay(self, live: set[str]) -> None:
        with self._lock:
            busy = set(self._in_flight)
        for entry in self.journal.entries():
            if entry.claimer in live or (entry.claimer == self.presence.token
                                         and entry.id in busy):
                continue  # a live sender is recording it itself
            finish = getattr(self.transport, "finish", None)
            if entry.staged and finish is not None and finish(Path(entry.staged),
                                                              str(entry.id)):
                log.info("outbox %d: finished a delivery a stopped sender began", entry.id)
            with self.gw.db.unit_of_work() as session:
                if record.replayed(session, self.gw.settings, entry, self.gw.now()):
                    log.info("outbox %d: delivery recorded from the journal", entry.id)
            self.journal.remove(entry.path)

    def _release_orphans(self) -> None:
        with self._lock:
            busy = set(self._in_flight) | {row.id for row, _, _ in self._unrecorded}
        with self.gw.db.unit_of_work() as session:
            freed = release_orphans(session, self.presence.token, busy,
                                    self.gw.now() - ORPHAN_AFTER)
        if freed:
            log.warning("outbox: %d claims lost with their connection queued again", freed)

    def _record_unrecorded(self) -> None:
        with self._lock:
            waiting, self._unrecorded = self._unrecorded, []
        try:
            while waiting:
                row, outcome, raw = waiting[0]
                with self.gw.db.unit_of_work() as session:
                    self._apply(session, row, outcome, raw)
                waiting.pop(0)
        finally:
            with self._lock:
                self._unrecorded = waiting + self._unrecorded

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


def _note(delivered: Delivered) -> str | None:
    if delivered.refused:
        return f"refused: {', '.join(delivered.refused)}"
    return delivered.note


class _Link:
    """A worker's transport link, opened on first use and closed when idle."""

    def __init__(self, transport):
        self.transport = transport
        self.link = None

    def get(self):
        if self.link is None:
            self.link = self.transport.open()
        return self.link

    def close(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            with contextlib.suppress(Exception):
                link.close()

