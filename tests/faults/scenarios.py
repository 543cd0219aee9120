"""The fault scenarios: what each injects into a running `mailgate run`, `cycles` times.

Each `inject(stage)` runs while the SMTP load (or, for `dovecot-kill`, the IMAP
backlog) flows; `harness.Stage` gives it the daemon, the private PostgreSQL
cluster, the relay, Dovecot and the tiny disk, and `stage.pause` random
moments. The descriptions are those of tests/faults/__init__.py.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from tests.faults.process import proc_table

if TYPE_CHECKING:
    from tests.faults.harness import Stage

RELAY_SLOW = 1.0  # seconds the slow relay waits before answering DATA


@dataclass(frozen=True)
class Scenario:
    name: str
    inject: Callable[[Stage], None]
    description: str
    transport: str = "file"  # file | smtp (through the counting relay)
    source: str = "smtp"  # smtp (the load driver) | imap (APPENDs to Dovecot)
    tiny_disk: bool = False


def kill_group(stage: Stage) -> None:
    """kill -9 of the daemon's whole process group at a random moment, then a restart."""
    for _ in range(stage.cycles):
        stage.wait_for_progress()
        stage.pause(0.1, 2.0)
        stage.daemon.kill_group()
        stage.daemon.start()


def postgres_down(mode: str) -> Callable[[Stage], None]:
    def inject(stage: Stage) -> None:
        for _ in range(stage.cycles):
            stage.pause(0.5, 2.0)
            if mode == "sigstop":
                stage.cluster.freeze()
                time.sleep(stage.options.outage)
                stage.cluster.thaw()
            else:
                stage.cluster.stop(mode)
                time.sleep(stage.options.outage)
                stage.cluster.start()
    return inject


def dovecot_killed(stage: Stage) -> None:
    """A backlog appended, then Dovecot killed (the whole process group) while the
    poller fetches it, and started again on the same port."""
    for _ in range(stage.cycles):
        before = stage.stored_inbound()
        stage.append_batch(stage.options.imap_batch)
        deadline = time.monotonic() + 30  # the poller is at work on the batch ...
        while stage.stored_inbound() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        stage.pause(0.0, 0.8)  # ... and is killed somewhere in it
        stage.dovecot.kill()
        time.sleep(stage.rng.uniform(0.5, max(0.6, stage.options.outage)))
        stage.dovecot.start()
    stage.append_batch(stage.options.imap_batch)  # and one backlog without a fault


def disk_full(stage: Stage) -> None:
    for _ in range(stage.cycles):
        stage.pause(0.5, 2.0)
        stage.disk.fill()
        time.sleep(stage.options.outage)
        stage.disk.unfill()


def disk_readonly(stage: Stage) -> None:
    for _ in range(stage.cycles):
        stage.pause(0.5, 2.0)
        stage.disk.make_readonly()
        time.sleep(stage.options.outage)
        stage.disk.make_writable()


def relay_down_then_slow(stage: Stage) -> None:
    for _ in range(stage.cycles):
        stage.pause(0.5, 1.5)
        stage.relay.down()
        time.sleep(stage.options.outage)
        stage.relay.delay = RELAY_SLOW
        stage.relay.up()
        time.sleep(stage.options.outage)
        stage.relay.delay = 0.0


def worker_killed(stage: Stage) -> None:
    """SIGKILL of one delivery worker (as the OOM killer would), preferably one that
    is running: the message it holds must be retried, not quarantined."""
    kills = 0
    for _ in range(stage.cycles):
        stage.pause(0.5, 2.0)
        deadline = time.monotonic() + 1.0
        while True:
            workers = stage.daemon.delivery_workers()
            table = proc_table()
            busy = [pid for pid in workers if table.get(pid, (0, 0, ""))[2] == "R"]
            if busy or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        victims = busy or workers
        if victims:
            try:
                os.kill(stage.rng.choice(victims), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
    stage.notes.append(f"{kills} workers killed")


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("kill9", kill_group, "kill -9 of the process group, file transport"),
    Scenario("kill9-relay", kill_group, "kill -9 of the process group, SMTP relay",
             transport="smtp"),
    Scenario("pg-stop", postgres_down("fast"), "PostgreSQL stopped (fast) for T s"),
    Scenario("pg-immediate", postgres_down("immediate"),
             "PostgreSQL stopped (immediate: a crash) for T s"),
    Scenario("pg-sigstop", postgres_down("sigstop"), "PostgreSQL SIGSTOPped for T s"),
    Scenario("dovecot-kill", dovecot_killed, "Dovecot killed while the poller fetches",
             source="imap"),
    Scenario("disk-full", disk_full, "storage on a tmpfs filled to ENOSPC for T s",
             tiny_disk=True),
    Scenario("disk-readonly", disk_readonly, "storage read-only (EROFS) for T s",
             tiny_disk=True),
    Scenario("relay-down-slow", relay_down_then_slow,
             f"relay down for T s, then {RELAY_SLOW:g} s per message for T s", transport="smtp"),
    Scenario("worker-kill", worker_killed, "one delivery worker killed (SIGKILL)"),
)}
