"""Claiming outbox rows: a few due rows at a time, tied to the claimer's life.

A claim marks the next due rows (up to the number asked) `sending` under the
claimer's token (`claimed_by`), counts an attempt on each and commits at once.
On PostgreSQL the claimer also takes a session-level advisory lock on each row
(in the UPDATE that marks them) and keeps that connection (`Hold`) until their
outcomes are recorded; several daemons pick distinct rows (`FOR UPDATE SKIP
LOCKED`), and a dead connection frees the locks at once. The transaction that
records the outcomes (`recording`) gives the locks back before it commits: its
UPDATEs hold the rows until then, so nobody can take one in between. Rows
claimed together cost two transactions, whatever their number; a row not
attempted goes back as it was (`give_back`).

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


class Hold:
    """On PostgreSQL, the connection holding the advisory locks of the rows claimed
    together, open until each of them is released."""

    def __init__(self, conn: Connection, ids: list[int]):
        self.conn: Connection | None = conn
        self.locked = set(ids)  # rows whose advisory lock is still ours
        self.open = set(ids)  # rows not released yet

    def unlock(self, executor, idents: list[int]) -> None:
        executor.execute(UNLOCK, {"space": LOCK_SPACE, "ids": idents})
        self.locked.difference_update(idents)

    def release(self, ident: int) -> None:
        self.open.discard(ident)
        conn = self.conn
        if conn is None:
            return
        try:
            if ident in self.locked:  # no outcome was recorded (the journal's replay records it)
                self.unlock(conn, [ident])
                conn.commit()
        except Exception:  # a dead connection holds no lock; never pool a doubtful one
            self.conn = None
            conn.invalidate()
            conn.close()
            return
        if not self.open:
            self.conn = None
            conn.close()


class Claim:
    """A claimed row, and on PostgreSQL the hold on its advisory lock (shared by the rows
    claimed with it)."""

    def __init__(self, db: Database, row: Claimed, hold: Hold | None = None):
        self.db = db
        self.row = row
        self.hold = hold

    def unit(self):
        """A unit of work for recording this row's outcome (`recording`)."""
        return recording([self])

    def release(self) -> None:
        if self.hold is not None:
            self.hold.release(self.row.id)


@contextlib.contextmanager
def recording(claims: list[Claim]) -> Iterator[Session]:
    """One unit of work for recording the outcomes of rows claimed together: on their
    hold's connection, if any, whose advisory locks on them it gives back just before
    it commits (the outcomes' UPDATEs hold the rows until then)."""
    db, hold = claims[0].db, claims[0].hold
    conn = hold.conn if hold is not None else None
    with db.unit_of_work(conn) as session:
        yield session
        if conn is not None:
            session.flush()
            hold.unlock(session, [claim.row.id for claim in claims])


def give_back(claims: list[Claim]) -> None:
    """Put rows claimed together but not attempted back in the queue as they were."""
    with recording(claims) as session:
        session.execute(GIVE_BACK, [claim_params(c.row.id, c.row.claimer, c.row.attempts)
                                    for c in claims])


