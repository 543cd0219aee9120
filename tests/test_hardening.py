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
