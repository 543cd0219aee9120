"""The pipeline in-process: CPU and statements per message, by outcome, and a profile.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/pipeline_profile.py [--messages 1000] [--sqlite]
                                                    [--profile FILE] [--top 30] [--steps]

Ingests the messages `smtp_ingest.py` sends (new tickets, true replies from a
ticket's requester, token replies from strangers) into a scratch PostgreSQL
database (or SQLite) through `pipeline.ingest`, in this process, then sends the
acknowledgements and agent notifications through the file transport
(`OutboxSender.run_once`). Prints CPU per message for the pipeline and for the
outbox, SQL statements per message by outcome and, with `--profile`, the
functions the CPU went to (cumulative, and exclusive by package); with
`--steps`, CPU per message in each stage of the path (raw store, precheck, parse,
each of the pipeline's STEPS, the commit).
"""
from __future__ import annotations

import argparse
import cProfile
import collections
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from smtp_ingest import build_messages  # noqa: E402  (the benchmarks folder is on the path)

from mailgate.config import Settings  # noqa: E402
from mailgate.db import Database  # noqa: E402
from mailgate.gateway import Gateway  # noqa: E402
from mailgate.models import Address, Agent, Department  # noqa: E402
from mailgate.outbound.delivery import Link  # noqa: E402
from mailgate.outbound.sender import BATCH, OutboxSender  # noqa: E402
from mailgate.pipeline import Envelope, ingest, runner  # noqa: E402
from mailgate.vocabulary import Source  # noqa: E402

ADMIN = "host=127.0.0.1 user=postgres dbname=postgres"


def scratch_database(sqlite: bool, workdir: Path) -> tuple[str, str | None]:
    if sqlite:
        return f"sqlite:///{workdir / 'mailgate.db'}", None
    name = f"mailgate_prof_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}", name


def drop_database(name: str | None) -> None:
    if name is None:
        return
    admin = psycopg2.connect(ADMIN)
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s", (name,))
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


def gateway(url: str, workdir: Path) -> Gateway:
    settings = Settings().replace(database={"url": url},
                                  storage={"dir": workdir / "var", "fsync": True},
                                  outbound={"ack_limit_per_hour": 10**6,  # every message
                                            "ack_limit_per_domain": 10**6,  # acknowledged
                                            "ack_limit_per_network": 10**6})
    db = Database(url)
    db.upgrade()
    with db.unit_of_work() as session:
        support = Department(key="support", name="Support")
        session.add_all([support, Address(address="support@example.com", department=support),
                         Agent(email="agent@example.com", name="Agent",
                               departments=[support])])
    return Gateway(settings, database=db)


class Statements:
    """Counts the SQL statements the engine executes."""

    def __init__(self, engine):
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._one)

    def _one(self, *_args) -> None:
        self.count += 1


def seed_tokens(gw: Gateway, count: int) -> tuple[list[str], list[str]]:
    """Tickets to reply to: (subject tokens, their requesters' addresses)."""
    envelope = Envelope(Source.PIPE, "customer@example.org", ("support@example.com",))
    tokens, requesters = [], []
    for i, raw in enumerate(build_messages(count, [], seed=1)):
        result = ingest(gw, raw, envelope)
        tokens.append(f"[MG#{result.ticket}]")
        requesters.append(f"customer{i % 300}@example.org")
    return tokens, requesters


def run(gw: Gateway, messages: list[bytes], profiler: cProfile.Profile | None,
        clock: StepClock | None = None) -> None:
    envelope = Envelope(Source.SMTP, "customer@example.org", ("support@example.com",),
                        peer="192.0.2.1")
    statements = Statements(gw.db.engine)
    by_outcome: dict[str, list[int]] = collections.defaultdict(list)
    cpu = time.process_time()
    if profiler:
        profiler.enable()
    for raw in messages:
        before = statements.count
        result = ingest(gw, raw, envelope)
        by_outcome[str(result.outcome)].append(statements.count - before)
    pipeline_cpu = time.process_time() - cpu
    if clock:
        clock.report(len(messages), pipeline_cpu)
    before = statements.count
    sender = OutboxSender(gw, workers=1)
    if clock:
        clock.watch_outbox(sender)
    cpu = time.process_time()
    sent = send_all(sender)
    outbox_cpu = time.process_time() - cpu
    if clock:
        clock.report_outbox(sent, outbox_cpu)
    if profiler:
        profiler.disable()
    count = len(messages)
    print(f"pipeline: {pipeline_cpu / count * 1000:.2f} ms CPU per message; "
          f"outbox: {sent} mails, {outbox_cpu / count * 1000:.2f} ms CPU per inbound message "
          f"({outbox_cpu / max(sent, 1) * 1000:.2f} per mail, "
          f"{(statements.count - before) / max(sent, 1):.1f} statements per mail); "
          f"total {(pipeline_cpu + outbox_cpu) / count * 1000:.2f} ms")
    for outcome, counts in sorted(by_outcome.items()):
        print(f"  {outcome:10s} {len(counts):5d} messages, statements per message: "
              f"median {sorted(counts)[len(counts) // 2]}, min {min(counts)}, max {max(counts)}")


