"""Claiming outbox rows: one row per delivery, tied to the claimer's life.

A claim marks one due row `sending` under the claimer's token (`claimed_by`),
counts the attempt and commits at once. On PostgreSQL the claimer also takes a
session-level advisory lock on the row (in the UPDATE that marks it) and keeps
that connection until the outcome is recorded; several daemons pick distinct
rows (`FOR UPDATE SKIP LOCKED`), and a dead connection frees the lock at once.
The outcome's transaction gives the lock back before it commits: its UPDATE
holds the row lock until then, so nobody can take the row in between, and a
delivery costs two transactions, not three.

Who may take a row that is already `sending`:
- a dead sender of this host (presence file unlocked, see `journal.py`): the
  `settle` step replays its journal and puts the rest of its rows back to
  `pending` at once, so a restart resumes within seconds;
- another host's sender: only after `LEASE` and, on PostgreSQL, only when its
  advisory lock is free (nobody is still sending it). The lease covers the case
  the lock cannot: that host delivered and journalled the mail, then lost the
  database; its own replay records it when the database is back. A claimer
  looks for such rows before pending ones once every `LAPSED_LOOK` seconds, and
  whenever nothing is pending.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..db import Database, as_temporary, is_temporary
from ..models import Outbox

LEASE = dt.timedelta(minutes=2)
LOCK_SPACE = 0x6F757462  # "outb": first key of the two-key advisory locks on outbox rows
MAX_SKIPPED = 5  # rows passed over (their lock held elsewhere) before a claim gives up
LAPSED_LOOK = 1.0  # seconds: how often a busy claimer looks at lapsed leases first
TABLE = Outbox.__table__


@dataclass(frozen=True)
class Claimed:
    """The row's values as claimed; `attempts` counts this attempt."""
    id: int
    ticket_id: int | None
    channel: str
    kind: str
    locale: str
    recipients: list
    sender: str
    sender_name: str
    context: dict
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    auto_submitted: str | None
    attempts: int
    raw: bytes | None
    claimer: str

    @classmethod
    def of(cls, row, claimer: str) -> "Claimed":
        return cls(row["id"], row["ticket_id"], row["channel"], row["kind"], row["locale"],
                   list(row["recipients"]), row["sender"], row["sender_name"],
                   dict(row["context"]), row["message_id"], row["in_reply_to"],
                   row["references"], row["auto_submitted"], row["attempts"] + 1,
                   row["raw"], claimer)


# The SQL condition "this row is still ours, in this attempt", the claim given as bind
# parameters (`claim_params`): built once, since building and keying a statement cost
# the sender more CPU than running it.
MINE = and_(TABLE.c.id == bindparam("claim_id"), TABLE.c.status == "sending",
            TABLE.c.claimed_by == bindparam("claimer"), TABLE.c.attempts == bindparam("attempt"))


def claim_params(ident: int, claimer: str, attempt: int) -> dict:
    """The bind parameters of `MINE` for one claim."""
    return {"claim_id": ident, "claimer": claimer, "attempt": attempt}


class Claim:
    """A claimed row, and on PostgreSQL the connection holding its advisory lock."""

    def __init__(self, db: Database, row: Claimed, conn: Connection | None = None):
        self.db = db
        self.row = row
        self.conn = conn
        self.locked = conn is not None  # the advisory lock on the row is ours

    @contextlib.contextmanager
    def unit(self) -> Iterator[Session]:
        """A unit of work for recording the outcome (on the held connection, if any,
        whose advisory lock it gives back just before it commits)."""
        if self.conn is None:
            with self.db.unit_of_work() as session:
                yield session
            return
        session = Session(bind=self.conn, expire_on_commit=False)
        try:
            yield session
            session.flush()  # the outcome's UPDATE holds the row until the commit
            session.execute(UNLOCK, {"space": LOCK_SPACE, "id": self.row.id})
            self.locked = False
            session.commit()
        except BaseException as error:
            with contextlib.suppress(Exception):
                session.rollback()
            if is_temporary(error):
                raise as_temporary(error) from error
            raise
        finally:
            session.close()

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if self.locked:  # no outcome was recorded (the journal's replay records it)
                conn.execute(UNLOCK, {"space": LOCK_SPACE, "id": self.row.id})
                conn.commit()
                self.locked = False
        except Exception:  # a dead connection holds no lock; never pool a doubtful one
            conn.invalidate()
        conn.close()


