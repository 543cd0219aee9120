"""IMAP backlog benchmark: one `mailgate run` on PostgreSQL drains a Dovecot folder.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/imap_backlog.py [--messages 10000] [--baseline REF]

N pre-built messages (the mix of benchmarks/smtp_ingest.py: plain, HTML, ~10 %
with a 100 KB attachment, ~30 % replies carrying the token of an existing ticket)
are appended to the INBOX of a private Dovecot (tests/servers/dovecot.py). Then a
daemon starts on a fresh PostgreSQL database with that mailbox as its one
`[[imap]]` account and drains it. Measured from the first message stored to the
last one filed away (`imap_state.last_uid` at the highest UID): messages/s, CPU
per message of the daemon's process tree (main process, fork server, delivery
workers) and of its database's PostgreSQL backends, and the peak of the summed
RSS of the daemon's processes (sampled from /proc every 0.1 s).

`--baseline REF` first runs the same backlog (a second mailbox, a second
database) through the daemon of git REF (`git archive` into a temp folder, run
with this venv), then the working tree's, and prints the ratios; `--rounds R`
alternates them R times and compares the medians (the machine may be shared).

Environment: BENCH_WORKERS=N sets `[daemon] delivery_workers` (default: two per CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.smtp_ingest import build_messages, cpu_seconds, tree_at  # noqa: E402
from tests.servers.daemon import DaemonProcess  # noqa: E402
from tests.servers.dovecot import DovecotServer, running_dovecot  # noqa: E402

PASSWORD = "bench"
PG = "host=127.0.0.1 user=postgres dbname={}"


@dataclass
class Figures:
    label: str
    count: int
    seconds: float
    cpu_daemon: float
    cpu_main: float
    cpu_workers: list[float]  # each delivery worker's
    cpu_postgres: float
    peak_rss: int  # bytes, summed over the daemon's processes
    memory: str  # its description

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def show(self) -> None:
        per = 1000 / self.count
        print(f"{self.label:10s} {self.count:6d} msgs in {self.seconds:7.2f} s = "
              f"{self.rate:7.1f} msg/s   CPU/msg: daemon {self.cpu_daemon * per:5.1f} ms "
              f"(main process {self.cpu_main * per:4.1f}, workers "
              f"{'/'.join(f'{w * per:.1f}' for w in self.cpu_workers)}), PostgreSQL "
              f"{self.cpu_postgres * per:4.1f} ms\n{'':10s} {self.memory}", flush=True)


def append_backlog(server: DovecotServer, user: str, messages: list[bytes]) -> int:
    """Append `messages` to the user's INBOX, 200 per MULTIAPPEND; the highest UID."""
    server.add_user(user, PASSWORD)
    with server.client(user, PASSWORD, timeout=120) as imap:
        for start in range(0, len(messages), 200):
            imap.multiappend("INBOX", messages[start:start + 200])
        imap.select_folder("INBOX", readonly=True)
        return max(imap.search("ALL"))


def process_tree(root: int) -> dict[int, str]:
    """{pid: role} of `root` and its descendants: main, forkserver, resource_tracker
    (the children `multiprocessing` starts) and worker (the fork server's children)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    tree = {root: "main"}
    while more := {pid: parent for pid, parent in parents.items()
                   if parent in tree and pid not in tree}:
        for pid, parent in more.items():
            tree[pid] = "worker" if tree[parent] == "forkserver" else _started_by_main(pid)
    return tree


def _started_by_main(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "other"
    return next((name for name in ("forkserver", "resource_tracker")
                 if name.encode() in cmdline), "other")


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes: PSS shares each page among the processes that map it."""
    sizes = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss"):
                sizes[name] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return sizes.get("Rss", 0), sizes.get("Pss", 0)


