"""`mailgate run` as a real process in a process group of its own, so that `kill -9`
reaches the daemon and every process it started (the forkserver and the delivery
workers) at once, as an OOM kill of a cgroup or a power cut of the service would."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def proc_table() -> dict[int, tuple[int, int, str]]:
    """{pid: (ppid, pgrp, state)} of every process, read from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def live_in_group(pgid: int) -> list[int]:
    return [pid for pid, (_, group, state) in proc_table().items()
            if group == pgid and state not in ("Z", "X")]


class Daemon:
    """One `mailgate run`; `start()` waits for its "started" line."""

    def __init__(self, config: Path, log: Path):
        self.config = Path(config)
        self.log_path = Path(log)
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.start_seconds: list[float] = []

    def start(self, timeout: float = 60) -> "Daemon":
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "mailgate", "--config",
                                      str(self.config), "run"], stdout=log,
                                     stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
                                     start_new_session=True)
        log.close()
        self.starts += 1
        while time.monotonic() - started < timeout:
            if re.search(r"\bstarted smtp=", self.log(offset)):
                self.start_seconds.append(time.monotonic() - started)
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"mailgate run exited with {self.proc.returncode}:\n"
                                   f"{self.log(offset)[-3000:]}")
            time.sleep(0.05)
        self.kill_group()
        raise RuntimeError(f"mailgate run did not start in {timeout:g} s:\n"
                           f"{self.log(offset)[-3000:]}")

    def log(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill_group(self) -> None:
        """SIGKILL the whole process group and wait until nothing of it runs."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while live_in_group(pgid) and time.monotonic() < deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.02)

    def terminate(self, timeout: float = 60) -> float | None:
        """SIGTERM; the seconds it took to exit, or None when it had to be killed."""
        if not self.alive:
            return 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            return None
        took = time.monotonic() - started
        self.kill_group()  # workers left behind, if any
        return took

    def delivery_workers(self) -> list[int]:
        """The delivery worker processes: the forkserver is the daemon's child and
        forks the workers, so they are the daemon's grandchildren."""
        if not self.alive:
            return []
        table = proc_table()
        daemon = self.proc.pid
        children = {pid for pid, (ppid, _, _) in table.items() if ppid == daemon}
        return [pid for pid, (ppid, group, state) in table.items()
                if ppid in children and group == daemon and state not in ("Z", "X")]
