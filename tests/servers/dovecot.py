"""A private, throwaway Dovecot IMAP server for tests, and a pytest fixture for it.

The server runs from its own config file in a temp folder (state, sockets, log
and maildirs all inside it) on a free loopback port, as root, with the login
and mail processes dropped to the `dovenull` and `dovecot` users. It keeps its
port across stop/start/kill so a client under test can reconnect.

Import the fixture into a conftest (``from tests.servers.dovecot import
dovecot_server``) or use ``running_dovecot(dir)`` for another scope. A missing
`dovecot` binary fails the test with a pointer to scripts/install-test-deps;
it never skips.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

INSTALL_HINT = "run scripts/install-test-deps (as root) to install dovecot-imapd"
MAIL_USER = "dovecot"          # owner of every maildir (static userdb)
LOGIN_USER = "dovenull"        # imap-login refuses to run as root
DEFAULT_FOLDERS = ("Archive", "Processed", "Quarantine")

CONFIG = """\
# Throwaway config written by tests/servers/dovecot.py
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {mail_user}
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
mail_location = maildir:~/Maildir
shutdown_clients = yes

passdb {{
  driver = passwd-file
  # One passwd-file per user: a new user's file is read at its first login, while a
  # changed file is only noticed once a second.
  args = scheme=PLAIN username_format=%u {root}/passwd/%u
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={root}/home/%u
}}

namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}
}}

protocol imap {{
  mail_max_userip_connections = 100
}}

