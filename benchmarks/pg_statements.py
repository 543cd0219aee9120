"""PostgreSQL's own time per message, statement by statement, for the pipeline and the outbox.

Run by hand (not part of the tests), on a host whose PostgreSQL writes its log to a
file this user can read (Debian: /var/log/postgresql/postgresql-<version>-main.log):

    .venv/bin/python benchmarks/pg_statements.py [--messages 400] [--log FILE]

Ingests the messages `smtp_ingest.py` sends into a scratch database in this process
and sends their mail through the file transport, as `pipeline_profile.py` does,
with `log_min_duration_statement = 0` on the engine's connections; then reads the
durations PostgreSQL logged (parse, plan and execution of each statement, the
server's side only) and prints, per statement kind, the time per message, how many
a message runs and the time each. This is where the server's CPU goes: it found a
claim that sorted the whole due queue and a pglz compression dearer than the
statement that caused it. Needs a superuser (the benchmarks' `postgres`).
"""
from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from pipeline_profile import (drop_database, gateway, scratch_database,  # noqa: E402
                              seed_tokens, send_all)
from smtp_ingest import build_messages  # noqa: E402

from mailgate.outbound.sender import OutboxSender  # noqa: E402
from mailgate.pipeline import Envelope, ingest  # noqa: E402
from mailgate.vocabulary import Source  # noqa: E402

# a simple query's one line, or each phase of an extended one (psycopg 3's prepared
# statements plan at bind): every phase's time is the statement's
LOGGED = re.compile(r"duration: ([\d.]+) ms\s+(?:statement|(?:parse|bind|execute) [^:]*): (.*)")
VALUES = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")  # the literals psycopg2 inlines


def default_log() -> str | None:
    found = sorted(glob.glob("/var/log/postgresql/postgresql-*-main.log"))
    return found[-1] if found else None


def durations(log: Path, start: int) -> tuple[collections.Counter, collections.Counter]:
    """(milliseconds, count) per statement kind — its first 70 characters, with its
    values (quoted strings, numbers) as `?` and spaces folded — logged after byte
    `start` of `log`. A statement run in phases is counted once, at its execution."""
    spent, count = collections.Counter(), collections.Counter()
    with open(log, errors="replace") as lines:
        lines.seek(start)
        for line in lines:
            found = LOGGED.search(line)
            if found:
                kind = re.sub(r"\s+", " ", VALUES.sub("?", found.group(2)))[:70]
                spent[kind] += float(found.group(1))
                count[kind] += " execute " in line or " statement: " in line
    return spent, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--log", default=default_log(), help="PostgreSQL's log file")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    if not args.log or not os.access(args.log, os.R_OK):
        raise SystemExit(f"cannot read PostgreSQL's log {args.log!r}: give it with --log")
    log = Path(args.log)
    workdir = Path(tempfile.mkdtemp(prefix="mailgate-pgstat-"))
    url, name = scratch_database(False, workdir)
    envelope = Envelope(Source.SMTP, "customer@example.org", ("support@example.com",),
                        peer="192.0.2.1")
    try:
        gw = gateway(url, workdir)
        tokens, requesters = seed_tokens(gw, 20)
        for raw in build_messages(100, tokens, seed=99, requesters=requesters):  # warm up
            ingest(gw, raw, envelope)
        send_all(OutboxSender(gw, workers=1))
        gw.db.engine.dispose()  # new connections, each told to log every statement

        @event.listens_for(gw.db.engine, "connect")
        def log_everything(dbapi_connection, _record):
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET log_min_duration_statement = 0")

        start = log.stat().st_size
        for raw in build_messages(args.messages, tokens, requesters=requesters):
            ingest(gw, raw, envelope)
        mails = send_all(OutboxSender(gw, workers=1))
        gw.close()
    finally:
        drop_database(name)
    time.sleep(0.5)  # the server's log writer
    spent, count = durations(log, start)
    per = args.messages
    print(f"{per} messages, {mails} mails: PostgreSQL {sum(spent.values()) / per:.2f} ms a "
          f"message over {sum(count.values()) / per:.1f} statements")
    for kind, ms in spent.most_common(args.top):
        print(f"{ms / per:7.3f} ms/msg {count[kind] / per:5.2f}/msg "
              f"{1000 * ms / max(count[kind], 1):7.1f} us each  {kind}")


if __name__ == "__main__":
    main()
