"""The outbox under faults: a disk that refuses writes, a database lost between delivery
and record, senders killed mid-delivery, a slow relay, files left by a kill.

Real peers throughout: the file transport on a real folder made unwritable (an
immutable folder: root ignores write bits but not `chattr +i`; a path through a
regular file), an aiosmtpd relay, SQLite and PostgreSQL (the database lost
through a cut TCP proxy, or locked by another connection), `mailgate run`
processes killed with SIGKILL.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import errno
import fcntl
import logging
import os
import random
import re
import signal
import sqlite3
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import event, func, select, update

from mailgate.db import Database
from mailgate.errors import TemporaryFailure
from mailgate.gateway import Gateway
from mailgate.metrics import Metrics
from mailgate.models import Outbox, TicketEvent
from mailgate.outbound import claims, record
from mailgate.outbound.journal import DeliveryJournal, Entry
from mailgate.outbound.presence import Presence
from mailgate.outbound.sender import OutboxSender
from mailgate.pipeline import Envelope, ingest
from mailgate.storage import BlobStore, Staged
from tests.servers.clock import Clock
from tests.mails import make_mail
from tests.servers.daemon import DaemonProcess, DaemonThread
from tests.servers.relay import RecordingRelay, free_port
from tests.servers.tcpproxy import TcpProxy
from tests.test_daemon_process import setup_support, write_config

PIPE = Envelope("pipe")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def relay():
    server = RecordingRelay().start()
    yield server
    server.stop()


def rows(gw) -> list[Outbox]:
    with gw.db.unit_of_work() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def failure_events(gw) -> list[TicketEvent]:
    with gw.db.unit_of_work() as session:
        return list(session.scalars(select(TicketEvent).where(
            TicketEvent.kind == "delivery_failed")))


def eml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


# -- 1. a disk that refuses writes: temporary, never permanent ---------------------------

@pytest.fixture(params=["immutable folder", "path through a file"])
def unwritable(request, tmp_path):
    """(outbox folder, make it unwritable, make it writable again): real conditions."""
    if request.param == "immutable folder":
        folder = tmp_path / "outbox"
        folder.mkdir()
        subprocess.run(["chattr", "+i", str(folder)], check=True)  # EPERM, even for root
        yield folder, lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
        subprocess.run(["chattr", "-i", str(folder)], check=False)
    else:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        yield blocker / "outbox", blocker.unlink  # ENOTDIR until the file goes


def test_unwritable_outbox_folder_is_a_temporary_failure(settings, parser_pool, departments,
                                                         clock, unwritable):
    folder, repair = unwritable
    gw = Gateway(settings.replace(outbound={"dir": str(folder)}), parser=parser_pool,
                 clock=clock)
    try:
        ingest(gw, make_mail(), PIPE)
        assert OutboxSender(gw).run_once() == 2
        stored = rows(gw)
        assert [(r.status, r.attempts) for r in stored] == [("pending", 1)] * 2
        assert all("cannot write" in r.last_error for r in stored)
        assert failure_events(gw) == []  # nothing recorded against the ticket
        repair()
        clock.advance(minutes=2)
        assert OutboxSender(gw).run_once() == 2
        assert [r.status for r in rows(gw)] == ["sent", "sent"]
        assert len(eml_files(folder)) == 2
    finally:
        gw.close()


class Grumpy:
    """A relay that answers the greeting, then refuses whoever we are."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        return ["554 5.7.1 not you"]

    async def handle_HELO(self, server, session, envelope, hostname):
        return "554 5.7.1 not you"


@pytest.mark.parametrize("relay_kind", ["refuses us", "not listening"])
def test_relay_trouble_before_the_transaction_is_temporary(settings, parser_pool, departments,
                                                           clock, relay_kind):
    """A 5xx before MAIL FROM is about us or the relay, not the message: it waits and
    nobody's address is blamed."""
    controller = Controller(Grumpy(), hostname="127.0.0.1", port=free_port())
    if relay_kind == "refuses us":
        controller.start()
    s = settings.replace(outbound={"transport": "smtp", "relay_host": "127.0.0.1",
                                   "relay_port": controller.port, "relay_security": "none"})
    gw = Gateway(s, parser=parser_pool, clock=clock)
    try:
        ingest(gw, make_mail(), PIPE)
        OutboxSender(gw).run_once()
        assert [(r.status, r.attempts) for r in rows(gw)] == [("pending", 1)] * 2
        assert failure_events(gw) == []
    finally:
        gw.close()
        if relay_kind == "refuses us":
            controller.stop()


