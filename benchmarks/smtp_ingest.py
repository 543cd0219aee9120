"""SMTP ingest benchmark: `mailgate run` on PostgreSQL against a bare aiosmtpd server.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/smtp_ingest.py [--messages 1000] [--connections 8]
                                               [--baseline REF] [--rounds 3]

Every server gets the same mix of pre-built messages (plain, HTML, ~10 % with a
100 KB attachment; ~30 % carry a ticket's token: two thirds of those from the
ticket's requester, true replies, the rest from strangers, linked new tickets)
over K concurrent smtplib connections. The bare server accepts and discards: it
is the ceiling for any Python SMTP service on this machine. The durable floor
parses each message with mail-parser and commits it to PostgreSQL (one INSERT, no
ticket, no acknowledgement): about what any durable Python gateway keeps of the
bare rate before doing any work of its own. mailgate acknowledges every message
(the automatic-reply caps are lifted) and notifies the department's one agent.

Prints, per server: messages/s and p50/p99 accept latency; for mailgate also the
CPU per message until its outbox has drained (every acknowledgement and agent
notification written by the file transport), split into the daemon's main
process, its delivery workers and its database's PostgreSQL backends, the longest
an acknowledgement waited after its message arrived, and mailgate / floor.
`--baseline REF` runs the daemon of git REF too (`git archive`, this venv);
`--rounds R` repeats bare, floor and each daemon in turn R times and prints the
medians (the machine may be shared: alternate, never compare runs of other hours).

Environment: BENCH_NO_FSYNC=1 turns off fsync of stored blobs; BENCH_WORKERS=N
sets `[daemon] delivery_workers` (default: two per CPU).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import random
import smtplib
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
PG = "host=127.0.0.1 user=postgres dbname={}"
# The comparison servers are small programs run with `python -c`; each defines
# `Handler`, and SERVE runs it on a free loopback port and prints the port.
SERVE = """
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler(), data_size_limit=None), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""
BARE_SERVER = """
import asyncio
from aiosmtpd.smtp import SMTP
class Handler:  # accept and discard
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
""" + SERVE
FLOOR_SERVER = """
import asyncio, logging, sys, threading
from concurrent.futures import ThreadPoolExecutor
import mailparser, psycopg2
from aiosmtpd.smtp import SMTP
logging.getLogger("mailparser").setLevel(logging.CRITICAL)
pool, local = ThreadPoolExecutor(4), threading.local()
def store(raw):
    if not hasattr(local, "conn"):
        local.conn = psycopg2.connect(sys.argv[1])
    parsed = mailparser.parse_from_bytes(raw)
    with local.conn.cursor() as cur:
        cur.execute("INSERT INTO bench_floor (message_id, subject, body, raw) "
                    "VALUES (%s, %s, %s, %s)", (parsed.message_id, parsed.subject, parsed.body, raw))
    local.conn.commit()
class Handler:  # parse, then commit to PostgreSQL before answering
    async def handle_DATA(self, server, session, envelope):
        await asyncio.get_running_loop().run_in_executor(pool, store, envelope.original_content)
        return "250 OK"
""" + SERVE


# every message is acknowledged: the automatic-reply caps (50 an hour to one domain,
# 20 caused by one client network) would otherwise stop acknowledging after a few
NO_CAPS = ('[outbound]\nack_limit_per_hour = 1000000\nack_limit_per_domain = 1000000\n'
           'ack_limit_per_network = 1000000\n')


def build_messages(count: int, tokens: list[str], seed: int = 7,
                   requesters: list[str] | None = None) -> list[bytes]:
    """`count` messages; ~30 % carry one of `tokens` in the subject: with `requesters`
    (the address of each token's requester) two thirds of those come from the
    ticket's requester (true replies), the others from strangers (linked new tickets)."""
    rng = random.Random(seed)
    words = ("printer invoice login password order delivery refund account screen error "
             "please help thanks urgent today yesterday office").split()
    out = []
    for i in range(count):
        msg = EmailMessage()
        sender = f"Customer {i} <customer{i % 300}@example.org>"
        subject = " ".join(rng.choice(words) for _ in range(5))
        if tokens and rng.random() < 0.3:
            pick = rng.randrange(len(tokens))
            subject = f"Re: {tokens[pick]} {subject}"
            if requesters and rng.random() < 2 / 3:
                sender = f"Requester <{requesters[pick]}>"
        msg["From"] = sender
        msg["To"] = "support@example.com"
        msg["Subject"] = subject
        msg["Message-ID"] = f"<bench-{uuid.uuid4().hex}@client.example.org>"
        body = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(40))
        msg.set_content(body)
        if rng.random() < 0.5:
            msg.add_alternative(f"<html><body><p>{body.replace(chr(10), '<br>')}</p></body></html>",
                                subtype="html")
        if rng.random() < 0.1:
            msg.add_attachment(b"%PDF-1.4\n" + os.urandom(100_000), maintype="application",
                               subtype="pdf", filename="scan.pdf")
        out.append(msg.as_bytes(policy=SMTP))
    return out


