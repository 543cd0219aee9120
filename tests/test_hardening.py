"""Smaller holes, each closed with a test: terminal controls in what admins are shown,
private file modes, SMTP recipient and address limits, over-long HTTP requests, a
configuration key that did nothing, and the systemd unit's sandbox."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import smtplib
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailgate.config import ConfigError, load_settings
from mailgate.db import Database
from mailgate.gateway import Gateway
from mailgate.models import Inbound, Ticket
from mailgate.tickets import ticket_by_number
from tests.mails import make_mail
from tests.servers.daemon import DaemonThread
from tests.test_cli import mailgate  # noqa: F401  (fixture)
from tests.test_smtp import daemon_settings, running, tickets  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent

# ESC ]0; sets the window title, ESC [2J clears the screen, OSC 52 writes the
# clipboard; U+009B and U+009D are the one-character C1 forms of CSI and OSC;
# U+202E and U+2067 reorder what follows (a file name "…exe" shown as "…gnp").
HOSTILE = ("Invoice \x1b]0;owned\x07 \x1b[2J\x1b[H \x1b]52;c;cm0gLXJmIH4K\x07 \x9b31m "
           "\x9d0;title\x9c \u202egnp.exe\u202c \u2067x\u2069 \x7f\r done")
TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_printable(ran) -> str:
    text = ran.stdout.decode("utf-8")  # strict: no raw 8-bit byte either
    assert not TERMINAL_CONTROLS.search(text), repr(text)
    assert not TERMINAL_CONTROLS.search(ran.stderr.decode("utf-8")), repr(ran.stderr)
    return text


# -- terminal controls in CLI output ----------------------------------------------

def test_cli_output_carries_no_terminal_controls(mailgate, db_url):
    mailgate("department", "add", "support")
    mailgate("address", "add", "support@example.com", "--department", "support")
    in_mail = HOSTILE.replace("\r", "")  # a header cannot hold CR; the database can
    out = json.loads(mailgate("ingest", "--json", stdin=make_mail(
        subject=in_mail, body=f"Hello\n{in_mail}\n\tindented line\n")).text)
    number, inbound_id = out[0]["ticket"], out[0]["inbound_id"]
    # whatever the parser keeps today, the printing side must not trust the database
    database = Database(db_url)
    try:
        with database.unit_of_work() as session:
            ticket_by_number(session, number).subject = HOSTILE
            session.execute(update(Inbound).where(Inbound.id == inbound_id)
                            .values(trace=[f"subject {HOSTILE}"]))
    finally:
        database.dispose()

    shown = assert_printable(mailgate("ticket", "show", number))
    assert "Invoice ]0;owned [2J[H ]52;c;cm0gLXJmIH4K 31m 0;title gnp.exe x  done" in shown
    assert "\tindented line" in shown  # tab and newline are kept
    assert "Invoice" in assert_printable(mailgate("ticket", "list"))
    assert "Invoice" in assert_printable(mailgate("message", "explain", str(inbound_id)))
    # JSON keeps the value exactly: what a terminal would obey is written as \u escapes
    as_json = mailgate("ticket", "show", number, "--json")
    assert_printable(as_json)
    assert json.loads(as_json.text)["subject"] == HOSTILE
    assert json.loads(assert_printable(mailgate("ticket", "list", "--json")))[0]["subject"] \
        == HOSTILE


def _quarantine_hostile(mailgate) -> tuple[int, bytes]:
    mailgate("department", "add", "support")
    # raw header bytes, as a hostile client sends them: ESC sequences and an 8-bit
    # C1 CSI (0x9b) that no decoder turns into text
    raw = (b"From: Mallory <m@example.org>\r\nTo: nobody@example.com\r\n"
           b"Subject: Hi \x1b]0;owned\x07\x1b[2J \x9b31m \xe2\x80\xae evil\r\n"
           b"Message-ID: <hostile-1@example.org>\r\n\r\nbody \x1b[31m\r\n")
    out = json.loads(mailgate("ingest", "--json", stdin=raw).text)
    assert out[0]["outcome"] == "quarantined"
    return out[0]["quarantine_id"], raw


def test_quarantine_show_carries_no_terminal_controls(mailgate):
    entry, raw = _quarantine_hostile(mailgate)
    shown = assert_printable(mailgate("quarantine", "show", str(entry)))
    assert "Subject: Hi ]0;owned[2J \ufffd31m" in shown
    assert_printable(mailgate("quarantine", "list"))
    # redirected, --raw stays byte for byte (an admin saves the message with it)
    assert show_raw(mailgate, entry, subprocess.PIPE).communicate(timeout=60)[0] == raw


def show_raw(mailgate, entry: int, stdout) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mailgate", "--config", str(mailgate.config),
                             "quarantine", "show", str(entry), "--raw"],
                            stdout=stdout, stderr=subprocess.PIPE,
                            env={**os.environ, "MAILGATE_CONFIG": ""})


def test_quarantine_show_raw_on_a_terminal_carries_no_terminal_controls(mailgate):
    import pty

    entry, _ = _quarantine_hostile(mailgate)
    primary, secondary = pty.openpty()
    proc = show_raw(mailgate, entry, secondary)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert proc.wait(60) == 0, proc.stderr.read()
    text = shown.decode("utf-8")
    assert "Subject: Hi ]0;owned[2J" in text
    assert not TERMINAL_CONTROLS.search(text.replace("\r\n", "\n")), repr(text)


# -- file modes ------------------------------------------------------------------

def test_sqlite_file_is_private_whatever_the_umask(tmp_path):
    folder = tmp_path / "state"
    old = os.umask(0)
    try:
        database = Database(f"sqlite:///{folder / 'mailgate.db'}")
        database.ensure_schema()
        with database.unit_of_work() as session:  # writes: the -wal and -shm files exist
            session.execute(select(Ticket)).all()
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
        database.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes["mailgate.db"] == 0o600
    assert set(modes.values()) == {0o600}, modes  # -wal and -shm take the file's mode


def test_an_existing_sqlite_file_keeps_its_mode(tmp_path):
    path = tmp_path / "mailgate.db"
    path.touch()
    path.chmod(0o640)  # an admin's choice, e.g. for a backup group
    database = Database(f"sqlite:///{path}")
    database.ensure_schema()
    database.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# -- SMTP ------------------------------------------------------------------------

def test_recipient_limit_defaults_to_100_and_answers_452(running, gw):
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
        client.ehlo("client.example.org")
        assert client.mail("customer@example.org")[0] == 250
        codes = [client.rcpt(f"support+r{i}@example.com")[0] for i in range(100)]
        assert codes == [250] * 100
        assert client.rcpt("support@example.com") == (452, b"4.5.3 Too many recipients")
        assert client.data(make_mail())[0] == 250  # the first 100 are delivered
        # a new transaction counts afresh
        assert client.mail("customer@example.org")[0] == 250
        assert client.rcpt("support@example.com")[0] == 250
        client.rset()
    with gw.db.unit_of_work() as session:
        assert len(session.scalar(select(Inbound.envelope_to))) == 100


def test_recipient_limit_is_configurable_and_holds_for_lmtp(daemon_settings, parser_pool,
                                                             departments, tmp_path):
    config = tmp_path / "limit.toml"
    config.write_text("[smtp]\nmax_recipients = 2\n")
    assert load_settings(config, env={}).smtp.max_recipients == 2
    settings = daemon_settings.replace(smtp={"max_recipients": 2})
    with DaemonThread(settings, Gateway(settings, parser=parser_pool)) as daemon:
        for kind, client in (("smtp", smtplib.SMTP), ("lmtp", smtplib.LMTP)):
            with client("127.0.0.1", daemon.port(kind), timeout=30) as session:
                session.ehlo("mx.example.org")
                assert session.mail("customer@example.org")[0] == 250
                assert [session.rcpt(a)[0] for a in ("support@example.com",
                                                     "billing@example.com",
                                                     "help@example.com")] == [250, 250, 452]
                session.rset()
        metrics = daemon.daemon.metrics.render().decode()
        assert 'mailgate_smtp_rejected_total{reason="too many recipients"} 2.0' in metrics


def _smtp_lines(sock: socket.socket, *commands: bytes) -> list[bytes]:
    """Send each command, return each reply (the last line of a multi-line one)."""
    reader = sock.makefile("rb")
    replies = [reader.readline()]  # greeting
    for command in commands:
        sock.sendall(command + b"\r\n")
        line = reader.readline()
        while line[3:4] == b"-":
            line = reader.readline()
        replies.append(line.rstrip(b"\r\n"))
    return replies


def test_address_that_is_not_utf8_gets_501_without_a_traceback(running, gw, caplog):
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", running.port()), timeout=30) as sock:
        replies = _smtp_lines(sock, b"EHLO client.example.org",
                              b"MAIL FROM:<bad\xff\xfe@example.org>",
                              b"MAIL FROM:<customer@example.org>",
                              b"RCPT TO:<support\xc3\x28@example.com>",
                              b"RCPT TO:<\xed\xa0\x80@example.com>",
                              b"RCPT TO:<support@example.com>", b"QUIT")
    assert replies[2].startswith(b"501 5.1.7 "), replies
    assert replies[3].startswith(b"250"), replies
    assert replies[4].startswith(b"501 5.1.3 "), replies
    assert replies[5].startswith(b"501 5.1.3 "), replies
    assert replies[6].startswith(b"250"), replies  # the session goes on
    assert not [r for r in caplog.records if r.exc_info], \
        [r.getMessage() for r in caplog.records if r.exc_info]
    assert tickets(gw) == 0


def test_routed_address_cache_is_bounded_least_recently_used_first(running):
    from mailgate.inbound.smtp import ROUTED_CACHE_SIZE, RoutedCache

    handler = running.daemon.listeners.smtp_handler
    assert handler.routed.size == ROUTED_CACHE_SIZE <= 100_000
    handler.routed = RoutedCache(size=3)
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
        client.ehlo("client.example.org")
        client.mail("customer@example.org")
        for i in range(10):  # every plus tag is another address
            assert client.rcpt(f"support+{i}@example.com")[0] == 250
        assert client.rcpt("support+7@example.com")[0] == 250  # used again: newest
        client.rset()
    assert handler.routed.addresses() == ["support+8@example.com", "support+9@example.com",
                                          "support+7@example.com"]


# -- HTTP ------------------------------------------------------------------------

def _http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("request_bytes", [
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # one line past the limit
    b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000)
                                             for i in range(40)) + b"\r\n",  # many lines
], ids=["request-line", "headers"])
def test_overlong_http_request_gets_431_without_a_traceback(running, caplog, request_bytes):
    caplog.set_level(logging.INFO)
    port = running.port("http")
    answer = _http(port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
    assert _http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"\r\n\r\nok\n")
    assert not [r for r in caplog.records if r.exc_info], \
        [r.getMessage() for r in caplog.records if r.exc_info]


# -- configuration -----------------------------------------------------------------

def test_security_alert_agents_is_gone(tmp_path):
    """It was accepted and never used: held mail already tells the agent whose address
    it carried (the `held` notice). An unknown key is a configuration problem."""
    config = tmp_path / "mailgate.toml"
    config.write_text("[security]\nalert_agents = true\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert info.value.problems == [("security.alert_agents", "unknown key")]


# -- systemd -----------------------------------------------------------------------

def unit_settings(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_systemd_unit_bounds_and_sandboxes_the_daemon():
    unit = unit_settings(ROOT / "systemd" / "mailgate.service")
    for key in ("MemoryMax", "TasksMax", "LimitNOFILE", "PrivateDevices", "LockPersonality",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
                "MemoryDenyWriteExecute", "RestrictAddressFamilies", "SystemCallFilter",
                "SystemCallErrorNumber", "UMask"):
        assert key in unit, key
    assert "@system-service" in unit["SystemCallFilter"]
    assert unit["UMask"] == ["0077"]
    # the parser workers bound their memory with setrlimit (@resources): never filtered
    assert not any("@resources" in f for f in unit["SystemCallFilter"])


def test_systemd_analyze_security_rates_the_unit_ok():
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    proc = subprocess.run([tool, "security", "--offline=yes", "--threshold=15",
                           str(ROOT / "systemd" / "mailgate.service")],
                          capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", proc.stdout)
    assert score, proc.stdout + proc.stderr
    assert float(score.group(1)) <= 1.5, proc.stdout
