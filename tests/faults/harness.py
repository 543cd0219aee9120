"""Run one fault scenario against a real `mailgate run` and count what it kept.

A `Harness` owns a private PostgreSQL cluster (cluster.py) and a folder; each
`run(name)` gets a fresh database and storage folder, starts the peers the
scenario needs (the SMTP load, a counting relay or a pickup of `.eml` files,
Dovecot, a tiny tmpfs), starts the daemon, injects the scenario's fault
(scenarios.py) `cycles` times, lets everything drain, stops the daemon and
counts into a `Result`: the columns of the table described in
tests/faults/__init__.py.
"""
from __future__ import annotations

import collections
import random
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from mailgate.config import OutboundSettings
from tests.faults.cluster import PrivatePostgres
from tests.faults.load import RECIPIENT, SmtpLoad, build_message
from tests.faults.peers import CountingRelay, Pickup, TinyDisk, Unavailable
from tests.faults.process import Daemon
from tests.faults.scenarios import SCENARIOS, Scenario
from tests.servers.dovecot import DovecotError, DovecotServer, dovecot_binary
from tests.servers.relay import free_port

SECRET = "fault-harness-secret-0123456789abcdef0123456789"  # no key file to write
IMAP_USER, IMAP_PASSWORD = "support@example.com", "faults"


@dataclass
class Options:
    cycles: int = 3
    cycles_of: dict[str, int] = field(default_factory=dict)  # per scenario, instead of `cycles`
    outage: float = 3.0  # seconds a peer stays away (or frozen, or full) per cycle
    rate: float = 20.0  # new messages a second over all SMTP sessions
    connections: int = 4
    delivery_workers: int = 2
    drain_timeout: float = 120.0
    imap_batch: int = 25  # messages appended before each Dovecot kill
    seed: int = 14
    keep: bool = False  # keep the folder (logs, storage) even when every goal was met

    def cycles_for(self, scenario: str) -> int:
        return self.cycles_of.get(scenario, self.cycles)


@dataclass
class Result:
    scenario: str
    cycles: int
    sent: int = 0
    acked: int = 0
    refused: int = 0
    lost: int = 0
    duplicated: int = 0
    outbox_lost: int = 0
    twice: int = 0
    stuck: int = 0
    drain: float | None = None  # None: not drained within the timeout
    allowed_twice: int = 0  # redeliveries RFC 5321 cannot avoid (relay scenarios)
    unavailable: str = ""  # why the scenario cannot be built here
    required: bool = False  # ... and it is something CI must have
    aborted: bool = False  # the run itself broke (see the notes)
    notes: list[str] = field(default_factory=list)
    folder: str = ""

    @property
    def ok(self) -> bool:
        return (not self.unavailable and not self.aborted and self.refused == 0
                and self.lost == 0 and self.duplicated == 0 and self.outbox_lost == 0
                and self.twice <= self.allowed_twice and self.stuck == 0
                and self.drain is not None and self.acked == self.sent)

    def row(self) -> list[str]:
        if self.unavailable:
            return [self.scenario, str(self.cycles), f"not available here: {self.unavailable}"]
        if self.aborted:
            return [self.scenario, str(self.cycles), "FAIL: the run aborted (see its note)"]
        twice = str(self.twice) + (f" (<={self.allowed_twice})" if self.allowed_twice else "")
        drain = f"{self.drain:.1f}" if self.drain is not None else "timeout"
        return [self.scenario, str(self.cycles), str(self.sent), str(self.acked),
                str(self.refused), str(self.lost), str(self.duplicated), str(self.outbox_lost),
                twice, str(self.stuck), drain, "ok" if self.ok else "FAIL"]