def blast(port: int, messages: list[bytes], connections: int) -> tuple[float, list[float]]:
    chunks = [messages[i::connections] for i in range(connections)]
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(chunk):
        mine = []
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
                for raw in chunk:
                    start = time.perf_counter()
                    client.sendmail("customer@example.org", ["support@example.com"], raw)
                    mine.append(time.perf_counter() - start)
        except BaseException as error:
            errors.append(error)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]!r}")
    return elapsed, latencies


def cpu_seconds(pids: set[int] | None = None, comm: str | None = None,
                descendants: bool = True) -> float:
    """CPU time (user + system) of the given processes and (unless `descendants` is
    False) all their descendants, or of every process named `comm`, read from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    procs = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        procs[int(entry.name)] = (name, int(fields[1]), int(fields[11]) + int(fields[12]))
    if comm is not None:
        chosen = {pid for pid, (name, _, _) in procs.items() if name == comm}
    else:
        chosen = set(pids or ())
        while descendants:
            more = {pid for pid, (_, ppid, _) in procs.items() if ppid in chosen} - chosen
            if not more:
                break
            chosen |= more
    return sum(procs[pid][2] for pid in chosen if pid in procs) / ticks  # gone: not counted


def start_server(code: str, *args: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            text=True)
    return proc, int(proc.stdout.readline())


def tree_at(ref: str) -> Path:
    """The files of git `ref`, extracted into a temp folder (the baseline's code)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True,
                             capture_output=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="mailgate-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder)
    return folder


def start_mailgate(db_name: str, workdir: Path, tree: Path = ROOT
                   ) -> tuple[subprocess.Popen, int, list[str], list[str]]:
    """The daemon of the code in `tree` on a fresh database with 20 tickets; (process,
    SMTP port, the tickets' tokens, their requesters' addresses)."""
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db_name}"
    config = workdir / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[storage]\ndir = "{workdir / "var"}"\n'
                      f'fsync = {"false" if os.environ.get("BENCH_NO_FSYNC") else "true"}\n'
                      '[smtp]\nlisten = ["127.0.0.1:0"]\n[http]\nlisten = "127.0.0.1:0"\n'
                      '[log]\nlevel = "INFO"\n' + NO_CAPS +
                      f'[daemon]\ndelivery_workers = {int(os.environ.get("BENCH_WORKERS", "0"))}\n')
    mg = [sys.executable, "-m", "mailgate", "--config", str(config)]
    # PYTHONSAFEPATH: `python -m` would put the working folder first, not `tree`
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
    for command in (["db", "upgrade"], ["department", "add", "support"],
                    ["address", "add", "support@example.com", "--department", "support"],
                    ["agent", "add", "agent@example.com", "--department", "support"]):
        subprocess.run(mg + command, check=True, env=env, capture_output=True)
    # a few existing tickets, so that replies with tokens thread onto them
    seed_dir = workdir / "seed"
    seed_dir.mkdir()
    for i, raw in enumerate(build_messages(20, [], seed=1)):
        (seed_dir / f"{i:03d}.eml").write_bytes(raw)
    out = subprocess.run(mg + ["ingest", "--json", str(seed_dir)], env=env,
                         capture_output=True, check=True)
    tokens = [f"[MG#{row['ticket']}]" for row in json.loads(out.stdout)]
    requesters = [f"customer{i}@example.org" for i in range(20)]
    log = open(workdir / "daemon.log", "w")
    proc = subprocess.Popen(mg + ["run"], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    port = 0
    while time.monotonic() < deadline and not port:
        time.sleep(0.1)
        text = (workdir / "daemon.log").read_text()
        match = re.search(r"smtp=127\.0\.0\.1:(\d+)", text)
        if match:
            port = int(match.group(1))
    if not port:
        raise RuntimeError("mailgate did not start: " + (workdir / "daemon.log").read_text())
    return proc, port, tokens, requesters


@dataclass
class Run:
    """One server's figures in one round."""
    rate: float
    p50: float  # seconds
    p99: float
    cpu: dict[str, float] = field(default_factory=dict)  # seconds per message, by process
    ack_lag: float = 0.0  # seconds: the longest an acknowledgement waited after its commit


class Database:
    """A scratch PostgreSQL database, and its backends' CPU."""

    def __init__(self, prefix: str):
        self.name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.admin = psycopg2.connect(PG.format("postgres"))
        self.admin.autocommit = True
        self.admin.cursor().execute(f'CREATE DATABASE "{self.name}"')
        self.conn = psycopg2.connect(PG.format(self.name))
        self.conn.autocommit = True
        self.seen: set[int] = set()

    def query(self, sql: str):
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]

    def backends(self) -> set[int]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()")
            self.seen |= {row[0] for row in cur.fetchall()}
        return self.seen

    def drop(self) -> None:
        self.conn.close()
        self.admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = %s", (self.name,))
        self.admin.cursor().execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        self.admin.close()


