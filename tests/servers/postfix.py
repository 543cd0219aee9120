"""A private, throwaway Postfix in front of mailgate, configured as deployed, and a
pytest fixture that starts it.

Every file of the instance lives in a temp folder: `etc/` (its config_directory:
main.cf, master.cf, the transport map), `spool/` (queue_directory), `data/`
(data_directory) and `postfix.log` (maillog_file). It listens on a free loopback
port and on nothing else; the system's own mail setup is never read or touched.
Everything that is not for the support domain (bounces, mostly) goes to a relay
the test names, so a test sees the delivery status notices Postfix sends.

The lines that hand the support domain to mailgate are a `Deployment`
(`lmtp_deployment`, `pipe_deployment`; `verify_recipients` and
`strip_forged_results` add to main.cf): the README's "Deploying behind Postfix"
shows the very same lines for support.example.com, and tests/test_postfix.py
checks that it does. The rest of the main.cf here only makes the instance
private and quick (short timeouts, no retries unless a test flushes the queue).

A missing `postfix` binary fails the test with a pointer to
scripts/install-test-deps; it never skips.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.dovecot import _port_open, live_processes
from tests.servers.relay import free_port

INSTALL_HINT = "run scripts/install-test-deps (as root) to install postfix"
HOSTNAME = "mx.test.invalid"  # myhostname: the `by` of its Received: lines
PIPE_USER = "nobody"          # the pipe transport refuses root and the mail system owner


# -- what a deployment writes -----------------------------------------------------

@dataclass(frozen=True)
class Deployment:
    """The lines a deployment adds to main.cf, master.cf and the transport map."""
    main: str
    transport: str
    master: str = ""


def lmtp_deployment(domain: str, port: int, size_limit: int) -> Deployment:
    """Mail for `domain` to `mailgate run`'s LMTP listener on 127.0.0.1:`port`;
    `size_limit` is mailgate's `[smtp] max_message_size`, so that Postfix refuses
    a larger message during the sender's SMTP session instead of bouncing it later."""
    return Deployment(
        main=f"relay_domains = {domain}\n"
             "transport_maps = hash:$config_directory/transport\n"
             f"message_size_limit = {size_limit}\n",
        transport=f"{domain}  lmtp:inet:127.0.0.1:{port}\n")


def pipe_deployment(domain: str, mailgate: str, config: str, user: str,
                    size_limit: int) -> Deployment:
    """Mail for `domain` piped into `mailgate ingest`, one recipient per delivery
    (the `D` flag and `--recipient ${original_recipient}` need that); exit 75 defers."""
    return Deployment(
        main=f"relay_domains = {domain}\n"
             "transport_maps = hash:$config_directory/transport\n"
             "mailgate_destination_recipient_limit = 1\n"
             f"message_size_limit = {size_limit}\n",
        transport=f"{domain}  mailgate:\n",
        master="mailgate  unix  -       n       n       -       4       pipe\n"
               f"  flags=DRhu user={user} argv={mailgate} --config {config} ingest"
               " --sender ${sender} --recipient ${original_recipient}\n")


def verify_recipients(domain: str) -> str:
    """main.cf lines for recipient address verification: smtpd asks mailgate (a probe,
    RCPT without DATA) before it accepts a recipient in `domain`, so an unknown address
    is refused to the sender's server (550) instead of bounced afterwards to a sender
    that may be forged. Postfix answers from its cache of probe results, which it
    needs (without negative caching every unknown address stays "in progress", 450);
    a cached "unknown" is probed again after ten minutes, so an address added to
    mailgate since then is refused once more, then accepted."""
    return (f"smtpd_recipient_restrictions = check_recipient_access"
            f" inline:{{ {domain}=reject_unverified_recipient }}\n"
            "unverified_recipient_reject_code = 550\n"
            "address_verify_negative_refresh_time = 10m\n")


def strip_forged_results(authserv_id: str) -> tuple[str, str]:
    """(main.cf line, header_checks file) that drop Authentication-Results claiming our
    own authserv-id on arrival (RFC 8601 §5). A milter's own header (OpenDMARC,
    rspamd) is not subject to header_checks, so it stays."""
    pattern = authserv_id.replace(".", r"\.")
    return ("header_checks = regexp:$config_directory/header_checks\n",
            f"/^Authentication-Results:[[:space:]]*{pattern}([[:space:];]|$)/ IGNORE\n")


# -- what makes the instance private and quick ------------------------------------

PRIVATE_MAIN = """\
# Throwaway instance written by tests/servers/postfix.py
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = {hostname}
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
# everything else (delivery status notices) goes to the test's relay
relayhost = [127.0.0.1]:{relay_port}
# quick: no sleeping after errors, short timeouts, and a deferred message stays
# deferred until the test flushes the queue (postqueue -f)
smtpd_error_sleep_time = 0
in_flow_delay = 0
queue_run_delay = 300s
minimal_backoff_time = 300s
maximal_backoff_time = 600s
smtp_connect_timeout = 5s
lmtp_connect_timeout = 5s
address_verify_poll_delay = 1s
"""