# -- 2. the database lost between delivery and record: never sent twice ------------------

class DatabaseFault:
    """Cut the sender off its database and give it back. PostgreSQL: through a TCP
    proxy that drops every connection. SQLite: another connection holds the write
    lock (the gateway's busy timeout shortened so that it gives up quickly)."""

    def __init__(self, url: str):
        self.url = url
        self.proxy = None
        self.holder: sqlite3.Connection | None = None
        self.cuts = 0
        if url.startswith("postgresql"):
            self.proxy = TcpProxy("127.0.0.1", 5432)
            self.gateway_url = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{self.proxy.port}/")
        else:
            self.gateway_url = url

    def database(self) -> Database:
        database = Database(self.gateway_url)
        if self.proxy is None:
            @event.listens_for(database.engine, "connect")
            def _short_wait(dbapi_conn, _record):  # after the engine's own PRAGMAs
                dbapi_conn.execute("PRAGMA busy_timeout=200")
        return database

    def cut(self) -> None:
        self.cuts += 1
        if self.proxy is not None:
            self.proxy.cut()
            return
        self.holder = sqlite3.connect(self.url.split("///", 1)[1], isolation_level=None,
                                      check_same_thread=False)
        self.holder.execute("BEGIN EXCLUSIVE")

    def restore(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        elif self.holder is not None:
            self.holder.execute("ROLLBACK")
            self.holder.close()
            self.holder = None

    def close(self) -> None:
        self.restore()
        if self.proxy is not None:
            self.proxy.close()


@pytest.fixture
def faulty(settings, parser_pool, departments, relay, clock):
    fault = DatabaseFault(settings.database_url)
    s = settings.replace(outbound={"transport": "smtp", "relay_host": "127.0.0.1",
                                   "relay_port": relay.port, "relay_security": "none"})
    gw = Gateway(s, database=fault.database(), parser=parser_pool, clock=clock)
    yield gw, fault
    fault.close()
    gw.close()


def test_database_lost_after_delivery_records_it_once_back(faulty, relay):
    gw, fault = faulty
    ingest(gw, make_mail(), PIPE)  # an acknowledgement and an agent notification
    relay.hooks.append(lambda item: fault.cut() if not fault.cuts else None)
    sender = OutboxSender(gw, workers=1)
    # both rows claimed together: the first delivered, then the database went away;
    # the second, already ours, delivered all the same, both kept in the journal
    assert sender.run_once() == 2
    assert len(relay.received) == 2
    assert len(DeliveryJournal(sender.journal.folder).entries()) == 2
    with pytest.raises(TemporaryFailure):
        sender.run_once()  # still away: nothing claimed, nothing sent again
    assert len(relay.received) == 2
    fault.restore()
    assert sender.run_once() == 0  # both recorded from the journal, nothing sent again
    assert len(relay.received) == 2
    stored = rows(gw)
    assert [r.status for r in stored] == ["sent", "sent"]
    assert all(r.attempts == 1 for r in stored)
    ids = [email.message_from_bytes(r.raw)["Message-ID"] for r in relay.received]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert failure_events(gw) == []
    assert DeliveryJournal(sender.journal.folder).entries() == []


def test_database_lost_after_delivery_then_sender_restarted(faulty, relay):
    """The database fails after the relay's 250 and the sender is gone before it is
    back (a daemon restarted meanwhile): the next sender records it from the journal."""
    gw, fault = faulty
    ingest(gw, make_mail(), PIPE)
    relay.hooks.append(lambda item: fault.cut() if not fault.cuts else None)
    OutboxSender(gw, workers=1).run_once()
    fault.restore()
    assert OutboxSender(gw).run_once() == 0  # both were delivered and journalled
    assert [r.status for r in rows(gw)] == ["sent", "sent"]
    assert all(r.attempts == 1 for r in rows(gw))
    assert len(relay.received) == 2 and failure_events(gw) == []


def test_database_lost_after_a_failure_keeps_the_row_for_the_same_sender(faulty, relay,
                                                                         clock):
    """A refusal that cannot be recorded is kept in memory and recorded later; the row
    stays claimed meanwhile, so no other sender of this host sends it."""
    gw, fault = faulty
    ingest(gw, make_mail(), PIPE)
    relay.answer = "451 4.3.0 try later"
    fault.cut()
    sender = OutboxSender(gw, workers=1)
    with pytest.raises(TemporaryFailure):
        sender.run_once()
    fault.restore()
    sender.run_once()
    assert {(r.status, r.attempts) for r in rows(gw)} == {("pending", 1)}
    relay.answer = None
    clock.advance(minutes=2)
    assert sender.run_once() == 2
    assert len(relay.received) == 2


# -- 3. senders that die: rows freed at once, deliveries finished, never resent ----------

def test_a_dead_sender_leaves_nothing_waiting_and_nothing_sent_twice(settings, parser_pool,
                                                                     departments, clock):
    """The state a `kill -9` leaves at the worst moment, built by hand: one row claimed
    and not yet sent, one written and journalled but not yet renamed into place."""
    gw = Gateway(settings, parser=parser_pool, clock=clock)
    try:
        for i in range(2):
            ingest(gw, make_mail(subject=f"dead {i}"), PIPE)  # four rows
        storage = Path(settings.storage.dir)
        dead = Presence(storage / "outbox-journal" / "claimers")
        dead.enter()
        claimer = claims.Claimer(gw.db, dead.token, gw.now)
        undelivered = claimer.claim(set())
        delivered = claimer.claim(set())
        outbox_dir = settings.outbox_dir
        staged = Staged(outbox_dir, b"X-Envelope-From: <x@y>\r\n\r\nthe bytes as journalled")
        DeliveryJournal(storage / "outbox-journal").write(Entry(
            delivered.row.id, dead.token, delivered.row.attempts, staged=str(staged.path)))
        # the process dies: its flocks and database connections go with it
        staged._close()
        dead.leave()
        for claim in (undelivered, delivered):
            if claim.hold is not None and claim.hold.conn is not None:
                claim.hold.conn.invalidate()

        assert OutboxSender(gw).run_once() == 3  # without waiting for any lease
        stored = {r.id: r for r in rows(gw)}
        assert {r.status for r in stored.values()} == {"sent"}
        assert stored[delivered.row.id].attempts == 1  # finished, not sent again
        assert stored[undelivered.row.id].attempts == 2
        finished = outbox_dir / f"{delivered.row.id}.eml"
        assert finished.read_bytes().endswith(b"the bytes as journalled")
        assert len(eml_files(outbox_dir)) == 4
        assert not list(outbox_dir.glob(".tmp-*"))
        assert not (storage / "outbox-journal" / "claimers" / f"{dead.token}.lock").exists()
    finally:
        gw.close()


def test_another_hosts_claim_waits_for_its_lease_and_its_connection(settings, parser_pool,
                                                                   departments, clock):
    """A token with no presence file here is another host's: its row is taken only after
    the lease, and on PostgreSQL only once no session holds the row's lock."""
    gw = Gateway(settings, parser=parser_pool, clock=clock)
    try:
        ingest(gw, make_mail(), PIPE)
        with gw.db.unit_of_work() as session:
            first = session.scalar(select(func.min(Outbox.id)))
            session.execute(update(Outbox).where(Outbox.id != first).values(status="sent"))
        other = claims.Claimer(gw.db, "elsewhere-1-aaaa", gw.now).claim(set())
        here = claims.Claimer(gw.db, "here-2-bbbb", gw.now)
        assert here.claim(set()) is None
        clock.advance(seconds=claims.LEASE.total_seconds() + 1)
        if gw.db.is_postgresql:
            assert here.claim(set()) is None  # its sender still holds it
            other.hold.conn.invalidate()  # that host's process dies
        # the server notices the closed connection (and frees its lock) a moment later
        taken, waited = here.claim(set()), 0
        while taken is None and waited < 100:
            time.sleep(0.05)
            taken, waited = here.claim(set()), waited + 1
        assert taken is not None and taken.row.id == first and taken.row.attempts == 2
        taken.release()
    finally:
        gw.close()


def test_an_own_claim_lost_with_its_connection_is_queued_again(settings, parser_pool,
                                                              departments, clock):
    """The claim's commit reached the database but its answer was lost (PostgreSQL
    stopped `immediate` at that moment): the live sender's worker never got the row.
    After ORPHAN_AFTER the sender puts it back; a claim being worked on stays."""
    gw = Gateway(settings, parser=parser_pool, clock=clock)
    try:
        ingest(gw, make_mail(), PIPE)
        sender = OutboxSender(gw)
        with gw.db.unit_of_work() as session:
            ids = sorted(session.scalars(select(Outbox.id)))
            session.execute(update(Outbox).values(status="sending", claimed_at=clock(),
                                                  claimed_by=sender.presence.token))
        sender.ledger.in_flight.add(ids[1])  # a worker is delivering this one
        sender.ledger.release_orphans()
        assert {r.status for r in rows(gw)} == {"sending"}  # too young to be lost
        clock.advance(seconds=31)
        sender.ledger.release_orphans()
        assert [r.status for r in rows(gw)] == ["pending", "sending"]
    finally:
        gw.close()


def insert_rows(database: Database, count: int, now: dt.datetime) -> None:
    raw = make_mail(sender="support@example.com", to="customer@example.org",
                    subject="Queued", body="x" * 2000)
    with database.unit_of_work() as session:
        session.execute(Outbox.__table__.insert(), [dict(
            channel="email", kind="ack", locale="en", recipients=["customer@example.org"],
            sender="support@example.com", sender_name="Support", context={},
            message_id=f"<kill-{i}@mg.example.com>", status="pending", attempts=0,
            next_attempt_at=now, created_at=now, raw=raw) for i in range(count)])


class Consumer(threading.Thread):
    """Takes each .eml out of the outbox folder as soon as it is there, as a pickup
    service would, counting deliveries per outbox id."""

    def __init__(self, folder: Path, into: Path):
        super().__init__(daemon=True)
        self.folder, self.into = folder, into
        self.into.mkdir()
        self.counts: dict[str, int] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sweep()
            time.sleep(0.002)
        self.sweep()

    def sweep(self) -> None:
        for path in eml_files(self.folder):
            n = self.counts.get(path.stem, 0) + 1
            try:
                os.rename(path, self.into / f"{path.stem}.{n}.eml")
            except FileNotFoundError:
                continue
            self.counts[path.stem] = n


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def kill_hard(daemon: DaemonProcess) -> None:
    """SIGKILL the daemon; its worker processes end with their pipe (or are ended)."""
    kids = children(daemon.proc.pid)
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.wait(30)
    deadline = time.monotonic() + 10
    for pid in kids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


def kill_cycles(db_url: str, tmp_path: Path, cycles: int, rows_count: int,
                seed: int = 14) -> dict:
    """Start `mailgate run`, let it send for a random moment, SIGKILL it; again and
    again; then let one daemon finish. Returns the measured figures."""
    database = setup_support(db_url)
    insert_rows(database, rows_count, dt.datetime.now(dt.timezone.utc))
    storage = tmp_path / "var"
    config = tmp_path / "mailgate.toml"
    write_config(config, db_url, storage, "[outbound]\nsend_interval = 2\n")
    consumer = Consumer(storage / "outbox", tmp_path / "consumed")
    consumer.start()
    rng = random.Random(seed)
    reclaim: list[float] = []
    try:
        for _ in range(cycles):
            with database.unit_of_work() as session:
                held = set(session.scalars(select(Outbox.id).where(Outbox.status == "sending")))
            daemon = DaemonProcess(config).start()
            started = time.monotonic()
            if held:  # rows the last killed daemon held: how soon are they sent?
                while time.monotonic() - started < 60:
                    with database.unit_of_work() as session:
                        if not session.scalar(select(func.count()).select_from(Outbox).where(
                                Outbox.id.in_(held), Outbox.status != "sent")):
                            break
                    time.sleep(0.02)
                reclaim.append(time.monotonic() - started)
            time.sleep(rng.uniform(0.05, 0.5))
            kill_hard(daemon)
        daemon = DaemonProcess(config).start()
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline:
                with database.unit_of_work() as session:
                    if not session.scalar(select(func.count()).select_from(Outbox).where(
                            Outbox.status != "sent")):
                        break
                time.sleep(0.1)
        finally:
            daemon.stop()
    finally:
        consumer.stopped.set()
        consumer.join(10)
    with database.unit_of_work() as session:
        statuses = dict(session.execute(select(Outbox.status, func.count()).group_by(
            Outbox.status)).all())
    database.dispose()
    return {"duplicates": sum(n - 1 for n in consumer.counts.values() if n > 1),
            "delivered": len(consumer.counts), "statuses": statuses,
            "reclaim_max": max(reclaim, default=0.0), "reclaim": reclaim,
            "orphans": list((storage / "outbox").glob(".tmp-*")),
            "journal": DeliveryJournal(storage / "outbox-journal").entries()}


def test_kill_9_while_sending_sends_nothing_twice_and_holds_nothing_back(db_url, tmp_path):
    figures = kill_cycles(db_url, tmp_path, cycles=4, rows_count=1000)
    assert figures["duplicates"] == 0, figures
    assert figures["statuses"] == {"sent": 1000}
    assert figures["delivered"] == 1000
    assert figures["reclaim_max"] < 30, figures["reclaim"]
    assert figures["orphans"] == [] and figures["journal"] == []


# -- 4. keeping up: a pool of deliveries, each worker reusing its relay connection -------

class SlowRelay:
    """Takes `delay` seconds per DATA; counts connections and deliveries in parallel."""

    def __init__(self, delay: float):
        self.delay = delay
        self.sessions: set[int] = set()
        self.received = 0
        self.busy = self.most_busy = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server, session, envelope):
        self.sessions.add(id(session))
        self.busy += 1
        self.most_busy = max(self.most_busy, self.busy)
        await asyncio.sleep(self.delay)
        self.busy -= 1
        self.received += 1
        return "250 OK"


