"""Threading at scale: a token reply and an In-Reply-To reply with 1,000 and 1,000,000 tickets.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/threading_scale.py [--tickets 1000 1000000] [--replies 50]

For each size, a scratch PostgreSQL database is filled with COPY (N customers,
N tickets, each with its requester and first message, Message-ID included), then
`--replies` replies of each kind go through `pipeline.ingest` in this process: one
carrying a ticket's token in its subject, one naming a ticket's first message in
In-Reply-To (no token). Prints the median CPU and wall time per reply, and the
statements it ran; every lookup is an index hit, so the figures should not grow
with the table (the acknowledgement rows are written, not sent).
"""
from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import psycopg2
import psycopg2.extensions

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from pipeline_profile import (Statements, drop_database, gateway,  # noqa: E402
                              scratch_database)

from mailgate.mail.tokens import ticket_number  # noqa: E402
from mailgate.pipeline import Envelope, ingest  # noqa: E402
from mailgate.vocabulary import Outcome, Source  # noqa: E402

ENVELOPE = Envelope(Source.SMTP, "customer@example.org", ("support@example.com",),
                    peer="192.0.2.1")
CHUNK = 100_000  # rows per COPY


def copy_rows(cursor, table: str, columns: str, rows) -> None:
    buffer = io.StringIO()
    for n, row in enumerate(rows, 1):
        buffer.write("\t".join(row) + "\n")
        if n % CHUNK == 0:
            _flush(cursor, table, columns, buffer)
    _flush(cursor, table, columns, buffer)


def _flush(cursor, table: str, columns: str, buffer: io.StringIO) -> None:
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
    buffer.seek(0)
    buffer.truncate()


def fill(name: str, count: int) -> None:
    """`count` customers, tickets, participants and first messages, after what exists
    (the department has id 1); ids from 1001 on, sequences moved past them."""
    start, when = 1001, "2026-11-01 10:00:00+00"
    ids = range(start, start + count)
    # COPY does not work under the wait callback the engine installs (pgbounds.py)
    callback = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    raw = psycopg2.connect(f"host=127.0.0.1 user=postgres dbname={name}")
    try:
        cur = raw.cursor()
        copy_rows(cur, "contacts", "id, email, name, created_at",
                  ((str(i), f"c{i}@example.net", f"Customer {i}", when) for i in ids))
        copy_rows(cur, "tickets", "id, department_id, requester_id, subject, status, priority, "
                  "created_at, updated_at, paused_working",
                  ((str(i), "1", str(i), f"printer {i}", "open", "normal", when, when, "0")
                   for i in ids))
        copy_rows(cur, "participants", "id, ticket_id, contact_id, role",
                  ((str(i), str(i), str(i), "requester") for i in ids))
        copy_rows(cur, "messages", "id, ticket_id, direction, kind, author_email, author_name, "
                  "message_id, subject, text_body, automatic, received_at",
                  ((str(i), str(i), "in", "customer_reply", f"c{i}@example.net", "",
                    f"<first-{i}@example.net>", f"printer {i}", "it broke", "f", when)
                   for i in ids))
        for table in ("contacts", "tickets", "participants", "messages"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"{start + count})")
            cur.execute(f"ANALYZE {table}")
        raw.commit()
    finally:
        raw.close()
        psycopg2.extensions.set_wait_callback(callback)


def reply(ticket_id: int, kind: str, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer <c{ticket_id}@example.net>"
    msg["To"] = "support@example.com"
    msg["Message-ID"] = f"<reply-{kind}-{n}-{ticket_id}@example.net>"
    if kind == "token":
        msg["Subject"] = f"Re: [MG#{ticket_number(ticket_id)}] printer {ticket_id}"
    else:
        msg["Subject"] = f"Re: printer {ticket_id}"
        msg["In-Reply-To"] = f"<first-{ticket_id}@example.net>"
    msg.set_content("Still broken, thanks.\n")
    return msg.as_bytes(policy=SMTP)


def measure(gw, count: int, replies: int) -> dict[str, tuple[float, float, int]]:
    """{kind: (median CPU s, median wall s, median statements)} per reply."""
    rng = random.Random(count)
    statements = Statements(gw.db.engine)
    figures = {}
    for kind in ("token", "in-reply-to"):
        cpu, wall, ran = [], [], []
        for n in range(replies):
            ticket_id = rng.randrange(1001, 1001 + count)
            raw, before = reply(ticket_id, kind, n), statements.count
            started, started_cpu = time.perf_counter(), time.process_time()
            result = ingest(gw, raw, ENVELOPE)
            cpu.append(time.process_time() - started_cpu)
            wall.append(time.perf_counter() - started)
            ran.append(statements.count - before)
            if result.outcome != Outcome.APPENDED:
                raise RuntimeError(f"{kind} reply to ticket {ticket_id}: {result.outcome} "
                                   f"{result.trace}")
        figures[kind] = (statistics.median(cpu), statistics.median(wall),
                         int(statistics.median(ran)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, nargs="+", default=[1000, 1_000_000])
    parser.add_argument("--replies", type=int, default=50)
    args = parser.parse_args()
    for count in args.tickets:
        workdir = Path(tempfile.mkdtemp(prefix="mailgate-threading-"))
        url, name = scratch_database(False, workdir)
        try:
            gw = gateway(url, workdir)
            started = time.perf_counter()
            fill(name, count)
            filled = time.perf_counter() - started
            for warm in range(5):  # connections, caches, the parser's imports
                ingest(gw, reply(1001 + warm, "token", 10_000 + warm), ENVELOPE)
            figures = measure(gw, count, args.replies)
            gw.close()
        finally:
            drop_database(name)
        print(f"{count:9,d} tickets (filled in {filled:5.1f} s): " + "   ".join(
            f"{kind} reply {cpu * 1000:5.1f} ms CPU, {wall * 1000:5.1f} ms, {ran} statements"
            for kind, (cpu, wall, ran) in figures.items()), flush=True)


if __name__ == "__main__":
    main()