def wait_for_outbox(db: Database, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while db.query("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"):
        if time.monotonic() > deadline:
            raise RuntimeError("the outbox did not drain")
        db.backends()
        time.sleep(0.2)


def run_mailgate(tree: Path, count: int, connections: int) -> Run:
    """One blast at the daemon of `tree`; CPU counted until its outbox has drained
    (every acknowledgement and agent notification written as a file)."""
    db = Database("mailgate_bench")
    workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    mailgate, port, tokens, requesters = start_mailgate(db.name, workdir, tree)
    try:
        messages = build_messages(count, tokens, requesters=requesters)
        blast(port, build_messages(100, tokens, seed=99, requesters=requesters),
              connections)  # warm up
        wait_for_outbox(db)
        started = db.query("SELECT max(id) FROM inbound")

        def sample():
            return (cpu_seconds({mailgate.pid}, descendants=False),
                    cpu_seconds({mailgate.pid}) - cpu_seconds({mailgate.pid},
                                                              descendants=False),
                    cpu_seconds(db.backends(), descendants=False))
        before = sample()
        elapsed, latencies = blast(port, messages, connections)
        wait_for_outbox(db)
        used = [(after - start) / count for after, start in zip(sample(), before)]
        lag = db.query("SELECT coalesce(extract(epoch FROM max(o.sent_at - i.received_at)), 0) "
                       "FROM outbox o JOIN messages m ON m.ticket_id = o.ticket_id "
                       "JOIN inbound i ON i.id = m.inbound_id "
                       f"WHERE o.kind = 'ack' AND i.id > {started}")
    finally:
        mailgate.terminate()
        mailgate.wait(60)
        db.drop()
    q = statistics.quantiles(latencies, n=100)
    return Run(count / elapsed, q[49], q[98],
               dict(zip(("main process", "delivery workers", "PostgreSQL"), used)), float(lag))


def run_server(code: str, args: tuple[str, ...], messages: list[bytes],
               connections: int) -> Run:
    proc, port = start_server(code, *args)
    try:
        blast(port, messages[:200], connections)  # warm up
        elapsed, latencies = blast(port, messages, connections)
    finally:
        proc.terminate()
        proc.wait(30)
    q = statistics.quantiles(latencies, n=100)
    return Run(len(messages) / elapsed, q[49], q[98])


def one_round(trees: dict[str, Path], messages: list[bytes], connections: int
              ) -> dict[str, Run]:
    runs = {"bare": run_server(BARE_SERVER, (), messages, connections)}
    db = Database("mailgate_floor")
    try:
        db.query("CREATE TABLE bench_floor (id serial PRIMARY KEY, message_id text, "
                 "subject text, body text, raw bytea); SELECT 1")
        runs["floor"] = run_server(FLOOR_SERVER, (PG.format(db.name),), messages, connections)
    finally:
        db.drop()
    for label, tree in trees.items():
        runs[label] = run_mailgate(tree, len(messages), connections)
    return runs


def show(label: str, run: Run, floor: float) -> None:
    line = (f"{label:12s} {run.rate:7.1f} msg/s   p50 {run.p50 * 1000:6.1f} ms   "
            f"p99 {run.p99 * 1000:6.1f} ms")
    if run.cpu:
        total = sum(run.cpu.values())
        line += (f"   CPU/msg {total * 1000:5.1f} ms (" + ", ".join(
            f"{name} {seconds * 1000:.1f}" for name, seconds in run.cpu.items())
            + f"; PostgreSQL's share {run.cpu['PostgreSQL'] / total:.0%})"
            f"   longest ack wait {run.ack_lag:.1f} s   / floor {run.rate / floor:.2f}")
    print(line, flush=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--baseline", metavar="REF", help="git ref to compare with")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds, each running every server once (medians compared)")
    args = parser.parse_args()
    trees = {"mailgate": ROOT}
    if args.baseline:
        trees = {args.baseline[:10]: tree_at(args.baseline), **trees}
    # the same mix for every server; mailgate's runs put the tokens of their own
    # database's tickets in the subjects (the same length)
    messages = build_messages(args.messages, [f"[MG#{10000 + n}]" for n in range(20)],
                              requesters=[f"customer{n}@example.org" for n in range(20)])
    print(f"{args.messages} messages, {sum(map(len, messages)) / len(messages) / 1024:.1f} KB "
          f"average, {args.connections} connections, {os.cpu_count()} CPUs, "
          f"load average {load()}", flush=True)
    rounds: list[dict[str, Run]] = []
    for number in range(args.rounds):
        rounds.append(one_round(trees, messages, args.connections))
        print(f"round {number + 1} (load average {load()}):")
        for label, run in rounds[-1].items():
            show(label, run, rounds[-1]["floor"].rate)
    if args.rounds > 1:
        print(f"medians of {args.rounds} rounds:")
        medians = {label: median_run([r[label] for r in rounds]) for label in rounds[0]}
        for label, run in medians.items():
            show(label, run, medians["floor"].rate)


def median_run(runs: list[Run]) -> Run:
    mid = statistics.median
    return Run(mid(r.rate for r in runs), mid(r.p50 for r in runs), mid(r.p99 for r in runs),
               {name: mid(r.cpu[name] for r in runs) for name in runs[0].cpu},
               mid(r.ack_lag for r in runs))


if __name__ == "__main__":
    main()