def test_deliveries_run_in_parallel_over_reused_connections(settings, parser_pool, clock):
    from mailgate.models import Address, Department

    relay = SlowRelay(0.1)
    relay.controller.start()
    s = settings.replace(outbound={"transport": "smtp", "relay_host": "127.0.0.1",
                                   "relay_port": relay.controller.port,
                                   "relay_security": "none"})
    gw = Gateway(s, parser=parser_pool, clock=clock)
    try:
        with gw.db.unit_of_work() as session:  # no agents: one acknowledgement per mail
            session.add(Address(address="support@example.com",
                                department=Department(key="support", name="Support")))
        for i in range(24):
            ingest(gw, make_mail(sender=f"c{i}@example.org", subject=f"n {i}"), PIPE)
        started = time.monotonic()
        assert OutboxSender(gw, workers=4).run_once() == 24
        elapsed = time.monotonic() - started
    finally:
        gw.close()
        relay.controller.stop()
    assert relay.received == 24
    assert relay.most_busy == 4
    assert len(relay.sessions) <= 4  # one connection per worker, reused
    assert elapsed < 24 * 0.1 * 0.75, elapsed  # one at a time it takes at least 2.4 s


@pytest.mark.parametrize("workers", [1, 3])
def test_the_pool_has_as_many_workers_as_configured(settings, parser_pool, clock, workers):
    """`[outbound] workers`: that many deliveries at once, each over its own connection
    (the daemon builds its sender from the settings alone)."""
    from mailgate.models import Address, Department

    relay = SlowRelay(0.2)
    relay.controller.start()
    s = settings.replace(outbound={"transport": "smtp", "relay_host": "127.0.0.1",
                                   "relay_port": relay.controller.port,
                                   "relay_security": "none", "workers": workers})
    gw = Gateway(s, parser=parser_pool, clock=clock)
    try:
        with gw.db.unit_of_work() as session:
            session.add(Address(address="support@example.com",
                                department=Department(key="support", name="Support")))
        for i in range(9):
            ingest(gw, make_mail(sender=f"c{i}@example.org", subject=f"n {i}"), PIPE)
        assert OutboxSender(gw).run_once() == 9
    finally:
        gw.close()
        relay.controller.stop()
    assert relay.received == 9
    assert relay.most_busy == workers and len(relay.sessions) == workers