class StepClock:
    """CPU spent in each stage of the path, exclusive (a flush within a step counts as
    the flush's), by wrapping the stages in place."""

    def __init__(self, gw: Gateway):
        self.cpu: dict[str, float] = collections.Counter()
        self._inner: list[float] = []  # CPU of the stages within each running stage
        for module in runner.STEPS:
            module.step = self._timed(module.__name__.rsplit(".", 1)[-1], module.step)
        gw.storage.raw.put = self._timed("raw store", gw.storage.raw.put)
        runner.precheck = self._timed("precheck", runner.precheck)
        gw.parser.parse = self._timed("parse", gw.parser.parse)
        gw.db.sessions = self._session_clock(gw.db.sessions)

    def _timed(self, name: str, function):
        """`function`, its CPU counted under `name`, less what stages within it took."""
        def timed(*args, **kwargs):
            self._inner.append(0.0)
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.process_time() - started
                self.cpu[name] += spent - self._inner.pop()
                if self._inner:
                    self._inner[-1] += spent
        return timed

    def _session_clock(self, sessions):
        def session(**options):
            made = sessions(**options)
            made.flush = self._timed("ORM flush", made.flush)
            made.commit = self._timed("commit", made.commit)
            return made
        return session

    def watch_outbox(self, sender: OutboxSender) -> None:
        """From now on, the outbox's stages instead of the pipeline's."""
        self.cpu = collections.Counter()
        sender.claimer.claim_some = self._timed("claim", sender.claimer.claim_some)
        sender.delivery.templates.render = self._timed("render", sender.delivery.templates.render)
        sender.delivery._render_email = self._timed(  # noqa: SLF001
            "compose", sender.delivery._render_email)  # noqa: SLF001
        sender.transport.send = self._timed("transport (file)", sender.transport.send)
        sender.delivery.journal.keep = self._timed("journal: copy", sender.delivery.journal.keep)
        sender.delivery.journal.write = self._timed("journal: entry",
                                                    sender.delivery.journal.write)
        sender.ledger.record = self._timed("record", sender.ledger.record)
        sender.ledger.settle = self._timed("settle", sender.ledger.settle)

    def report(self, count: int, total: float, what: str = "message") -> None:
        print(f"CPU per {what} by stage (ms):")
        for name, seconds in sorted(self.cpu.items(), key=lambda kv: -kv[1]):
            print(f"  {name:26s} {seconds / count * 1000:6.2f}")
        rest = total - sum(self.cpu.values())
        print(f"  {'(the rest)':26s} {rest / count * 1000:6.2f}")

    def report_outbox(self, count: int, total: float) -> None:
        self.report(max(count, 1), total, "mail")


def send_all(sender: OutboxSender) -> int:
    """What `run_once` does, in this thread (cProfile sees only the thread it runs in)."""
    sender.recover()
    link, sent = Link(sender.transport), 0
    while done := sender._step(link, BATCH):  # noqa: SLF001  (one worker's loop, in this thread)
        sent += done
    link.close()
    return sent


def report_profile(profiler: cProfile.Profile, path: str | None, top: int) -> None:
    stats = pstats.Stats(profiler)
    if path:
        stats.dump_stats(path)
    stats.sort_stats("cumulative").print_stats(top)
    by_package: dict[str, float] = collections.Counter()
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        by_package[package_of(filename)] += tottime
    total = sum(by_package.values())
    print("exclusive time by package:")
    for name, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {name:40s} {seconds:7.2f} s {seconds / total * 100:5.1f} %")


def package_of(filename: str) -> str:
    parts = Path(filename).parts
    for marker in ("site-packages", "mailgate"):
        if marker in parts:
            at = parts.index(marker)
            rest = parts[at + 1:]
            if marker == "mailgate":
                return "mailgate/" + "/".join(rest[:-1] + (rest[-1],)) if rest else marker
            return rest[0] if rest else marker
    return "stdlib" if "python3" in filename else filename


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--profile", nargs="?", const="", default=None,
                        help="profile, and write the stats to this file")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--steps", action="store_true",
                        help="print CPU per message in each stage of the path")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailgate-prof-"))
    url, name = scratch_database(args.sqlite, workdir)
    try:
        gw = gateway(url, workdir)
        tokens, requesters = seed_tokens(gw, 20)
        messages = build_messages(args.messages, tokens, requesters=requesters)
        warm = build_messages(50, tokens, seed=99, requesters=requesters)
        run(gw, warm, None)
        profiler = cProfile.Profile(time.process_time) if args.profile is not None else None  # CPU, not waits
        run(gw, messages, profiler, StepClock(gw) if args.steps else None)
        if profiler:
            report_profile(profiler, args.profile or None, args.top)
        gw.close()
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
