"""The sender's books: the rows its workers hold, and the outcomes the database has not heard.

**Record**: the outcomes of rows claimed together are written in one unit of
work (`claims.recording`, `record.py`) once the worker has tried each;
when the database fails there, the journal (for a delivery) or memory (for a
failure) keeps it, and the row stays ours meanwhile, so it is never delivered
twice. **Settle** (at most every `SETTLE_EVERY` s, and at once after such a
fault): replay this host's journal of deliveries the database has not recorded
yet, put the rows of dead senders of this host back to `pending`, record what
memory kept, free our own claims that no worker holds (`journal.py`,
`claims.py`), and remove what a killed sender left (orphan temporary files).

A disk that refuses writes (`refusals.py`) stops none of this for long: a
journalled delivery it does not let us finish stays in the journal, and its row
stays claimed (`held`), until a later settle can; files it does not let us
remove are removed later. Each condition is logged once.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import TemporaryFailure
from ..gateway import Gateway
from . import record
from .claims import Claim, Claimed, recording, release_dead, release_orphans
from .journal import DeliveryJournal, Entry
from .outcomes import Delivered, Outcome, Unfinished
from .presence import Presence
from .refusals import Refusals, refused

log = logging.getLogger("mailgate.outbox")
SETTLE_EVERY = 1.0  # seconds between looks for dead senders and unrecorded deliveries
ORPHAN_AFTER = dt.timedelta(seconds=30)  # an own claim no worker holds is lost after this


@dataclass(frozen=True)
class Attempted:
    """One delivery attempt of a claimed row: its outcome, the bytes as sent (or None)
    and its journal entry (or None)."""
    claim: Claim
    outcome: Outcome
    raw: bytes | None
    entry: Path | None


class Ledger:
    def __init__(self, gw: Gateway, journal: DeliveryJournal, presence: Presence, transport):
        self.gw = gw
        self.journal = journal
        self.presence = presence
        self.transport = transport
        self.live: set[str] = set()  # tokens of the other live senders of this host
        self.in_flight: set[int] = set()
        self.held: list[Entry] = []  # journalled deliveries the disk did not let us finish
        self.finishing = Refusals("finish journalled deliveries")
        self._orphans_due = True  # at start, and until the disk lets us remove them
        self._unrecorded: list[tuple[Claimed, Outcome, bytes | None]] = []
        self._lock = threading.Lock()
        self._settled_at = -SETTLE_EVERY
        self._settling = threading.Lock()

    @contextlib.contextmanager
    def holding(self, *row_ids: int) -> Iterator[None]:
        """A worker holds rows `row_ids` to deliver: settling leaves them alone."""
        with self._lock:
            self.in_flight.update(row_ids)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight.difference_update(row_ids)

    # -- record ---------------------------------------------------------------
    def record(self, attempts: list[Attempted]) -> None:
        """Record the outcomes of rows claimed together, in one transaction; their
        journal entries are removed once recorded."""
        todo = []
        for attempt in attempts:
            if isinstance(attempt.outcome, Unfinished):  # the journal's replay records it
                log.warning("outbox %d: delivery journalled, to be finished: %s",
                            attempt.claim.row.id, attempt.outcome.reason)
            else:
                todo.append(attempt)
        if not todo:
            return
        now = self.gw.now()
        try:
            with recording([attempt.claim for attempt in todo]) as session:
                ours = [record.outcome(session, self.gw.settings, attempt.claim.row,
                                       attempt.outcome, attempt.raw, now) for attempt in todo]
        except TemporaryFailure as error:
            for attempt in todo:
                log.warning("outbox %d: %s not recorded yet: %s", attempt.claim.row.id,
                            attempt.outcome.__class__.__name__.lower(), error)
            with self._lock:
                self._unrecorded.extend((attempt.claim.row, attempt.outcome, attempt.raw)
                                        for attempt in todo
                                        if attempt.entry is None)  # the journal has the others
                self._settled_at = -SETTLE_EVERY  # settle again before the next claim
            return
        for attempt, mine in zip(todo, ours):
            row = attempt.claim.row
            if attempt.entry is not None:
                self.journal.remove(attempt.entry)
            if not mine:
                log.info("outbox %d: recorded meanwhile by another sender", row.id)
            elif isinstance(attempt.outcome, Delivered):
                log.info("sent %s %s", row.channel, row.kind, extra={"fields": {
                    "outbox": row.id, "to": ",".join(row.recipients), "attempt": row.attempts}})

    # -- settle ---------------------------------------------------------------
    def settle(self, force: bool = False) -> None:
        """Replay the journal, free dead senders' rows, retry unrecorded outcomes."""
        if not force and time.monotonic() - self._settled_at < SETTLE_EVERY:
            return
        if not self._settling.acquire(blocking=force):
            return  # another worker is at it
        try:
            live, dead = self.presence.others()
            self.live = live
            self.held = self._replay(live)
            self._release_dead(dead)
            self._record_unrecorded()
            self.release_orphans()
            self.journal.tidy()
            self._remove_orphan_files()
            self._settled_at = time.monotonic()
        finally:
            self._settling.release()

    def _replay(self, live: set[str]) -> list[Entry]:
        """Record the journalled deliveries no live sender is recording; those the disk
        does not let us finish yet are returned."""
        with self._lock:
            busy = set(self.in_flight)
        held = []
        for entry in self.journal.entries():
            if entry.claimer in live or (entry.claimer == self.presence.token
                                         and entry.id in busy):
                continue  # a live sender is recording it itself
            if not self._finish(entry):
                held.append(entry)
                continue
            with self.gw.db.unit_of_work() as session:
                if record.replayed(session, self.gw.settings, entry,
                                   self.journal.sent_bytes(entry), self.gw.now()):
                    log.info("outbox %d: delivery recorded from the journal", entry.id)
            self.journal.remove(entry.path)
        return held

    def _finish(self, entry: Entry) -> bool:
        """Complete the file transport's rename that a stopped sender, or a disk that
        refused writes, left undone; False while the disk still refuses."""
        finish = getattr(self.transport, "finish", None)
        if not entry.staged or finish is None:
            return True
        try:
            if finish(Path(entry.staged), str(entry.id)):
                log.info("outbox %d: finished a journalled delivery", entry.id)
        except OSError as error:
            if not refused(error):
                raise
            self.finishing.note(error)
            return False
        self.finishing.cleared()
        return True

    def _release_dead(self, dead: set[str]) -> None:
        """Rows of dead senders of this host (their journal replayed) back to `pending`,
        but for those whose delivery waits in the journal; then their files go."""
        if not dead:
            return
        with self.gw.db.unit_of_work() as session:
            freed = release_dead(session, dead, {entry.id for entry in self.held})
        if freed:
            log.warning("outbox: %d messages of a stopped sender queued again", freed)
        for token in dead - {entry.claimer for entry in self.held}:
            if self.journal.discard(*self.journal.unjournalled(token)):
                self._forget(token)

    def _forget(self, token: str) -> None:
        try:
            self.presence.forget(token)
        except OSError as error:
            if not refused(error):
                raise
            self.journal.cleanup.note(error)

    def _remove_orphan_files(self) -> None:
        """Temporary files a killed sender left; not while a held delivery's file waits."""
        if not self._orphans_due or any(entry.staged for entry in self.held):
            return
        try:
            removed = self.transport.remove_orphans() + self.journal.remove_orphans()
        except OSError as error:
            if not refused(error):
                raise
            self.journal.cleanup.note(error)
            return
        self._orphans_due = False
        if removed:
            log.info("outbox: removed %d orphan temporary files", removed)

    def release_orphans(self) -> None:
        with self._lock:
            busy = (set(self.in_flight) | {row.id for row, _, _ in self._unrecorded}
                    | {entry.id for entry in self.held})
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
                    record.outcome(session, self.gw.settings, row, outcome, raw, self.gw.now())
                waiting.pop(0)
        finally:
            with self._lock:
                self._unrecorded = waiting + self._unrecorded
