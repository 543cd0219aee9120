"""`mailgate run` as a real process: signals, shutdown, and several daemons on one PostgreSQL."""
from __future__ import annotations

import signal
import smtplib
import threading
import time

import pytest
from sqlalchemy import func, select

from mailgate.config import Settings
from mailgate.db import Database
from mailgate.models import Address, Department, Inbound, Message, Ticket
from tests.conftest import _truncate_all
from tests.mails import make_mail
from tests.servers.daemon import DaemonProcess
from tests.servers.dovecot import dovecot_server  # noqa: F401  (fixture)


def write_config(path, db_url, storage, extra: str = "") -> None:
    path.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{storage}"\n'
                    'fsync = false\n[smtp]\nlisten = ["127.0.0.1:0"]\n'
                    '[http]\nlisten = "127.0.0.1:0"\n[daemon]\nshutdown_timeout = 20\n'
                    'delivery_workers = 2\n' + extra)


def setup_support(db_url) -> Database:
    database = Database(db_url)
    database.ensure_schema()
    with database.unit_of_work() as session:
        session.add(Address(address="support@example.com",
                            department=Department(key="support", name="Support")))
    return database


def test_sigterm_during_a_burst_keeps_every_accepted_message(db_url, tmp_path):
    database = setup_support(db_url)
    config = tmp_path / "mailgate.toml"
    write_config(config, db_url, tmp_path / "var")
    daemon = DaemonProcess(config).start()
    accepted, refused, stop = [], [], threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            mid = f"<burst-{n}-{i}@client.example.org>"
            i += 1
            try:
                with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=30) as smtp:
                    smtp.sendmail("c@x.org", ["support@example.com"], make_mail(message_id=mid))
                accepted.append(mid)
            except (smtplib.SMTPException, OSError):
                refused.append(mid)  # not promised: the client keeps it and retries later
                if len(refused) > 50:
                    return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(accepted) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0
    stop.set()
    for t in threads:
        t.join(60)
    assert "stopped" in daemon.log()
    assert len(accepted) >= 40
    with database.unit_of_work() as session:
        stored = set(session.scalars(select(Inbound.message_id).where(Inbound.outcome == "new")))
        assert set(accepted) <= stored  # every 250 is a ticket
        # none half-applied: every inbound 'new' has its ticket and its message
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        messages = session.scalar(select(func.count()).select_from(Message))
        assert tickets == messages == len(stored)
    database.dispose()


def test_sighup_reloads_configuration(db_url, tmp_path):
    database = setup_support(db_url)
    config = tmp_path / "mailgate.toml"
    write_config(config, db_url, tmp_path / "var")
    daemon = DaemonProcess(config).start()
    try:
        write_config(config, db_url, tmp_path / "var", '[routing]\ncatch_all = "support"\n')
        daemon.signal(signal.SIGHUP)
        deadline = time.monotonic() + 60  # new delivery workers start: slow on a busy CI
        while "configuration reloaded" not in daemon.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "configuration reloaded" in daemon.log(), daemon.log()
        with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=30) as smtp:
            assert smtp.sendmail("c@x.org", ["anything@example.com"], make_mail()) == {}
    finally:
        daemon.stop()
        database.dispose()


def test_out_of_date_schema_refuses_to_start(tmp_path):
    from sqlalchemy import text

    db = tmp_path / "old.db"
    database = Database(f"sqlite:///{db}")
    database.upgrade()
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    database.dispose()
    config = tmp_path / "mailgate.toml"
    write_config(config, f"sqlite:///{db}", tmp_path / "var")
    daemon = DaemonProcess(config)
    with pytest.raises(RuntimeError, match="run `mailgate db upgrade`"):
        daemon.start()
    assert daemon.proc.returncode == 78


def test_two_daemons_on_one_postgresql_poll_one_account_once(pg_url, tmp_path,
                                                              dovecot_server):  # noqa: F811
    database = Database(pg_url)
    _truncate_all(database)
    database.dispose()
    database = setup_support(pg_url)
    dovecot_server.add_user("box@example.com", "pw")
    for i in range(40):
        dovecot_server.append("box@example.com", "pw",
                              make_mail(subject=f"shared {i}", message_id=f"<shared-{i}@x.org>"))
    imap = (f'[[imap]]\nname = "shared"\nhost = "127.0.0.1"\nport = {dovecot_server.port}\n'
            'security = "none"\nuser = "box@example.com"\npassword = "pw"\n'
            'department = "support"\npoll_interval = 0.5\nbatch_size = 2\n')
    daemons = []
    for n in range(2):
        config = tmp_path / f"d{n}.toml"
        write_config(config, pg_url, tmp_path / "var", imap)
        daemons.append(DaemonProcess(config).start())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with database.unit_of_work() as session:
                if session.scalar(select(func.count()).select_from(Ticket)) >= 40:
                    break
            time.sleep(0.2)
        dovecot_server.append("box@example.com", "pw", make_mail(subject="one more"))
        time.sleep(3)
    finally:
        for daemon in daemons:
            daemon.stop()
    with database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 41
        assert session.scalar(select(func.count()).select_from(Inbound)) == 41
    flags = dovecot_server.fetch_flags("box@example.com", "pw")
    assert len(flags) == 41 and all("\\Seen" in f for f in flags.values())
    assert all("started" in d.log() for d in daemons)
    database.dispose()