def test_metrics_show_the_oldest_waiting_message(settings, parser_pool, departments, clock):
    gw = Gateway(settings, parser=parser_pool, clock=clock)
    try:
        ingest(gw, make_mail(), PIPE)
        sender = OutboxSender(gw)
        metrics = Metrics()
        metrics.watch_outbox(sender.depth, sender.oldest_due_age)
        clock.advance(seconds=90)
        text = metrics.render().decode()
        assert "mailgate_outbox_depth 2.0" in text
        assert "mailgate_outbox_oldest_pending_seconds 90.0" in text
        sender.run_once()
        text = metrics.render().decode()
        assert "mailgate_outbox_depth 0.0" in text
        assert "mailgate_outbox_oldest_pending_seconds 0.0" in text
    finally:
        gw.close()


# -- 5. files left by a kill, and the modes of what we create ----------------------------

def test_orphan_temporary_files_are_removed_at_start(settings, tmp_path):
    storage = Path(settings.storage.dir)
    raw = BlobStore(storage / "raw", suffix=".eml", fsync=False)
    raw.put(b"kept")
    old = time.time() - 60
    orphans = [storage / "raw" / "ab" / "cd" / ".tmp-dead1", storage / "outbox" / ".tmp-dead2",
               storage / "attachments" / "01" / "02" / ".tmp-dead3",
               storage / "outbox-journal" / ".tmp-dead4"]
    for path in orphans:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
        os.utime(path, (old, old))
    writing = Staged(storage / "outbox", b"being written by a live process")
    os.utime(writing.path, (old, old))
    daemon = DaemonThread(settings.replace(smtp={"listen": ("127.0.0.1:0",)},
                                           http={"listen": "127.0.0.1:0"},
                                           daemon={"delivery_workers": 1})).start()
    daemon.stop()
    assert [p for p in orphans if p.exists()] == []
    assert writing.path.exists()  # its writer holds it: not an orphan
    writing.commit(storage / "outbox" / "done.eml")
    assert raw.get(raw.put(b"kept")) == b"kept"