class Stage:
    """Everything one scenario run uses; `harness.run` drives it."""

    def __init__(self, harness: "Harness", scenario: Scenario):
        self.harness, self.scenario, self.options = harness, scenario, harness.options
        self.cycles = harness.options.cycles_for(scenario.name)
        self.rng = random.Random(f"{harness.options.seed}-{scenario.name}")
        self.folder = harness.folder / scenario.name
        self.db_name = f"faults_{scenario.name.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
        self.url = ""
        self.disk: TinyDisk | None = None
        self.storage = self.folder / "var"
        self.relay: CountingRelay | None = None
        self.pickup: Pickup | None = None
        self.dovecot: DovecotServer | None = None
        self.load: SmtpLoad | None = None
        self.appended: dict[str, bytes] = {}
        self.smtp_port = free_port()
        self.daemon: Daemon | None = None
        self.notes: list[str] = []

    @property
    def cluster(self) -> PrivatePostgres:
        return self.harness.cluster

    # -- set up --------------------------------------------------------------------
    def prepare(self) -> None:
        self.folder.mkdir(parents=True)
        self.folder.chmod(0o755)
        if self.scenario.tiny_disk:
            self.disk = TinyDisk(self.folder / "disk").mount()
            self.storage = self.disk.storage
        else:
            self.storage.mkdir()
        self.url = self.cluster.create_database(self.db_name)
        _make_schema(self.url)
        imap = ""
        if self.scenario.source == "imap":
            if dovecot_binary() is None:
                raise Unavailable("dovecot is not installed (scripts/install-test-deps)",
                                  required=True)
            self.dovecot = DovecotServer(self.folder / "dovecot")
            self.dovecot.add_user(IMAP_USER, IMAP_PASSWORD)
            try:
                self.dovecot.start()
            except DovecotError as error:
                raise Unavailable(f"Dovecot does not start: {error}", required=True) from error
            imap = (f'[[imap]]\nname = "faults"\nhost = "127.0.0.1"\n'
                    f'port = {self.dovecot.port}\nsecurity = "none"\nuser = "{IMAP_USER}"\n'
                    f'password = "{IMAP_PASSWORD}"\ndepartment = "support"\n'
                    'poll_interval = 0.5\nbatch_size = 5\ntimeout = 10.0\n')
        outbound = 'transport = "file"\n'
        if self.scenario.transport == "smtp":
            self.relay = CountingRelay()
            self.relay.up()
            outbound = (f'transport = "smtp"\nrelay_host = "127.0.0.1"\n'
                        f'relay_port = {self.relay.port}\nrelay_security = "none"\n'
                        'relay_timeout = 10.0\n')
        else:
            self.pickup = Pickup(self.storage / "outbox", self.storage.parent / "picked")
            self.pickup.start()
        config = self.folder / "mailgate.toml"
        config.write_text(
            f'[database]\nurl = "{self.url}"\n'
            f'[storage]\ndir = "{self.storage}"\n'
            f'[smtp]\nlisten = ["127.0.0.1:{self.smtp_port}"]\nhostname = "mx.faults.test"\n'
            f'[http]\nlisten = "127.0.0.1:0"\n'
            f'[daemon]\nshutdown_timeout = 20\n'
            f'delivery_workers = {self.options.delivery_workers}\n'
            f'[security]\nsecret = "{SECRET}"\n'
            # retries every 2 s (doubling) instead of every minute: the drain is
            # measured in seconds, not in the production backoff
            f'[outbound]\n{outbound}retry_base = 2.0\nsend_interval = 2.0\n'
            # every customer gets an acknowledgement: the brakes against mail loops
            # would otherwise decide how many rows there are
            'ack_limit_per_hour = 1000000\nack_limit_per_domain = 1000000\n'
            'ack_limit_per_network = 1000000\n' + imap)
        self.daemon = Daemon(config, self.folder / "daemon.log")

    def start(self) -> None:
        self.daemon.start()
        if self.scenario.source == "smtp":
            self.load = SmtpLoad(self.smtp_port, self.scenario.name.replace("-", ""),
                                 self.options.connections, self.options.rate,
                                 seed=self.rng.randrange(1 << 30)).start()
            self.wait_for_progress()  # faults begin once mail flows

    # -- the IMAP source -----------------------------------------------------------
    def append_batch(self, count: int) -> None:
        start = len(self.appended)
        with self.dovecot.client(IMAP_USER, IMAP_PASSWORD) as imap:
            for n in range(start, start + count):
                mid, raw = build_message("imap", n)
                imap.append("INBOX", raw)
                self.appended[mid] = raw

    def stored_inbound(self) -> int:
        return self._query("SELECT count(*) AS n FROM messages WHERE direction = 'in'")[0]["n"]

    def imap_unprocessed(self) -> int:
        flags = self.dovecot.fetch_flags(IMAP_USER, IMAP_PASSWORD)
        return sum(1 for f in flags.values() if "\\Seen" not in f)

    # -- drain and count -----------------------------------------------------------
    def pause(self, low: float, high: float) -> None:
        time.sleep(self.rng.uniform(low, high))

    def wait_for_progress(self, timeout: float = 60.0) -> None:
        """Until the daemon answers 250 to one more message: a fault injected only
        while it is still starting would never hit a message in hand."""
        if self.load is None:
            return
        before = len(self.load.acked)
        deadline = time.monotonic() + timeout
        while len(self.load.acked) == before and time.monotonic() < deadline:
            time.sleep(0.02)

    def drain(self) -> float | None:
        """Seconds until everything settled after the faults, or None at the timeout."""
        started = time.monotonic()
        deadline = started + self.options.drain_timeout
        if not self.daemon.alive:
            self.notes.append(f"the daemon had exited by itself (code "
                              f"{self.daemon.proc.returncode}): started again")
            self.daemon.start()
        if self.load is not None:
            self.load.finish(self.options.drain_timeout)
        while time.monotonic() < deadline:
            try:
                if self._settled():
                    return time.monotonic() - started
            except (psycopg2.Error, OSError, DovecotError):
                pass
            time.sleep(0.25)
        return None

    def _settled(self) -> bool:
        if self.load is not None and self.load.unanswered():
            return False
        if self.dovecot is not None and self.imap_unprocessed():
            return False
        rows = self.outbox_rows()
        if any(r["status"] in ("pending", "sending") for r in rows):
            return False
        received = self.received()
        return all(r["message_id"] in received for r in rows if r["status"] == "sent")

    def received(self) -> collections.Counter[str]:
        return self.relay.received() if self.relay else self.pickup.received()

    def outbox_rows(self) -> list[dict]:
        return self._query("SELECT id, ticket_id, kind, status, message_id, attempts, "
                           "last_error, claimed_by FROM outbox ORDER BY id")

    def _query(self, sql: str, *args) -> list[dict]:
        conn = psycopg2.connect(self.cluster.dsn(self.db_name), connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                names = [c.name for c in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()

    def count(self, result: Result) -> None:
        if self.load is not None:
            promised = set(self.load.acked)
            result.sent, result.acked = len(self.load.messages), len(promised)
            result.refused = len(self.load.refused)
            if self.load.refused:
                answers = collections.Counter(self.load.refused.values())
                self.notes.append(f"refused for good: {dict(answers.most_common(3))}")
            if self.load.tempfails:
                self.notes.append(f"{self.load.tempfails} answers 4xx or broken sessions "
                                  "(offered again)")
            if self.load.unanswered():
                self.notes.append(f"{len(self.load.unanswered())} messages never answered 250")
        else:
            promised = set(self.appended)
            result.sent = result.acked = len(promised)
        stored = collections.Counter(r["message_id"] for r in self._query(
            "SELECT message_id FROM messages WHERE direction = 'in' AND message_id = ANY(%s)",
            list(promised)))
        result.lost = len(promised - set(stored))
        result.duplicated = sum(n - 1 for n in stored.values())
        quarantined = self._query("SELECT error_class, error FROM quarantine")
        if quarantined:
            errors = collections.Counter(f"{q['error_class']}: {q['error'][:80]}"
                                         for q in quarantined)
            self.notes.append(f"quarantined {len(quarantined)}: {dict(errors.most_common(3))}")
        rows = self.outbox_rows()
        received = self.received()
        tickets = {r["ticket_id"] for r in self._query(
            "SELECT ticket_id FROM messages WHERE direction = 'in' AND message_id = ANY(%s)",
            list(promised))}
        with_rows = {r["ticket_id"] for r in rows}
        unqueued = len(tickets - with_rows)
        failed = [r for r in rows if r["status"] in ("failed", "bounced")]
        vanished = [r for r in rows if r["status"] == "sent" and r["message_id"] not in received]
        result.outbox_lost = unqueued + len(failed) + len(vanished)
        result.stuck = sum(1 for r in rows if r["status"] in ("pending", "sending"))
        retried = sum(1 for r in rows if r["attempts"] > 1)
        if retried:
            self.notes.append(f"{retried} outbox rows needed more than one attempt")
        ours = {r["message_id"] for r in rows}
        result.twice = sum(n - 1 for mid, n in received.items() if mid in ours and n > 1)
        if unqueued:
            self.notes.append(f"{unqueued} tickets with no outgoing mail queued")
        if failed:
            errors = collections.Counter((r["last_error"] or "")[:80] for r in failed)
            self.notes.append(f"{len(failed)} outbox rows failed: {dict(errors.most_common(3))}")
        if vanished:
            self.notes.append(f"{len(vanished)} rows marked sent never arrived")
        if result.stuck:
            states = collections.Counter(r["status"] for r in rows
                                         if r["status"] in ("pending", "sending"))
            self.notes.append(f"stuck after {self.options.drain_timeout:g} s: {dict(states)}")
            for r in [r for r in rows if r["status"] in ("pending", "sending")][:3]:
                self.notes.append(f"  outbox {r['id']} {r['status']} attempts={r['attempts']} "
                                  f"claimed_by={r['claimed_by']} error={r['last_error']!r:.80}")
        strangers = sum(n for mid, n in received.items() if mid not in ours)
        if strangers:
            self.notes.append(f"{strangers} deliveries of Message-IDs with no outbox row")
        starts = sorted(self.daemon.start_seconds)
        if len(starts) > 1:  # what each kill cycle spends on the restart
            median = starts[len(starts) // 2]
            self.notes.append(f"daemon started {len(starts)} times, in {median:.1f} s "
                              f"(median; longest {starts[-1]:.1f} s)")
        log = self.daemon.log()
        errors = sum(1 for line in log.splitlines() if " ERROR " in line or
                     line.startswith("ERROR"))
        if errors:
            self.notes.append(f"{errors} ERROR lines in daemon.log")

    # -- tear down -------------------------------------------------------------------
    def stop_daemon(self) -> None:
        took = self.daemon.terminate(60) if self.daemon else 0.0
        if took is None:
            self.notes.append("SIGTERM: not stopped within 60 s, killed")

    def cleanup(self) -> None:
        if self.daemon is not None and self.daemon.alive:
            self.daemon.kill_group()
        if self.load is not None:
            self.load.stopped.set()
        if self.pickup is not None:
            self.pickup.stop()
        if self.relay is not None:
            self.relay.down()
        if self.dovecot is not None:
            self.dovecot.kill()
        self.cluster.thaw()
        if self.cluster.postmaster_pid() is None or not _accepts(self.cluster):
            self.cluster.start()
        if self.disk is not None:
            self.disk.unmount()


def _accepts(cluster: PrivatePostgres) -> bool:
    try:
        psycopg2.connect(cluster.dsn("postgres"), connect_timeout=3).close()
        return True
    except psycopg2.Error:
        return False


def _make_schema(url: str) -> None:
    from mailgate.db import Database
    from mailgate.models import Address, Department

    database = Database(url)
    try:
        database.upgrade()
        with database.unit_of_work() as session:  # no agents: one acknowledgement a ticket
            session.add(Address(address=RECIPIENT,
                                department=Department(key="support", name="Support")))
    finally:
        database.dispose()


class Harness:
    def __init__(self, options: Options | None = None, folder: Path | None = None):
        self.options = options or Options()
        self.folder = Path(folder or tempfile.mkdtemp(prefix="mailgate-faults-"))
        self.folder.chmod(0o755)  # PostgreSQL and Dovecot run as other users
        self.cluster = PrivatePostgres(self.folder / "postgres")
        self.failed = False

    def __enter__(self) -> "Harness":
        self.cluster.init()
        self.cluster.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cluster.stop("immediate")
        if not self.options.keep and not self.failed and exc[0] is None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def run(self, name: str) -> Result:
        scenario = SCENARIOS[name]
        stage = Stage(self, scenario)
        result = Result(name, stage.cycles)
        result.folder = str(stage.folder)
        if name == "kill9-relay":  # each kill may cut deliveries the relay already took
            result.allowed_twice = stage.cycles * OutboundSettings().workers
        try:
            stage.prepare()
            stage.start()
            scenario.inject(stage)
            result.drain = stage.drain()
            stage.stop_daemon()
            stage.count(result)
        except Unavailable as reason:
            result.unavailable = str(reason)
            result.required = reason.required
        except Exception as error:  # the harness or a peer broke: a failed run, with why
            stage.notes.append(f"run aborted: {error.__class__.__name__}: {error}"[:2000])
            result.aborted = True
        finally:
            stage.cleanup()
        result.notes = stage.notes
        if not result.ok and not result.unavailable:
            self.failed = True
        else:
            try:
                self.cluster.drop_database(stage.db_name)
            except psycopg2.Error:
                pass
        return result


HEADER = ["scenario", "cycles", "sent", "acked", "5xx", "lost", "dup", "outbox lost",
          "twice", "stuck", "drain s", "goal"]


def table(results: list[Result]) -> str:
    rows = [HEADER] + [r.row() for r in results]
    widths = [max(len(row[i]) for row in rows if i < len(row) and len(row) == len(HEADER))
              for i in range(len(HEADER))]
    lines = []
    for row in rows:
        if len(row) != len(HEADER):  # not available: one free-text cell
            lines.append("  ".join(c.ljust(w) for c, w in zip(row[:2], widths)) + "  " + row[2])
        else:
            lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(row, widths))))
    for r in results:
        for note in r.notes:
            lines.append(f"  {r.scenario}: {note}")
    return "\n".join(lines)


def describe() -> str:
    return "\n".join(f"  {s.name:16s} {s.description}" for s in SCENARIOS.values())


