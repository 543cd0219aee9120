"""A private PostgreSQL cluster for the fault harness: initdb in a temp folder, a free
loopback port, its own socket folder, fsync on, so that it can be stopped, crashed
and frozen without touching the shared server on 5432.

PostgreSQL refuses to run as root, so every binary runs as the `postgres` OS user
(`runuser`) when we are root; the data folder belongs to that user.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg2

from tests.servers.relay import free_port

BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
            "/usr/lib/postgresql/17/bin")
OWNER = "postgres"


class ClusterError(RuntimeError):
    """The private cluster could not be made, started or stopped."""


def find_bin_dir() -> Path | None:
    for folder in (os.environ.get("MAILGATE_PG_BIN", ""), *BIN_DIRS):
        if folder and (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivatePostgres:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log_path = self.root / "postgres.log"
        self.port = free_port()
        self.bin = find_bin_dir()
        self.frozen: list[int] = []

    # -- lifecycle ---------------------------------------------------------------
    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OWNER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise ClusterError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}\n{self.log_tail()}")
        return done

    def init(self) -> "PrivatePostgres":
        if self.bin is None:
            raise ClusterError("PostgreSQL server binaries (initdb) not found: run "
                               "scripts/install-test-deps, or set MAILGATE_PG_BIN")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for folder in (self.data, self.sockets):
            folder.mkdir(exist_ok=True)
            if os.geteuid() == 0:
                user = pwd.getpwnam(OWNER)
                os.chown(folder, user.pw_uid, user.pw_gid)
        self.log_path.touch()
        if os.geteuid() == 0:
            user = pwd.getpwnam(OWNER)
            os.chown(self.log_path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-instructions")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\n# fault harness\nport = {self.port}\n"
                       f"listen_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.sockets}'\n"
                       "fsync = on\nmax_connections = 200\nshared_buffers = 32MB\n"
                       "logging_collector = off\n")
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60",
                  "start")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """`fast` (clients disconnected, clean shutdown) or `immediate` (a crash:
        recovery at the next start)."""
        self.thaw()
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop",
                  check=False)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError as error:
                if time.monotonic() > deadline:
                    raise ClusterError(f"private PostgreSQL not ready: {error}\n"
                                       f"{self.log_tail()}") from error
                time.sleep(0.1)

    # -- SIGSTOP: every process of the cluster frozen, then let go ----------------
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def processes(self) -> list[int]:
        master = self.postmaster_pid()
        if master is None:
            return []
        pids = [master]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == master:
                    pids.append(int(entry.name))
        return pids

    def freeze(self) -> None:
        self.frozen = self.processes()
        for pid in self.frozen:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass

    def thaw(self) -> None:
        for pid in self.frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    # -- databases ---------------------------------------------------------------
    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, *statements: str) -> None:
        conn = psycopg2.connect(self.dsn("postgres"), connect_timeout=10)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""