PRIVATE_MASTER = """\
# service  type  private unpriv  chroot  wakeup  maxproc command
{host}:{port}  inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixError(RuntimeError):
    """The test instance could not be set up, started or stopped."""


def postfix_binary() -> str | None:
    return shutil.which("postfix") or shutil.which("postfix", path="/usr/sbin:/usr/local/sbin")


@dataclass
class Delivery:
    """One `status=` line of the log: what became of a message for one recipient."""
    queue_id: str
    recipient: str
    relay: str
    status: str  # sent | deferred | bounced | undeliverable (a verify probe) ...
    detail: str


_DELIVERY = re.compile(r"postfix/\S+\[\d+\]: (?P<queue_id>[0-9A-F]+): to=<(?P<recipient>[^>]*)>"
                       r".*?, relay=(?P<relay>[^,]+),.*? status=(?P<status>\w+) (?P<detail>.*)$")


class PostfixServer:
    """One private Postfix instance whose files all live under `root`."""

    host = "127.0.0.1"

    def __init__(self, root: str | os.PathLike, deployment: Deployment, relay_port: int,
                 extra_main: str = "", extra_files: dict[str, str] | None = None,
                 start_timeout: float = 20.0):
        self.root = Path(root).resolve()
        self.deployment = deployment
        self.relay_port = relay_port
        self.extra_main = extra_main
        self.extra_files = dict(extra_files or {})
        self.start_timeout = start_timeout
        self.port = free_port()
        self.config_directory = self.root / "etc"
        self.log_path = self.root / "postfix.log"
        self._pgid: int | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        if postfix_binary() is None:
            raise PostfixError(f"the postfix binary is not installed: {INSTALL_HINT}")
        if os.geteuid() != 0:
            raise PostfixError("the Postfix test instance must be started as root")
        self._write_files()
        self._run(postfix_binary(), "-c", str(self.config_directory), "start")
        self._pgid = int((self.root / "spool/pid/master.pid").read_text().split()[0])
        deadline = time.monotonic() + self.start_timeout
        while not _port_open(self.host, self.port):
            if time.monotonic() > deadline:
                self.kill()
                raise PostfixError(f"postfix did not listen on {self.host}:{self.port} within "
                                   f"{self.start_timeout}s; log tail:\n{self.log_tail()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the master and all its children (the queue stays as it is on disk)."""
        if self._pgid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._pgid, signal.SIGKILL)
            self._reap(10.0)

    # -- the queue --------------------------------------------------------------
    def flush(self) -> None:
        """`postqueue -f`: deliver every queued message now (dead destinations too)."""
        self._run("postqueue", "-c", str(self.config_directory), "-f")

    def queue(self) -> list[dict]:
        """`postqueue -j`: one dict per queued message (queue_name, queue_id, recipients)."""
        out = self._run("postqueue", "-c", str(self.config_directory), "-j")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait_until_empty(self, timeout: float = 10.0) -> None:
        """Until the queue is empty (a message's file goes just after its last delivery)."""
        self.wait(lambda: self.queue() == [], timeout, "empty queue")

    # -- the log --------------------------------------------------------------
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "".join(self.log().splitlines(keepends=True)[-lines:]) or "(postfix wrote no log)"

    def queue_id(self, message_id: str, timeout: float = 10.0) -> str:
        """The queue id cleanup gave the message with this Message-ID (its latest: a
        message refused at the end of DATA had one too)."""
        pattern = re.compile(rf"postfix/cleanup\[\d+\]: ([0-9A-F]+): "
                             rf"message-id={re.escape(message_id)}$", re.MULTILINE)
        return self.wait(lambda: (ids := pattern.findall(self.log())) and ids[-1],
                         timeout, f"a queue id for {message_id}")

    def deliveries(self, queue_id: str) -> list[Delivery]:
        return [Delivery(**m.groupdict()) for line in self.log().splitlines()
                if (m := _DELIVERY.search(line)) and m["queue_id"] == queue_id]

    def delivered(self, queue_id: str, status: str, count: int = 1,
                  timeout: float = 20.0) -> list[Delivery]:
        """Wait until `count` recipients of `queue_id` have `status`; those deliveries."""
        def found():
            done = [d for d in self.deliveries(queue_id) if d.status == status]
            return done if len(done) >= count else None
        return self.wait(found, timeout, f"{count} {status} line(s) for {queue_id}")

    def wait(self, probe: Callable[[], object], timeout: float, what: str):
        """Poll `probe` until it returns something true; that value."""
        deadline = time.monotonic() + timeout
        while not (value := probe()):
            if time.monotonic() > deadline:
                raise AssertionError(f"postfix: no {what} within {timeout}s; log tail:\n"
                                     f"{self.log_tail()}")
            time.sleep(0.05)
        return value

    # -- internals ------------------------------------------------------------
    def _write_files(self) -> None:
        etc, data = self.config_directory, self.root / "data"
        for folder in (etc, self.root / "spool", data):
            folder.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        shutil.chown(data, "postfix", "postfix")
        (etc / "main.cf").write_text(
            PRIVATE_MAIN.format(root=self.root, hostname=HOSTNAME, relay_port=self.relay_port)
            + "\n# the deployment's lines\n" + self.deployment.main + self.extra_main)
        (etc / "master.cf").write_text(PRIVATE_MASTER.format(host=self.host, port=self.port)
                                       + self.deployment.master)
        (etc / "transport").write_text(self.deployment.transport)
        for name, text in self.extra_files.items():
            (etc / name).write_text(text)
        # Postfix's programs wait (up to seconds) for a main.cf modified in this very second
        past = time.time() - 10
        for path in etc.iterdir():
            os.utime(path, (past, past))
        self._run("postmap", "-c", str(etc), f"hash:{etc}/transport")

    def _run(self, *argv: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise PostfixError(f"{' '.join(argv)} exited with {done.returncode}: "
                               f"{done.stderr.strip()}; log tail:\n{self.log_tail()}")
        return done.stdout

    def _reap(self, timeout: float) -> None:
        """Wait until no process of the instance is left and its port is closed;
        SIGKILL what is still there after `timeout` seconds."""
        pgid, self._pgid = self._pgid, None
        deadline = time.monotonic() + timeout
        while live_processes(pgid) or _port_open(self.host, self.port):
            if time.monotonic() > deadline + 5:
                raise PostfixError(f"postfix (process group {pgid}) or port {self.port} "
                                   f"still alive {timeout + 5}s after it was stopped")
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.02)