class Claimer:
    def __init__(self, db: Database, token: str, clock: Callable[[], dt.datetime]):
        self.db = db
        self.token = token
        self.now = clock
        self._lapsed_looked = -LAPSED_LOOK  # monotonic time of the last look at leases

    def claim(self, alive: set[str]) -> Claim | None:
        """Take the next due row, or None. `alive`: tokens of this host's live senders,
        whose rows are never taken by lease."""
        now = self.now()
        due = {"now": now, "lease_ends": now - LEASE, "ours": sorted(alive | {self.token})}
        if self.db.is_postgresql:
            return self._claim_locked(due)
        with self.db.unit_of_work() as session:
            for branch in self._branches():
                row = session.execute(NEXT[branch, False, False], due).mappings().first()
                if row is not None:
                    self._mark(session, MARK_TAKEN, row, now)
                    return Claim(self.db, Claimed.of(row, self.token))
        return None

    def _branches(self) -> tuple[str, str]:
        """Where to look first: pending rows, but lapsed leases first once every
        `LAPSED_LOOK` seconds (and whenever nothing is pending)."""
        now = time.monotonic()
        if now - self._lapsed_looked < LAPSED_LOOK:
            return PENDING, LAPSED
        self._lapsed_looked = now
        return LAPSED, PENDING

    def _claim_locked(self, due: dict) -> Claim | None:
        conn = None
        try:
            conn = self.db.engine.connect()  # the database down is a temporary failure too
            with conn.begin():
                for branch in self._branches():
                    row = self._lockable_row(conn, branch, due)
                    if row is not None:
                        break
        except BaseException as error:
            if conn is not None:
                conn.invalidate()  # it may hold an advisory lock: never back into the pool
                conn.close()
            if is_temporary(error):
                raise as_temporary(error) from error
            raise
        if row is None:
            conn.close()
            return None
        return Claim(self.db, Claimed.of(row, self.token), conn)

    def _lockable_row(self, conn: Connection, branch: str, due: dict):
        """The next due row of `branch` whose advisory lock was free, locked and marked
        ours."""
        skipped: list[int] = []
        while len(skipped) < MAX_SKIPPED:
            query, values = (NEXT[branch, True, True], {**due, "skipped": skipped}) \
                if skipped else (NEXT[branch, True, False], due)
            row = conn.execute(query, values).mappings().first()
            if row is None:
                return None
            if self._mark(conn, LOCK_AND_MARK_TAKEN, row, due["now"]):
                return row
            skipped.append(row["id"])  # still being sent by a live claimer
        return None

    def _mark(self, executor, statement, row, now: dt.datetime) -> bool:
        """Mark `row` taken by us with `statement`: `MARK_TAKEN`, or `LOCK_AND_MARK_TAKEN`,
        which marks it only if its advisory lock was free (and is now ours)."""
        return bool(executor.execute(statement, {
            "claim_id": row["id"], "claimer": self.token, "taken_at": now,
            "attempt": row["attempts"] + 1, "space": LOCK_SPACE}).rowcount)


def in_turn():
    """The SQL condition "nothing it must follow is still to be sent": a status mail waits
    for every earlier answer or status mail about its ticket on its channel that is
    pending or being sent (an answer the relay put off, one in another worker's hands),
    so that the status never arrives before the answer that caused it (issue 12)."""
    earlier = TABLE.alias("earlier")
    return or_(TABLE.c.kind != "status_change", TABLE.c.ticket_id.is_(None), ~exists().where(
        earlier.c.ticket_id == TABLE.c.ticket_id, earlier.c.id < TABLE.c.id,
        earlier.c.channel == TABLE.c.channel,
        earlier.c.kind.in_(("agent_reply", "status_change")),
        earlier.c.status.in_(("pending", "sending"))))


