"""The daemon's life with faults injected from outside (issue 14, points 6-11): SIGTERM
under load, a delivery worker killed, quarantine on a full disk, a database stall,
IMAP backoff after progress, workers started with the daemon, log timestamps.

Real peers throughout: `mailgate run` as a process (or the Daemon in a thread),
smtplib clients and raw sockets, real signals to real processes, a TCP proxy process
that is SIGSTOP'd, a tmpfs that is full, a real Dovecot.
"""
from __future__ import annotations

import errno
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from mailgate.db import Database
from mailgate.gateway import Gateway
from mailgate.models import Address, Department, Inbound, Quarantine, Ticket
from tests.conftest import ROOT, _truncate_all
from tests.mails import make_mail
from tests.servers.daemon import DaemonProcess, DaemonThread
from tests.servers.dovecot import dovecot_server  # noqa: F401  (fixture)


@pytest.fixture
def pg(pg_url):
    """The session's PostgreSQL database, emptied, with support@ routed."""
    database = Database(pg_url)
    _truncate_all(database)
    with database.unit_of_work() as session:
        session.add(Address(address="support@example.com",
                            department=Department(key="support", name="Support")))
    yield database
    database.dispose()


def write_config(path, db_url, storage, extra: str = "", workers: int = 2,
                 shutdown_timeout: float = 30, storage_extra: str = "",
                 smtp_extra: str = "") -> None:
    path.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{storage}"\n'
                    f'fsync = false\n{storage_extra}[smtp]\nlisten = ["127.0.0.1:0"]\n'
                    f'{smtp_extra}[http]\nlisten = "127.0.0.1:0"\n[daemon]\n'
                    f'delivery_workers = {workers}\nshutdown_timeout = {shutdown_timeout}\n'
                    + extra)


