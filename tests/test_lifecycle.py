"""The daemon's life with faults injected from outside (issue 14, points 6-11): SIGTERM
under load, a delivery worker killed, quarantine on a full disk, a database stall,
IMAP backoff after progress, workers started with the daemon, log timestamps.

Real peers throughout: `mailgate run` as a process (or the Daemon in a thread),
smtplib clients and raw sockets, real signals to real processes, a TCP proxy process
that is SIGSTOP'd, a tmpfs that is full, a real Dovecot.
"""
from __future__ import annotations

import signal
import smtplib
import socket
import threading
import time

import pytest
from sqlalchemy import func, select

from mailgate.db import Database
from mailgate.gateway import Gateway
from mailgate.models import Address, Department, Inbound, Ticket
from tests.conftest import _truncate_all
from tests.mails import make_mail
from tests.servers.daemon import DaemonProcess, DaemonThread


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


def write_config(path, db_url, storage, extra: str = "", daemon: str = "") -> None:
    path.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{storage}"\n'
                    'fsync = false\n[smtp]\nlisten = ["127.0.0.1:0"]\n'
                    '[http]\nlisten = "127.0.0.1:0"\n[daemon]\ndelivery_workers = 2\n'
                    + daemon + extra)


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
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# -- 6. SIGTERM: stop listening, 421 to the next command, finish what is in flight ------

def test_sigterm_under_load_finishes_in_flight_and_refuses_every_next_command(pg, pg_url,
                                                                               tmp_path):
    """Eight clients sending over persistent connections. After SIGTERM each may get at
    most the message it had in flight answered; its next command gets 421 4.3.2; the
    daemon exits long before shutdown_timeout; every 250 is a ticket and every ticket
    had its 250 (nothing committed without its answer, so nothing comes back twice)."""
    config = tmp_path / "mailgate.toml"
    write_config(config, pg_url, tmp_path / "var", daemon="shutdown_timeout = 120\n")
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
