"""SMTP ingest benchmark: `mailgate run` on PostgreSQL against a bare aiosmtpd server.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/smtp_ingest.py [--messages 2000] [--connections 8]

All three servers get the same pre-built messages (plain, HTML, ~10 % with a
100 KB attachment, ~30 % replies carrying a ticket token) over K concurrent
smtplib connections. The bare server accepts and discards: it is the ceiling for
any Python SMTP service on this machine. The durable floor parses each message
with mail-parser and commits it to PostgreSQL (one INSERT, no ticket, no
acknowledgement): about what any durable Python gateway keeps of the bare rate
before doing any work of its own. Prints messages/s, p50/p99 accept latency, the
CPU time per message of the daemon (with its workers), PostgreSQL and the
client, and the ratios mailgate / bare, floor / bare and mailgate / floor.

Environment: BENCH_NO_FSYNC=1 turns off fsync of stored blobs; BENCH_WORKERS=N
sets `[daemon] delivery_workers` (default: two per CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import random
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
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


def build_messages(count: int, tokens: list[str], seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    words = ("printer invoice login password order delivery refund account screen error "
             "please help thanks urgent today yesterday office").split()
    out = []
    for i in range(count):
        msg = EmailMessage()
        msg["From"] = f"Customer {i} <customer{i % 300}@example.org>"
        msg["To"] = "support@example.com"
        subject = " ".join(rng.choice(words) for _ in range(5))
        if tokens and rng.random() < 0.3:
            subject = f"Re: {rng.choice(tokens)} {subject}"
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
    return sum(procs[pid][2] for pid in chosen) / ticks


def report(name: str, count: int, elapsed: float, latencies: list[float]) -> float:
    rate = count / elapsed
    q = statistics.quantiles(latencies, n=100)
    print(f"{name:10s} {count:6d} msgs in {elapsed:7.2f} s = {rate:8.1f} msg/s   "
          f"p50 {q[49] * 1000:7.1f} ms   p99 {q[98] * 1000:7.1f} ms")
    return rate


def start_server(code: str, *args: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            text=True)
    return proc, int(proc.stdout.readline())


def run_against(name: str, code: str, args: tuple[str, ...], messages: list[bytes],
                connections: int) -> float:
    proc, port = start_server(code, *args)
    try:
        blast(port, messages[:200], connections)  # warm up
        return report(name, len(messages), *blast(port, messages, connections))
    finally:
        proc.terminate()
        proc.wait(30)


def start_mailgate(db_name: str, workdir: Path, messages_for_tokens: int
                   ) -> tuple[subprocess.Popen, int, list[str]]:
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db_name}"
    config = workdir / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[storage]\ndir = "{workdir / "var"}"\n'
                      f'fsync = {"false" if os.environ.get("BENCH_NO_FSYNC") else "true"}\n'
                      '[smtp]\nlisten = ["127.0.0.1:0"]\n[http]\nlisten = "127.0.0.1:0"\n'
                      '[log]\nlevel = "INFO"\n'
                      f'[daemon]\ndelivery_workers = {int(os.environ.get("BENCH_WORKERS", "0"))}\n')
    mg = [sys.executable, "-m", "mailgate", "--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(mg + ["db", "upgrade"], check=True, env=env, capture_output=True)
    subprocess.run(mg + ["department", "add", "support"], check=True, env=env,
                   capture_output=True)
    subprocess.run(mg + ["address", "add", "support@example.com", "--department", "support"],
                   check=True, env=env, capture_output=True)
    # a few existing tickets, so that replies with tokens thread onto them
    seed = build_messages(messages_for_tokens, [], seed=1)
    tokens = []
    for raw in seed:
        out = subprocess.run(mg + ["ingest", "--json"], input=raw, env=env, capture_output=True,
                             check=True)
        number = json.loads(out.stdout)[0]["ticket"]
        tokens.append(f"[MG#{number}]")
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
    return proc, port, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    db_name = f"mailgate_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect("host=127.0.0.1 user=postgres dbname=postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{db_name}"')
    workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    try:
        mailgate, mg_port, tokens = start_mailgate(db_name, workdir, 20)
        messages = build_messages(args.messages, tokens)
        size = sum(map(len, messages)) / len(messages)
        print(f"{args.messages} messages, {size / 1024:.1f} KB average, "
              f"{args.connections} connections, {os.cpu_count()} CPUs")
        bare_rate = run_against("bare", BARE_SERVER, (), messages, args.connections)
        dsn = f"host=127.0.0.1 user=postgres dbname={db_name}"
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE bench_floor (id serial PRIMARY KEY, message_id text, "
                        "subject text, body text, raw bytea)")
        floor_rate = run_against("floor", FLOOR_SERVER, (dsn,), messages, args.connections)
        try:
            blast(mg_port, build_messages(100, tokens, seed=99), args.connections)  # warm up
            time.sleep(3)  # let the warm-up's outbox drain
            def sample():
                return (cpu_seconds({mailgate.pid}),
                        cpu_seconds({mailgate.pid}, descendants=False),
                        cpu_seconds(comm="postgres"), time.process_time())
            before = sample()
            mg_rate = report("mailgate", len(messages), *blast(mg_port, messages,
                                                                 args.connections))
            used = [after - start for after, start in zip(sample(), before)]
            print("CPU per message: " + ", ".join(
                f"{name} {seconds / len(messages) * 1000:.1f} ms" for name, seconds in
                zip(("mailgate (daemon + workers)", "of it the daemon's main process",
                     "PostgreSQL", "benchmark client"), used))
                + " (while the blast ran; the outbox sender may still be catching up)")
        finally:
            mailgate.terminate()
            mailgate.wait(60)
        print(f"ratio mailgate / bare = {mg_rate / bare_rate:.2f}   "
              f"floor / bare = {floor_rate / bare_rate:.2f}   "
              f"mailgate / floor = {mg_rate / floor_rate:.2f}")
    finally:
        admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = %s", (db_name,))
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db_name}"')


if __name__ == "__main__":
    main()