def count(database, model, *where) -> int:
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def wait_for(condition, seconds: float = 60.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


class Line:
    """A raw SMTP client on a socket: send a line, read one reply (multi-line aware)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        assert self.reply().startswith(b"220")

    def reply(self) -> bytes:
        lines = []
        while True:
            line = self.file.readline()
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return b"".join(lines)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> bytes:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def reply_of(error: BaseException) -> tuple[int | None, bytes]:
    """The server's reply that ended an smtplib conversation, if any."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return next(iter(error.recipients.values()))
    return getattr(error, "smtp_code", None), getattr(error, "smtp_error", b"")


def refused(port: int) -> bool:
    """True once nothing listens on the port. A connection that was still in the
    listener's backlog as it closed is reset; that is the closing itself, so look again."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False
    return False


# -- 6. SIGTERM: stop listening, 421 to the next command, finish what is in flight ------

def test_sigterm_under_load_finishes_in_flight_and_refuses_every_next_command(pg, pg_url,
                                                                               tmp_path):
    """Eight clients sending over persistent connections. After SIGTERM each may get at
    most the message it had in flight answered; its next command gets 421 4.3.2; the
    daemon exits long before shutdown_timeout; every 250 is a ticket and every ticket
    had its 250 (nothing committed without its answer, so nothing comes back twice)."""
    config = tmp_path / "mailgate.toml"
    write_config(config, pg_url, tmp_path / "var", shutdown_timeout=120)
    daemon = DaemonProcess(config).start()
    acked: dict[str, float] = {}
    endings: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=120) as smtp:
                i = 0
                while not stop.is_set():
                    mid = f"<load-{n}-{i}@client.example.org>"
                    i += 1
                    smtp.sendmail("c@x.org", ["support@example.com"],
                                  make_mail(message_id=mid, subject=f"load {n}/{i}"))
                    with lock:
                        acked[mid] = time.monotonic()
        except (smtplib.SMTPException, OSError) as error:
            with lock:
                endings.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: len(acked) >= 80, 120), daemon.log()
        sent = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(90) == 0
        seconds = time.monotonic() - sent
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        daemon.stop()
    log = daemon.log()
    assert "stopped" in log and "Traceback" not in log, log
    assert seconds < 60, f"exit took {seconds:.1f} s: it waited for shutdown_timeout"
    after = [mid for mid, when in acked.items() if when > sent]
    assert len(after) <= 8, "more than the one message in flight per session after SIGTERM"
    replies = [reply_of(e) for e in endings]
    assert len(endings) == 8 and (421, b"4.3.2 Service shutting down") in replies, endings
    assert all(reply[0] == 421 or isinstance(e, smtplib.SMTPServerDisconnected)
               for reply, e in zip(replies, endings)), endings
    with pg.unit_of_work() as session:
        committed = set(session.scalars(select(Inbound.message_id)))
    assert committed == set(acked)  # nothing lost, nothing committed without its 250


@pytest.fixture
def running(settings, parser_pool, departments):
    settings = settings.replace(smtp={"listen": ("127.0.0.1:0",)},
                                lmtp={"listen": ("127.0.0.1:0",)},
                                http={"listen": "127.0.0.1:0"},
                                daemon={"delivery_workers": 2, "shutdown_timeout": 120})
    daemon = DaemonThread(settings, Gateway(settings, parser=parser_pool)).start()
    yield daemon
    daemon.stop()


def test_stop_answers_421_to_each_session_after_the_message_in_flight(running, gw):
    """Three sessions when the daemon is told to stop: one in the middle of sending a
    message, one idle after MAIL/RCPT, one idle after EHLO that never speaks again."""
    port = running.port()
    sending, waiting, silent = Line(port), Line(port), Line(port)
    for client in (sending, waiting, silent):
        assert client.command("EHLO client.example.org").startswith(b"250")
    for client in (sending, waiting):
        assert client.command("MAIL FROM:<c@x.org>").startswith(b"250")
        assert client.command("RCPT TO:<support@example.com>").startswith(b"250")
    assert sending.command("DATA").startswith(b"354")
    raw = make_mail(message_id="<in-flight@client.example.org>")  # CRLF, no leading dots
    half = len(raw) // 2
    sending.send(raw[:half])

    running.daemon._loop.call_soon_threadsafe(running.daemon.request_stop)
    assert wait_for(lambda: refused(port), 30)  # no longer listening
    # a new transaction step on an open session is refused ...
    assert waiting.command("DATA").startswith(b"421 4.3.2")
    assert waiting.file.read() == b""  # ... and the connection closed
    # ... while the message being sent is finished, committed and acknowledged
    sending.send(raw[half:] + b".\r\n")
    assert sending.reply().startswith(b"250 2.0.0 OK: new")
    assert sending.command("MAIL FROM:<c@x.org>").startswith(b"421 4.3.2")
    # the silent session is told, unasked, once the rest is done
    assert silent.file.readline().startswith(b"421 4.3.2")
    running._thread.join(60)
    assert not running._thread.is_alive()
    for client in (sending, waiting, silent):
        client.close()
    with gw.db.unit_of_work() as session:
        assert session.scalars(select(Inbound.message_id)).all() == \
            ["<in-flight@client.example.org>"]
    assert count(gw.db, Ticket) == 1


# -- helpers: the processes of a daemon -------------------------------------------------

def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


def cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def fork_server(daemon: DaemonProcess) -> int:
    servers = [p for p in children(daemon.proc.pid) if "forkserver" in cmdline(p)]
    assert len(servers) == 1, [cmdline(p) for p in children(daemon.proc.pid)]
    return servers[0]


def delivery_workers(daemon: DaemonProcess) -> list[int]:
    """The worker processes: children of the daemon's multiprocessing fork server."""
    return sorted(children(fork_server(daemon)))


def alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# -- 7. a delivery worker killed: a temporary fault, not a quarantined message -----------

def test_a_worker_killed_while_holding_a_healthy_message_does_not_quarantine_it(pg, pg_url,
                                                                                tmp_path):
    """One worker, stopped (SIGSTOP) so that the message waits in its pipe, then killed
    (SIGKILL, as the OOM killer does): the message runs again in a fresh worker and
    becomes a ticket; the client gets its 250 for a ticket, not for a quarantine."""
    config = tmp_path / "mailgate.toml"
    write_config(config, pg_url, tmp_path / "var", workers=1)
    daemon = DaemonProcess(config).start()
    try:
        assert wait_for(lambda: len(delivery_workers(daemon)) == 1, 30)
        [worker] = delivery_workers(daemon)
        os.kill(worker, signal.SIGSTOP)
        client = Line(daemon.ports["smtp"])
        client.command("EHLO client.example.org")
        assert client.command("MAIL FROM:<c@x.org>").startswith(b"250")
        assert client.command("RCPT TO:<support@example.com>").startswith(b"250")
        assert client.command("DATA").startswith(b"354")
        client.send(make_mail(message_id="<healthy@client.example.org>") + b".\r\n")
        time.sleep(1)  # the message reaches the stopped worker (either way, it is retried)
        os.kill(worker, signal.SIGKILL)
        reply = client.reply()
        assert reply.startswith(b"250 2.0.0 OK: new #"), reply
        client.close()
        assert not alive(worker) and len(delivery_workers(daemon)) == 1
    finally:
        daemon.stop()
    assert count(pg, Ticket) == 1 and count(pg, Quarantine) == 0
    log = daemon.log()
    assert "trying it once more in a fresh worker" in log and "killed by SIGKILL" in log, log


class MemoryCgroup:
    """A memory cgroup (v1 or v2) below ours, whose limit the kernel's OOM killer enforces."""

    def __init__(self, name: str):
        v2 = next((line[3:] for line in open("/proc/self/cgroup").read().splitlines()
                   if line.startswith("0::")), None)
        v1 = next((line.split(":", 2)[2] for line in open("/proc/self/cgroup").read()
                   .splitlines() if line.split(":")[1] == "memory"), None)
        if v1 is not None and os.path.isdir("/sys/fs/cgroup/memory"):
            self.path = f"/sys/fs/cgroup/memory{v1.rstrip('/')}/{name}"
            self.limit_file, self.usage_file = "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            self.path = f"/sys/fs/cgroup{(v2 or '/').rstrip('/')}/{name}"
            self.limit_file, self.usage_file = "memory.max", "memory.current"
        try:
            os.mkdir(self.path)
        except OSError as error:
            pytest.fail(f"cannot make a memory cgroup (run the tests as root): {error}",
                        pytrace=False)

    def add(self, pid: int) -> None:
        with open(f"{self.path}/cgroup.procs", "w") as fh:
            fh.write(str(pid))

    def usage(self) -> int:
        return int(open(f"{self.path}/{self.usage_file}").read())

    def limit(self, size: int) -> None:
        with open(f"{self.path}/{self.limit_file}", "w") as fh:
            fh.write(str(size))

    def remove(self) -> None:
        wait_for(lambda: not open(f"{self.path}/cgroup.procs").read().strip(), 30)
        os.rmdir(self.path)


def test_a_message_that_gets_two_workers_oom_killed_is_quarantined(pg, pg_url, tmp_path):
    """The delivery workers in a memory cgroup, as under systemd's MemoryMax: a message
    far too large for what is left gets its worker killed by the kernel's OOM killer,
    then the fresh worker it is retried in; only then is it quarantined (and kept).
    A healthy message afterwards becomes a ticket in a third worker."""
    config = tmp_path / "mailgate.toml"
    write_config(config, pg_url, tmp_path / "var", '[limits]\nmax_message_size = 134217728\n',
                 workers=1, smtp_extra="max_message_size = 134217728\n")
    daemon = DaemonProcess(config).start()
    cgroup = MemoryCgroup(f"mailgate-test-{os.getpid()}")
    try:
        assert wait_for(lambda: len(delivery_workers(daemon)) == 1, 30)
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=120) as smtp:
            smtp.sendmail("c@x.org", ["support@example.com"], make_mail())  # warm
        cgroup.add(fork_server(daemon))  # workers forked from now on start in it
        cgroup.add(delivery_workers(daemon)[0])
        cgroup.limit(cgroup.usage() + 100 * 1024 * 1024)
        bomb = make_mail(message_id="<bomb@client.example.org>",
                         attachments=[("big.pdf", "application/pdf",
                                       b"%PDF-1.4\n" + os.urandom(60 * 1024 * 1024))])
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=300) as smtp:
            smtp.ehlo()
            smtp.mail("c@x.org")
            smtp.rcpt("support@example.com")
            code, reply = smtp.data(bomb)
            assert (code, reply[:22]) == (250, b"2.0.0 OK: quarantined "), reply
            assert smtp.sendmail("c@x.org", ["support@example.com"],
                                 make_mail(message_id="<after@client.example.org>")) == {}
    finally:
        daemon.stop()
        cgroup.remove()
    with pg.unit_of_work() as session:
        [entry] = session.scalars(select(Quarantine)).all()
        assert entry.error_class == "limit"
        assert "killed by SIGKILL" in entry.error and "second worker" in entry.error
        outcomes = dict(session.execute(select(Inbound.message_id, Inbound.outcome)).all())
    assert outcomes.get("<after@client.example.org>") == "new"
    log = daemon.log()
    assert log.count("trying it once more in a fresh worker") == 1, log