class Claimer:
    def __init__(self, db: Database, token: str, clock: Callable[[], dt.datetime]):
        self.db = db
        self.token = token
        self.now = clock
        self._lapsed_looked = -LAPSED_LOOK  # monotonic time of the last look at leases

    def claim(self, alive: set[str]) -> Claim | None:
        """Take the next due row, or None (`claim_some` for one row)."""
        claims = self.claim_some(alive, 1)
        return claims[0] if claims else None

    def claim_some(self, alive: set[str], up_to: int) -> list[Claim]:
        """Take up to `up_to` due rows, in the order they are due, in one transaction;
        none when nothing is due. `alive`: tokens of this host's live senders, whose
        rows are never taken by lease."""
        now = self.now()
        due = {"now": now, "lease_ends": now - LEASE, "ours": sorted(alive | {self.token}),
               "up_to": up_to}
        if self.db.is_postgresql:
            return self._claim_locked(due)
        with self.db.unit_of_work() as session:
            for branch in self._branches():
                rows = session.execute(NEXT[branch, False, False], due).mappings().all()
                if rows:
                    self._mark(session, MARK_TAKEN, rows, now)
                    return [Claim(self.db, Claimed.of(row, self.token)) for row in rows]
        return []

    def _branches(self) -> tuple[str, str]:
        """Where to look first: pending rows, but lapsed leases first once every
        `LAPSED_LOOK` seconds (and whenever nothing is pending)."""
        now = time.monotonic()
        if now - self._lapsed_looked < LAPSED_LOOK:
            return PENDING, LAPSED
        self._lapsed_looked = now
        return LAPSED, PENDING

    def _claim_locked(self, due: dict) -> list[Claim]:
        conn, rows = None, []
        try:
            conn = self.db.engine.connect()  # the database down is a temporary failure too
            with conn.begin():
                for branch in self._branches():
                    rows = self._lockable_rows(conn, branch, due)
                    if rows:
                        break
        except BaseException as error:
            if conn is not None:
                conn.invalidate()  # it may hold advisory locks: never back into the pool
                conn.close()
            if is_temporary(error):
                raise as_temporary(error) from error
            raise
        if not rows:
            conn.close()
            return []
        hold = Hold(conn, [row["id"] for row in rows])
        return [Claim(self.db, Claimed.of(row, self.token), hold) for row in rows]

    def _lockable_rows(self, conn: Connection, branch: str, due: dict) -> list:
        """The next due rows of `branch` whose advisory locks were free, locked and
        marked ours."""
        skipped: list[int] = []
        while len(skipped) < MAX_SKIPPED:
            query, values = (NEXT[branch, True, True], {**due, "skipped": skipped}) \
                if skipped else (NEXT[branch, True, False], due)
            rows = conn.execute(query, values).mappings().all()
            if not rows:
                return []
            taken = self._mark(conn, LOCK_AND_MARK_TAKEN, rows, due["now"])
            if taken:
                return [row for row in rows if row["id"] in taken]
            skipped.extend(row["id"] for row in rows)  # still being sent by live claimers
        return []

    def _mark(self, executor, statement, rows, now: dt.datetime) -> set[int]:
        """Mark `rows` taken by us with `statement`: `MARK_TAKEN`, or
        `LOCK_AND_MARK_TAKEN`, which marks a row only if its advisory lock was free (and
        is now ours). Returns the ids marked."""
        return set(executor.execute(statement, {
            "ids": [row["id"] for row in rows], "claimer": self.token, "taken_at": now,
            "space": LOCK_SPACE}).scalars())


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
    query = query.order_by(TABLE.c.next_attempt_at, TABLE.c.id).limit(bindparam("up_to"))
    return query.with_for_update(skip_locked=True) if locked else query


NEXT = {(branch, locked, skipping): _next_due(branch, locked, skipping)
        for branch in BRANCHES for locked in (False, True) for skipping in (False, True)}
MARK_TAKEN = update(TABLE).where(TABLE.c.id.in_(bindparam("ids", expanding=True))).values(
    status="sending", claimed_by=bindparam("claimer"), claimed_at=bindparam("taken_at"),
    attempts=TABLE.c.attempts + 1).returning(TABLE.c.id)
# PostgreSQL: each row's advisory lock taken in the same statement, a row marked only
# if its lock was free. The planner may scan the table and test the lock first on every
# row (it does on a small outbox), so the lock's key is NULL but for the claimed rows:
# the function is strict, and is not called at all for the others.
LOCK_AND_MARK_TAKEN = MARK_TAKEN.where(func.pg_try_advisory_lock(
    bindparam("space"), case((TABLE.c.id.in_(bindparam("ids", expanding=True)), TABLE.c.id))))
# a row claimed and not attempted, back as it was
GIVE_BACK = update(TABLE).where(MINE).values(status="pending", claimed_by=None,
                                             attempts=TABLE.c.attempts - 1)
UNLOCK = text("SELECT pg_advisory_unlock(:space, id) "
              "FROM unnest(CAST(:ids AS integer[])) AS id")


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