class MemorySampler(threading.Thread):
    """Every `every` seconds, the summed RSS and PSS of `root`'s process tree: the
    first sample, the peaks, and the RSS of each process at the RSS peak."""

    def __init__(self, root: int, every: float = 0.1):
        super().__init__(daemon=True)
        self.root, self.every = root, every
        self.first = self.peak = self.peak_pss = 0
        self.split: list[tuple[str, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            tree = process_tree(self.root)
            sizes = {pid: memory(pid) for pid in tree}
            rss, pss = (sum(column) for column in zip(*sizes.values()))
            self.first = self.first or rss
            self.peak_pss = max(self.peak_pss, pss)
            if rss > self.peak:
                self.peak = rss
                self.split = sorted((tree[pid], size[0]) for pid, size in sizes.items())

    def describe(self) -> str:
        mb = 2**20
        return (f"peak RSS {self.peak / mb:6.1f} MB summed (at start {self.first / mb:.0f}; "
                "at the peak " + ", ".join(f"{name} {size / mb:.0f}" for name, size in self.split)
                + f"), peak PSS {self.peak_pss / mb:.0f} MB")


def prepare_database(db_name: str, workdir: Path, tree: Path, server: DovecotServer,
                     user: str, seed: list[bytes]) -> tuple[Path, dict, list[str]]:
    """Config, schema, department and address, and the tickets of `seed` (for tokens)."""
    config = workdir / "mailgate.toml"
    config.write_text(
        f'[database]\nurl = "postgresql+psycopg2://postgres@127.0.0.1:5432/{db_name}"\n'
        f'[storage]\ndir = "{workdir / "var"}"\n'
        '[smtp]\nlisten = ["127.0.0.1:0"]\n[http]\nlisten = "127.0.0.1:0"\n'
        '[log]\nlevel = "INFO"\n'
        f'[daemon]\ndelivery_workers = {int(os.environ.get("BENCH_WORKERS", "0"))}\n'
        f'[[imap]]\nname = "backlog"\nhost = "{server.host}"\nport = {server.port}\n'
        f'security = "none"\nuser = "{user}"\npassword = "{PASSWORD}"\n'
        'department = "support"\npoll_interval = 5.0\n')
    # PYTHONSAFEPATH: `python -m` would put the working folder (this checkout) first
    env = {"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
    where = subprocess.run([sys.executable, "-c", "import mailgate; print(mailgate.__file__)"],
                           check=True, env={**os.environ, **env}, capture_output=True, text=True)
    if not Path(where.stdout.strip()).is_relative_to(tree):
        raise RuntimeError(f"mailgate imported from {where.stdout.strip()}, not from {tree}")
    mg = [sys.executable, "-m", "mailgate", "--config", str(config)]
    for command in (["db", "upgrade"], ["department", "add", "support"],
                    ["address", "add", "support@example.com", "--department", "support"]):
        subprocess.run(mg + command, check=True, env={**os.environ, **env}, capture_output=True)
    seed_dir = workdir / "seed"
    seed_dir.mkdir()
    for i, raw in enumerate(seed):
        (seed_dir / f"{i:03d}.eml").write_bytes(raw)
    out = subprocess.run(mg + ["ingest", "--json", str(seed_dir)], check=True,
                         env={**os.environ, **env}, capture_output=True)
    tokens = [f"[MG#{row['ticket']}]" for row in json.loads(out.stdout)]
    return config, env, tokens


def drain(label: str, config: Path, env: dict, db_name: str, last_uid: int,
          count: int, timeout: float) -> Figures:
    """Start the daemon and measure until it has filed away `last_uid`."""
    db = psycopg2.connect(PG.format(db_name))
    db.autocommit = True

    def query(sql: str):
        with db.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]

    def cpu(daemon: DaemonProcess, backends: set[int]) -> tuple[dict, float]:
        """CPU seconds of each of the daemon's processes ({pid: (role, seconds)}) and of
        the PostgreSQL backends."""
        return ({pid: (role, cpu_seconds({pid}, descendants=False))
                 for pid, role in process_tree(daemon.proc.pid).items()},
                cpu_seconds(backends, descendants=False))

    def backends() -> set[int]:
        with db.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()")
            return {row[0] for row in cur.fetchall()}

    daemon = DaemonProcess(config, env=env).start(timeout=60)
    sampler = MemorySampler(daemon.proc.pid)
    sampler.start()
    try:
        deadline = time.monotonic() + timeout
        while not query("SELECT count(*) FROM inbound WHERE source = 'imap'"):
            if time.monotonic() > deadline or daemon.proc.poll() is not None:
                raise RuntimeError(f"{label}: nothing arrived:\n{daemon.log()[-3000:]}")
            time.sleep(0.05)
        started, seen = time.monotonic(), backends()
        before = cpu(daemon, seen)
        while (query("SELECT coalesce(max(last_uid), 0) FROM imap_state") or 0) < last_uid:
            if time.monotonic() > deadline or daemon.proc.poll() is not None:
                raise RuntimeError(f"{label}: not drained in time:\n{daemon.log()[-3000:]}")
            seen |= backends()
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        after = cpu(daemon, seen | backends())
        stored = query("SELECT count(*) FROM inbound WHERE source = 'imap'")
        if stored != count:
            print(f"  ({label}: {stored} inbound rows for {count} messages)")
        used = {pid: (role, seconds - before[0].get(pid, (role, 0.0))[1])
                for pid, (role, seconds) in after[0].items()}
        return Figures(label, count, elapsed, sum(seconds for _, seconds in used.values()),
                       sum(seconds for role, seconds in used.values() if role == "main"),
                       sorted((s for role, s in used.values() if role == "worker"), reverse=True),
                       after[1] - before[1], sampler.peak, sampler.describe())
    finally:
        sampler.done.set()
        daemon.stop()
        db.close()


def run(label: str, tree: Path, server: DovecotServer, count: int, timeout: float) -> Figures:
    db_name = f"mailgate_imapbench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(PG.format("postgres"))
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{db_name}"')
    workdir = Path(tempfile.mkdtemp(prefix="mailgate-imapbench-"))
    user = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    try:
        config, env, tokens = prepare_database(db_name, workdir, tree, server, user,
                                               build_messages(20, [], seed=1))
        # the same bytes for every run but for the tokens, which name this database's tickets
        last_uid = append_backlog(server, user, build_messages(count, tokens))
        return drain(label, config, env, db_name, last_uid, count, timeout)
    finally:
        admin.cursor().execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = %s", (db_name,))
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db_name}"')
        admin.close()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--baseline", metavar="REF", help="git ref to compare with, run first")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each, alternating (medians compared)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per drain")
    args = parser.parse_args()

    print(f"{args.messages} messages in one folder, {os.cpu_count()} CPUs, load average "
          f"{load()}", flush=True)
    trees = {"current": ROOT}
    if args.baseline:
        trees = {args.baseline[:10]: tree_at(args.baseline), **trees}
    results: dict[str, list[Figures]] = {label: [] for label in trees}
    with running_dovecot() as server:
        for _ in range(args.rounds):
            for label, tree in trees.items():
                results[label].append(run(label, tree, server, args.messages, args.timeout))
                results[label][-1].show()
                print(f"{'':10s} load average {load()}", flush=True)
    medians = {label: {name: statistics.median(getattr(f, name) for f in runs)
                       for name in ("rate", "cpu_daemon", "cpu_postgres", "peak_rss")}
               for label, runs in results.items()}
    if len(medians) == 2:
        old_label, old = next(iter(medians.items()))
        new = medians["current"]
        print(f"ratio current / {old_label} (medians of {args.rounds}): " + "   ".join(
            f"{title} {new[name] / old[name]:.2f}" for title, name in (
                ("msg/s", "rate"), ("CPU/msg daemon", "cpu_daemon"),
                ("PostgreSQL", "cpu_postgres"), ("peak RSS", "peak_rss"))))


if __name__ == "__main__":
    main()