# -- 8. quarantine on a full disk: a temporary failure, the worker lives -----------------

@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MiB tmpfs, and a way to fill it up (ENOSPC) and to free it again."""
    folder = tmp_path / "disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(folder)],
                   check=True)
    filler = folder / "filler"

    def fill() -> None:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError as error:
            assert error.errno == errno.ENOSPC
        finally:
            os.close(fd)

    yield folder, fill, filler.unlink
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_quarantine_on_a_full_disk_answers_451_once_per_message(pg, pg_url, tmp_path,
                                                                tiny_disk):
    """keep_raw = false, the storage disk full, a message over a limit: quarantine cannot
    keep it, so the sender is told 451 and retries; the worker is not killed, and each
    attempt is logged once. With space again the retry is quarantined."""
    disk, fill, free = tiny_disk
    config = tmp_path / "mailgate.toml"
    write_config(config, pg_url, disk / "var", '[limits]\nmax_message_size = 20000\n',
                 workers=1, storage_extra="keep_raw = false\n")
    daemon = DaemonProcess(config).start()
    over = make_mail(message_id="<over@client.example.org>", body=("y" * 70 + "\n") * 700)
    try:
        assert wait_for(lambda: len(delivery_workers(daemon)) == 1, 30)
        [worker] = delivery_workers(daemon)
        fill()
        for _ in range(3):
            with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=60) as smtp:
                with pytest.raises(smtplib.SMTPDataError) as info:
                    smtp.sendmail("c@x.org", ["support@example.com"], over)
                assert info.value.smtp_code == 451
        assert delivery_workers(daemon) == [worker]  # the same worker, alive
        free()
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=60) as smtp:
            smtp.ehlo()
            smtp.mail("c@x.org")
            smtp.rcpt("support@example.com")
            code, reply = smtp.data(over)
        assert (code, reply[:21]) == (250, b"2.0.0 OK: quarantined"), reply
    finally:
        daemon.stop()
    log = daemon.log()
    failures = [line for line in log.splitlines() if "temporary failure" in line]
    assert len(failures) == 3 and all("quarantine: storage" in f and "No space left" in f
                                      for f in failures), log
    assert "died" not in log and "Traceback" not in log, log
    assert count(pg, Quarantine) == 1 and count(pg, Ticket) == 0


# -- 9. a database stall: /healthz answers 503 in time, RCPT 451 --------------------------

PROXY = """
import sys, time
from tests.servers.tcpproxy import TcpProxy
proxy = TcpProxy("127.0.0.1", int(sys.argv[1]))
print(proxy.port, flush=True)
time.sleep(3600)
"""


@pytest.fixture
def stallable(pg_url):
    """The PostgreSQL URL through a TCP proxy in a process of its own, and that process:
    SIGSTOP stalls every connection (open ones hang, new ones are never answered)."""
    real = make_url(pg_url)
    proxy = subprocess.Popen([sys.executable, "-c", PROXY, str(real.port)],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    port = int(proxy.stdout.readline())
    yield real.set(port=port).render_as_string(hide_password=False), proxy
    proxy.send_signal(signal.SIGCONT)
    proxy.kill()
    proxy.wait()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_database_stall_health_503_and_rcpt_451_in_time(pg, tmp_path, stallable):
    url, proxy = stallable
    database = Database(url)
    with database.engine.connect() as conn:  # the bound the server enforces
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "30s"
    database.dispose()
    config = tmp_path / "mailgate.toml"
    write_config(config, url, tmp_path / "var", workers=1)
    daemon = DaemonProcess(config).start()
    health = f"http://127.0.0.1:{daemon.ports['http']}/healthz"
    try:
        assert get(health) == (200, b"ok\n")
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=60) as smtp:
            assert smtp.sendmail("c@x.org", ["support@example.com"], make_mail()) == {}
        proxy.send_signal(signal.SIGSTOP)
        answers, took = [], []

        def probe() -> None:
            started = time.monotonic()
            answers.append(get(health))
            took.append(time.monotonic() - started)

        probes = [threading.Thread(target=probe) for _ in range(12)]
        for t in probes:
            t.start()
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=60) as smtp:
            smtp.ehlo()
            assert smtp.mail("c@x.org")[0] == 250
            code, reply = smtp.rcpt("support+stall@example.com")  # not cached: asks the database
            assert (code, reply[:5]) == (451, b"4.3.0"), reply
        for t in probes:
            t.join(60)
        assert answers == [(503, b"database unreachable\n")] * 12
        assert max(took) < 20, took  # HEALTH_TIMEOUT is 2 s; before, they hung for the stall
        proxy.send_signal(signal.SIGCONT)
        assert wait_for(lambda: get(health)[0] == 200, 60)
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=60) as smtp:
            assert smtp.sendmail("c@x.org", ["support+stall@example.com"], make_mail()) == {}
    finally:
        proxy.send_signal(signal.SIGCONT)
        daemon.stop()
    assert count(pg, Ticket) == 2


# -- 10. IMAP: the backoff starts again after a pass that made progress ------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_imap_backoff_resets_after_a_pass_that_made_progress(gw, departments,
                                                             dovecot_server):  # noqa: F811
    """Dovecot killed after every fifth message, four times: each failure follows
    progress, so each wait is 2 s (before: 2, 4, 8, 16 s). Failures without progress
    still double. Nothing lost, nothing twice."""
    from mailgate.config import ImapAccount
    from mailgate.inbound.imap import MailboxPoller
    from mailgate.inbound.intake import Intake
    from mailgate.metrics import Metrics

    imap = dovecot_server
    imap.add_user("box@example.com", "pw")
    for i in range(22):
        imap.append("box@example.com", "pw", make_mail(subject=f"backlog {i}",
                                                       message_id=f"<backlog-{i}@x.org>"))
    real = Intake(gw, Metrics())
    handled = []

    def dying(raw, envelope, label):
        result = real(raw, envelope, label)
        handled.append(label)
        if len(handled) in (5, 10, 15, 20):
            imap.kill()  # after the commit, before the flag: refetched as a duplicate
        return result

    clock = Clock()
    account = ImapAccount(name="box", host=imap.host, port=imap.port, security="none",
                          user="box@example.com", password="pw", department="support",
                          idle=False, batch_size=4, timeout=10)
    poller = MailboxPoller(account, dying, gw.db, clock=clock)
    waits = []
    for _ in range(4):
        poller.poll()
        waits.append(poller.next_attempt - clock.now)
        if len(waits) == 2:  # once while still down: no progress, so the wait doubles
            clock.now = poller.next_attempt
            assert poller.poll() == 0
            waits.append(poller.next_attempt - clock.now)
        imap.start()
        clock.now = poller.next_attempt
    assert waits == [2.0, 2.0, 4.0, 2.0, 2.0]
    poller.poll()
    assert poller.failures == 0
    poller.close()
    assert count(gw.db, Ticket) == 22
    assert count(gw.db, Inbound, Inbound.outcome == "new") == 22
    assert count(gw.db, Inbound, Inbound.outcome == "duplicate") == 4


# -- 11. delivery workers start with the daemon; log lines carry the time ----------------

def test_workers_run_before_the_first_message_and_text_logs_are_timed(pg, pg_url, tmp_path):
    config = tmp_path / "mailgate.toml"
    write_config(config, pg_url, tmp_path / "var", workers=3)
    daemon = DaemonProcess(config).start()
    try:
        assert len(delivery_workers(daemon)) == 3  # at "started", no message yet
    finally:
        daemon.stop()
    started = next(line for line in daemon.log().splitlines() if " started " in line)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO mailgate\.daemon: started ",
                    started), started


def test_no_timestamps_when_stderr_is_the_journal(pg, pg_url, tmp_path):
    """systemd sets JOURNAL_STREAM to the device and inode of the stream it connected;
    journald adds the time itself. Here the daemon's stderr is the log file."""
    config = tmp_path / "mailgate.toml"
    write_config(config, pg_url, tmp_path / "var", workers=1)
    daemon = DaemonProcess(config)
    open(daemon.log_path, "wb").close()  # the same inode once start() opens it again
    status = os.stat(daemon.log_path)
    daemon.env["JOURNAL_STREAM"] = f"{status.st_dev}:{status.st_ino}"
    daemon.start()
    daemon.stop()
    lines = [line for line in daemon.log().splitlines() if "mailgate.daemon" in line]
    assert lines and all(line.startswith("INFO mailgate.daemon: ") for line in lines), lines