def test_storage_folders_are_0700_and_files_0600_whatever_the_umask(tmp_path):
    for umask in (0o000, 0o022, 0o277):
        root = tmp_path / f"umask-{umask:o}" / "var"
        previous = os.umask(umask)
        try:
            store = BlobStore(root / "raw", suffix=".eml")
            path = store.path(store.put(b"hello"))
            journal = DeliveryJournal(root / "outbox-journal")
            entry = journal.write(Entry(1, "host-1-abcd", 1))
        finally:
            os.umask(previous)
        for folder in (root, root / "raw", path.parent, path.parent.parent,
                       root / "outbox-journal"):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, (umask, folder)
        for file in (path, entry):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, (umask, file)


def test_a_presence_file_tells_live_from_dead(tmp_path):
    me, other = Presence(tmp_path), Presence(tmp_path)
    me.enter()
    other.enter()
    assert me.others() == ({other.token}, set())
    other.leave()
    assert me.others() == (set(), {other.token})
    with open(tmp_path / f"{me.token}.lock", "rb") as fh:  # ours is held by us
        with pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    me.leave()


# -- 6. the journal on a disk that refuses writes: quiet, kept, cleaned later -----------

class RefusingOs:
    """The `os` a module under test sees on a disk that refuses writes under `folder`
    with `code`: removing, renaming and creating files there fail; everything else is
    the real `os`. `after(paths)`: refuse only once a call on paths it names succeeded."""

    WRITES = {"unlink", "remove", "rename", "replace", "mkdir", "rmdir"}
    CREATE = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def __init__(self, folder: Path, code: int, after=None):
        self.folder, self.code, self.after = str(folder), code, after
        self.refusing = after is None

    def __getattr__(self, name: str):
        real = getattr(os, name)
        if name not in self.WRITES and name != "open":
            return real

        def call(path, *args, **kwargs):
            writes = name != "open" or (args and args[0] & self.CREATE)
            paths = [str(p) for p in (path, *args[:1]) if isinstance(p, (str, Path))]
            if self.refusing and writes and any(p.startswith(self.folder) for p in paths):
                raise OSError(self.code, os.strerror(self.code), str(path))
            result = real(path, *args, **kwargs)
            if self.after is not None and self.after(paths):
                self.refusing, self.after = True, None
            return result
        return call