# No anvil penalty socket: a test's failed login must not slow later logins by 2-15 s.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{extra_config}
"""

MAILBOX = """\
  mailbox {name} {{
    auto = subscribe
  }}"""


class DovecotError(RuntimeError):
    """The test server could not be set up, started or stopped."""


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class DovecotServer:
    """One private Dovecot instance whose files all live under `tmp_dir`."""

    host = "127.0.0.1"

    def __init__(self, tmp_dir: str | os.PathLike, folders: Iterable[str] = DEFAULT_FOLDERS,
                 start_timeout: float = 10.0, extra_config: str = "", binary: str | None = None):
        self.root = Path(tmp_dir).resolve()
        self.binary = binary or dovecot_binary()
        self.folders = tuple(folders)
        self.start_timeout = start_timeout
        self.extra_config = extra_config
        self._port: int | None = None
        self._process: subprocess.Popen | None = None
        self._users: dict[str, str] = {}
        self._probe = (f"probe-{secrets.token_hex(4)}@test.invalid", secrets.token_hex(12))

    # -- properties -------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise DovecotError("the server has not been started yet: no port chosen")
        return self._port

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The master's pid, which is also the process group of all its children."""
        return self._process.pid if self.running else None

    def maildir(self, user: str) -> Path:
        return self.root / "home" / user / "Maildir"

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        if self._process is not None:  # it died on its own: clean up what is left
            self._reap()
        if self.binary is None or not os.access(self.binary, os.X_OK):
            raise DovecotError(f"the dovecot binary ({self.binary or 'dovecot'}) is not "
                               f"installed: {INSTALL_HINT}")
        if os.geteuid() != 0:
            raise DovecotError("the Dovecot test server must run as root (it drops to "
                               f"{LOGIN_USER}/{MAIL_USER} itself)")
        if self._port is None:
            self._port = _free_port(self.host)
        self._prepare_files()
        stderr = open(self.root / "dovecot.stderr", "ab")
        with stderr:
            self._process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                start_new_session=True,  # its own process group, so kill() reaches every child
            )
        self._wait_until_ready()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (as `dovecot stop` does) and wait until the port is closed.
        Takes about a second: Dovecot's master waits that long for its log process."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._reap()

    def kill(self) -> None:
        """Crash the server: SIGKILL the master and all its children at once."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._reap()

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- users ------------------------------------------------------------
    def add_user(self, address: str, password: str) -> None:
        """Add a login (usable at once) or change its password (noticed within a second)."""
        if any(c in address + password for c in ":\n/") or address.startswith("."):
            raise ValueError("address and password may not contain ':', '/' or newlines, "
                             "nor the address start with '.'")
        replacing = address in self._users
        self._users[address] = password
        if self.root.exists():
            self._write_passwd(address, password)
        if replacing and self.running:
            time.sleep(1.0 - time.time() % 1.0 + 0.01)  # the next lookup is in a later second

    @property
    def users(self) -> dict[str, str]:
        return dict(self._users)

    # -- IMAP helpers for tests --------------------------------------------
    @contextlib.contextmanager
    def client(self, user: str, password: str, timeout: float = 10.0) -> Iterator[IMAPClient]:
        """A logged-in IMAPClient, logged out on exit."""
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        try:
            imap.login(user, password)
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def append(self, user: str, password: str, raw: bytes, folder: str = "INBOX",
               flags: Iterable[str] = ()) -> int:
        """Store `raw` in `folder` (created if missing); return its UID."""
        with self.client(user, password) as imap:
            if not imap.folder_exists(folder):
                imap.create_folder(folder)
            response = imap.append(folder, raw, flags=tuple(flags))
        match = re.search(rb"\[APPENDUID \d+ (\d+)\]", response)
        if match is None:
            raise DovecotError(f"APPEND gave no APPENDUID: {response!r}")
        return int(match.group(1))

    def folder_uids(self, user: str, password: str, folder: str = "INBOX") -> list[int]:
        with self.client(user, password) as imap:
            imap.select_folder(folder, readonly=True)
            return sorted(imap.search("ALL"))

    def fetch_flags(self, user: str, password: str, folder: str = "INBOX") -> dict[int, frozenset[str]]:
        """{uid: flags} for every message in `folder`, as str (e.g. '\\Seen'). The
        session-only \\Recent flag is left out."""
        with self.client(user, password) as imap:
            imap.select_folder(folder, readonly=True)
            uids = imap.search("ALL")
            fetched = imap.fetch(uids, ["FLAGS"]) if uids else {}
        return {uid: frozenset(_text(flag) for flag in data[b"FLAGS"]) - {"\\Recent"}
                for uid, data in fetched.items()}

    def uidvalidity(self, user: str, password: str, folder: str = "INBOX") -> int:
        with self.client(user, password) as imap:
            return imap.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"]

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.root / "dovecot.stderr", self.log_path):
            if path.exists():
                text += "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        return text or "(dovecot wrote no log)"

    # -- internals --------------------------------------------------------
    def _prepare_files(self) -> None:
        mail = pwd.getpwnam(MAIL_USER)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self._check_reachable(self.root)
        home = self.root / "home"
        home.mkdir(exist_ok=True)
        os.chown(home, mail.pw_uid, mail.pw_gid)
        mailboxes = "\n".join(MAILBOX.format(name=_quote(name)) for name in self.folders)
        self.config_path.write_text(CONFIG.format(
            root=self.root, host=self.host, port=self.port, mailboxes=mailboxes,
            extra_config=self.extra_config,
            login_user=LOGIN_USER, mail_user=MAIL_USER, mail_uid=mail.pw_uid, mail_gid=mail.pw_gid))
        for address, password in [self._probe, *self._users.items()]:
            self._write_passwd(address, password)

    def _write_passwd(self, address: str, password: str) -> None:
        folder = self.root / "passwd"
        folder.mkdir(exist_ok=True)
        path = folder / address
        temp = folder / f".{address}.tmp"
        temp.write_text(f"{address}:{{PLAIN}}{password}\n")
        temp.chmod(0o644)
        # Dovecot rereads a file whose mtime (in seconds) or size changed: make mtime move.
        mtime = int(time.time())
        if path.exists():
            mtime = max(mtime, int(path.stat().st_mtime) + 1)
        os.utime(temp, (mtime, mtime))
        temp.replace(path)  # atomic, so a running server never reads half a file

    @staticmethod
    def _check_reachable(root: Path) -> None:
        """The mail processes run as `dovecot`: every parent folder must let others through."""
        for parent in [root, *root.parents]:
            if not parent.stat().st_mode & 0o001:
                raise DovecotError(f"{parent} is not searchable by the {MAIL_USER} user; put the "
                                   "server's folder under one that is (e.g. tempfile.mkdtemp())")

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise DovecotError(f"dovecot exited with code {code} while starting; "
                                   f"log tail:\n{self.log_tail()}")
            try:
                with self.client(*self._probe, timeout=2):
                    return
            except Exception as error:  # refused while starting, or auth not up yet
                last_error = error
                time.sleep(0.02)
        self.kill()
        raise DovecotError(f"dovecot did not accept an IMAP login on {self.host}:{self.port} "
                           f"within {self.start_timeout}s (last error: {last_error!r}); "
                           f"log tail:\n{self.log_tail()}")

    def _reap(self, timeout: float = 10.0) -> None:
        """After the master is gone: kill stragglers in its group and wait until none is
        left alive (none can still touch the maildirs) and the port is closed."""
        pgid = self._process.pid
        self._process = None
        deadline = time.monotonic() + timeout
        while live_processes(pgid) or _port_open(self.host, self.port):
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot (process group {pgid}) or port {self.port} still "
                                   f"alive {timeout}s after it was stopped")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.01)


def live_processes(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are still running (zombies do not count:
    orphans wait for PID 1 to reap them, which can take a while in a container)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            pids.append(int(entry))
    return pids


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextlib.contextmanager
def running_dovecot(tmp_dir: str | os.PathLike | None = None, **options) -> Iterator[DovecotServer]:
    """A started server (options as for DovecotServer), killed on exit. Without `tmp_dir`,
    uses and then removes a fresh folder under /tmp, which the `dovecot` user can reach
    (pytest's tmp_path is not: pytest keeps its folders at mode 0700)."""
    owned = tmp_dir is None
    root = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-")) if owned else Path(tmp_dir)
    server = DovecotServer(root, **options)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        if owned:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot_server() -> Iterator[DovecotServer]:
    """A fresh Dovecot per test. Fails (never skips) when Dovecot is not installed."""
    if dovecot_binary() is None:
        pytest.fail(f"Dovecot is required for this test: {INSTALL_HINT}", pytrace=False)
    try:
        with running_dovecot() as server:
            yield server
    except DovecotError as error:
        pytest.fail(str(error), pytrace=False)