# built once: an alias of the outbox table with all its columns cost more to make
# for every claim (~0.85 ms) than the claim's SELECT to run
IN_TURN = in_turn()

# The claim's statements, built once with bind parameters like IN_TURN: the next due
# row of a branch, with a row lock where rows are locked, passing over `skipped` ones.
# The two branches are two statements, each an ordered range of the index on (status,
# next attempt) that stops at the first row it may take: one statement OR-ing them
# read and sorted the whole queue for every claim (2.4 ms at 700 due rows).
PENDING, LAPSED = "pending", "lapsed"
BRANCHES = {
    # due now
    PENDING: (TABLE.c.status == "pending", TABLE.c.next_attempt_at <= bindparam("now")),
    # a lease run out (`lease_ends`), not of this host's live senders (`ours`)
    LAPSED: (TABLE.c.status == "sending", TABLE.c.claimed_at < bindparam("lease_ends"),
             or_(TABLE.c.claimed_by.is_(None),
                 TABLE.c.claimed_by.not_in(bindparam("ours", expanding=True)))),
}


def _next_due(branch: str, locked: bool, skipping: bool):
    query = select(TABLE).where(*BRANCHES[branch], IN_TURN)
    if skipping:
        query = query.where(TABLE.c.id.not_in(bindparam("skipped", expanding=True)))
    query = query.order_by(TABLE.c.next_attempt_at, TABLE.c.id).limit(1)
    return query.with_for_update(skip_locked=True) if locked else query


NEXT = {(branch, locked, skipping): _next_due(branch, locked, skipping)
        for branch in BRANCHES for locked in (False, True) for skipping in (False, True)}
MARK_TAKEN = update(TABLE).where(TABLE.c.id == bindparam("claim_id")).values(
    status="sending", claimed_by=bindparam("claimer"), claimed_at=bindparam("taken_at"),
    attempts=bindparam("attempt"))
# PostgreSQL: the row's advisory lock taken in the same statement, the row marked only
# if the lock was free. The planner may scan the table and test the lock first on every
# row (it does on a small outbox), so the lock's key is NULL but for the claimed row:
# the function is strict, and is not called at all for the others.
LOCK_AND_MARK_TAKEN = MARK_TAKEN.where(func.pg_try_advisory_lock(
    bindparam("space"), case((TABLE.c.id == bindparam("claim_id"), TABLE.c.id))))
UNLOCK = text("SELECT pg_advisory_unlock(:space, :id)")


def release_dead(session: Session, tokens: set[str], journalled: set[int]) -> int:
    """Rows of dead senders of this host (journal already replayed) back to `pending`,
    but for those delivered and still `journalled` (their replay records them)."""
    if not tokens:
        return 0
    query = update(TABLE).where(TABLE.c.status == "sending", TABLE.c.claimed_by.in_(tokens))
    if journalled:
        query = query.where(TABLE.c.id.not_in(journalled))
    return session.execute(query.values(status="pending", claimed_by=None)).rowcount


def release_orphans(session: Session, token: str, busy: set[int],
                    before: dt.datetime) -> int:
    """This sender's own claims that no worker of it is delivering, back to `pending`:
    a claim whose commit reached the database while the answer was lost (the
    connection died at that moment) is held by nobody. Only claims older than
    `before`, so a claim a worker has just made is never taken from it."""
    query = update(TABLE).where(TABLE.c.status == "sending", TABLE.c.claimed_by == token,
                                TABLE.c.claimed_at < before)
    if busy:
        query = query.where(TABLE.c.id.not_in(busy))
    return session.execute(query.values(status="pending", claimed_by=None)).rowcount