@pytest.fixture(params=["EROFS", "EACCES", "ENOSPC", "immutable folder",
                        "read-only bind mount", "folder mode 0500"])
def refusing(request, monkeypatch):
    """`refuse(folder)`: a context in which `folder` refuses writes: injected errnos
    (the `os` of the journal and storage modules), or real conditions: `chattr +i`
    (EPERM, even for root), a read-only bind mount as tests/faults uses (EROFS; needs
    the privilege to mount) or a folder mode (EACCES; not for root, who ignores it)."""
    from mailgate import storage
    from mailgate.outbound import journal
    from tests.faults.peers import Unavailable, bind_readonly, unbind

    kind = request.param

    @contextlib.contextmanager
    def refuse(folder: Path):
        if kind.startswith("E"):
            disk = RefusingOs(folder, getattr(errno, kind))
            with monkeypatch.context() as patch:
                patch.setattr(journal, "os", disk)
                patch.setattr(storage, "os", disk)
                yield
        elif kind == "immutable folder":
            subprocess.run(["chattr", "+i", str(folder)], check=True)
            try:
                yield
            finally:
                subprocess.run(["chattr", "-i", str(folder)], check=True)
        elif kind == "read-only bind mount":
            try:
                bind_readonly(folder)
            except Unavailable as reason:
                pytest.skip(f"cannot mount here: {reason}")
            try:
                yield
            finally:
                unbind(folder)
        else:
            if os.geteuid() == 0:
                pytest.skip("root writes whatever the folder's mode")
            folder.chmod(0o500)
            try:
                yield
            finally:
                folder.chmod(0o700)
    return refuse