# -- `mailgate` as the pipe's user runs it --------------------------------------

def pipe_command(folder: Path, user: str = PIPE_USER) -> str:
    """A `mailgate` command that `user` can run. The venv's own when that user can
    run its interpreter; else (a venv whose interpreter lives under /root, as on our
    machines) the same entry point on the system's Python of the same version,
    in a small venv in `folder` that reads the venv's packages."""
    venv_mailgate = Path(sys.prefix) / "bin" / "mailgate"
    if _can_run(user, sys.executable):
        return str(venv_mailgate)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(version, path="/usr/bin:/usr/local/bin")
    if system_python is None:
        raise PostfixError(f"{user} cannot run {sys.executable}, and there is no system "
                           f"{version} to run mailgate as {user} for the pipe transport")
    shim = folder / "pipe-venv"
    subprocess.run([system_python, "-m", "venv", "--without-pip", str(shim)], check=True)
    packages = sysconfig.get_paths()["purelib"]
    site = Path(sysconfig.get_paths(vars={"base": str(shim)})["purelib"])
    (site / "mailgate-venv.pth").write_text(f"import site; site.addsitedir({packages!r})\n")
    entry = venv_mailgate.read_text().split("\n", 1)[1]
    (shim / "bin" / "mailgate").write_text(f"#!{shim}/bin/python\n{entry}")
    (shim / "bin" / "mailgate").chmod(0o755)
    return str(shim / "bin" / "mailgate")


def _can_run(user: str, program: str) -> bool:
    try:
        return subprocess.run([program, "-c", ""], user=user, cwd="/",
                              capture_output=True).returncode == 0
    except PermissionError:  # a folder on the way is closed to `user`
        return False


@dataclass
class PostfixFactory:
    """Starts instances for one test, each in a fresh folder under /tmp that its
    users can reach (pytest's tmp_path is not: pytest keeps its folders at mode
    0700); `close` kills them all and removes their folders."""
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self, deployment: Deployment, relay_port: int, **options) -> PostfixServer:
        """A started instance (options as for PostfixServer)."""
        folder = Path(tempfile.mkdtemp(prefix="mailgate-postfix-"))
        self.stack.callback(shutil.rmtree, folder, ignore_errors=True)
        server = PostfixServer(folder, deployment, relay_port, **options)
        self.stack.callback(server.kill)
        try:
            server.start()
        except PostfixError as error:
            pytest.fail(str(error), pytrace=False)
        return server

    def close(self) -> None:
        self.stack.close()


@pytest.fixture
def postfix() -> Iterator[PostfixFactory]:
    """Private Postfix instances for one test. Fails (never skips) without Postfix."""
    if postfix_binary() is None:
        pytest.fail(f"Postfix is required for this test: {INSTALL_HINT}", pytrace=False)
    factory = PostfixFactory()
    try:
        yield factory
    finally:
        factory.close()