def journal_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def one_row_left(gw) -> int:
    """Leave one row of the freshly ingested mail pending (the others as sent): its id."""
    with gw.db.unit_of_work() as session:
        first = session.scalar(select(func.min(Outbox.id)))
        session.execute(update(Outbox).where(Outbox.id != first).values(status="sent"))
    return first


def delivered_unrecorded(gw, fault, relay) -> tuple[OutboxSender, int]:
    """One row delivered through the relay and the database lost before its record: the
    sender that delivered it (its journal entry and copy remain) and the row's id."""
    ingest(gw, make_mail(), PIPE)
    first = one_row_left(gw)
    relay.hooks.append(lambda item: fault.cut() if not fault.cuts else None)
    sender = OutboxSender(gw, workers=1)
    assert sender.run_once() == 1
    return sender, first


def test_a_journal_the_disk_will_not_clean_stays_quiet_and_sends_nothing_twice(
        faulty, relay, refusing, caplog):
    """Delivered, the database lost before the record: the entry and its copy stay. The
    disk then refuses writes and the database comes back: the delivery is recorded
    from the journal (bytes and all), the entry cannot be removed and stays, with one
    warning and no traceback however often the sender settles; nothing is sent again;
    once the disk takes writes, the files go."""
    gw, fault = faulty
    sender, first = delivered_unrecorded(gw, fault, relay)
    folder = sender.journal.folder
    assert [name.rsplit(".", 1)[1] for name in journal_files(folder)] == ["eml", "json"]
    fault.restore()
    caplog.clear()
    caplog.set_level(logging.INFO, logger="mailgate.outbox")
    with refusing(folder):
        for _ in range(3):
            sender.ledger.settle(force=True)
        [row] = [r for r in rows(gw) if r.id == first]
        assert (row.status, row.attempts) == ("sent", 1)
        assert row.raw == relay.received[0].raw  # recorded from the journal, bytes and all
        assert len(journal_files(folder)) == 2  # not removable: still there
        [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert re.fullmatch(r"outbox: cannot remove delivery journal files \(.+\); "
                            r"trying again later", warning)
        assert not any(r.exc_info for r in caplog.records)
    sender.ledger.settle(force=True)
    assert journal_files(folder) == []
    assert "outbox: can remove delivery journal files again" in caplog.messages
    assert len(relay.received) == 1 and failure_events(gw) == []


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_delivery_the_disk_will_not_let_finish_waits_in_the_journal(
        settings, parser_pool, departments, clock, code, monkeypatch, caplog):
    """The file transport journalled its delivery, then the disk refused the rename
    into place, the removal of the temporary file and the journal's taking back: the
    entry stands. The row stays claimed (not queued again, even after ORPHAN_AFTER)
    and nothing is written twice; once the disk takes writes, the replay finishes
    the delivery and records it, bytes and all."""
    from mailgate import storage
    from mailgate.outbound import journal

    gw = Gateway(settings, parser=parser_pool, clock=clock)
    try:
        ingest(gw, make_mail(), PIPE)
        first = one_row_left(gw)
        disk = RefusingOs(settings.storage.dir, code,
                          after=lambda paths: any(p.endswith(".json") for p in paths))
        monkeypatch.setattr(journal, "os", disk)
        monkeypatch.setattr(storage, "os", disk)
        caplog.set_level(logging.INFO, logger="mailgate.outbox")
        sender = OutboxSender(gw, workers=1)
        assert sender.run_once() == 1
        clock.advance(seconds=60)
        assert sender.run_once() == 0
        [row] = [r for r in rows(gw) if r.id == first]
        assert (row.status, row.attempts, row.raw) == ("sending", 1, None)
        outbox_dir = settings.outbox_dir
        assert eml_files(outbox_dir) == [] and len(list(outbox_dir.glob(".tmp-*"))) == 1
        assert not any(r.exc_info for r in caplog.records)
        assert len([m for m in caplog.messages if "cannot finish" in m]) == 1
        disk.refusing = False
        assert sender.run_once() == 0
        [row] = [r for r in rows(gw) if r.id == first]
        assert (row.status, row.attempts) == ("sent", 1)
        [delivered] = eml_files(outbox_dir)
        assert delivered.read_bytes().endswith(row.raw)
        assert journal_files(sender.journal.folder) == []
        assert list(outbox_dir.glob(".tmp-*")) == []
    finally:
        gw.close()


# -- 7. the bytes as sent, on every sent row: also those recorded from the journal -------

@pytest.mark.parametrize("copy", ["kept", "lost", "damaged"])
def test_a_delivery_recorded_from_the_journal_shows_the_bytes_as_sent(faulty, relay, copy):
    """The relay took the mail, then the database went away and the sender with it: the
    next sender records the delivery from the journal, with the bytes the journal
    kept beside its entry, as a normal send stores them. A copy lost or damaged (a
    power cut) is said on the row instead. The entry itself stays small."""
    gw, fault = faulty
    gone, first = delivered_unrecorded(gw, fault, relay)
    [entry] = gone.journal.entries()
    kept = entry.path.with_suffix(".eml")
    assert kept.read_bytes() == relay.received[0].raw
    assert entry.path.stat().st_size < 512  # the bytes are beside it, not in it
    if copy == "lost":
        kept.unlink()
    elif copy == "damaged":
        kept.write_bytes(kept.read_bytes()[:-10])
    fault.restore()
    assert OutboxSender(gw).run_once() == 0
    [row] = [r for r in rows(gw) if r.id == first]
    assert (row.status, row.attempts) == ("sent", 1)
    if copy == "kept":
        assert row.raw == relay.received[0].raw and row.last_error is None
    else:
        assert row.raw is None and row.last_error == record.UNKEPT
    assert journal_files(gone.journal.folder) == []
    assert len(relay.received) == 1


def test_a_normal_send_leaves_no_copy_behind(settings, parser_pool, departments, clock):
    gw = Gateway(settings, parser=parser_pool, clock=clock)
    try:
        ingest(gw, make_mail(), PIPE)
        sender = OutboxSender(gw)
        assert sender.run_once() == 2
        assert all(r.status == "sent" and r.raw for r in rows(gw))
        assert journal_files(sender.journal.folder) == []
    finally:
        gw.close()
