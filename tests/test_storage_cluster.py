"""Two `mailgate run` processes on two working directories that hold no blobs, one
PostgreSQL and one bucket (moto over HTTP on loopback): what one daemon stored,
the other sends and retries."""
from __future__ import annotations

import email
import email.message
import email.policy
import smtplib
import subprocess
import sys
import time

from sqlalchemy import select

from mailgate.db import Database
from mailgate.models import Address, Agent, Department, Outbox, Quarantine, Ticket
from tests.conftest import _truncate_all
from tests.mails import make_mail
from tests.servers.daemon import DaemonProcess
from tests.servers.s3 import free_port, moto_server  # noqa: F401

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
SECRET = "0123456789abcdef0123456789abcdef"  # the same on every host: signed ids verify anywhere


def config(tmp_path, name: str, pg_url: str, moto, bucket: str, extra: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[database]\nurl = "{pg_url}"\n'
        f'[storage]\ndir = "{tmp_path / name}"\nfsync = false\nbackend = "s3"\n'
        f'bucket = "{bucket}"\nendpoint_url = "{moto.url}"\nregion = "us-east-1"\n'
        'access_key_id = "test"\nsecret_access_key = "test"\n'
        '[smtp]\nlisten = ["127.0.0.1:0"]\n[http]\nlisten = "127.0.0.1:0"\n'
        '[daemon]\nshutdown_timeout = 20\ndelivery_workers = 1\n'
        f'[security]\nsecret = "{SECRET}"\n' + extra)
    return path


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def support_with_an_agent(pg_url: str) -> Database:
    database = Database(pg_url)
    _truncate_all(database)
    with database.unit_of_work() as session:
        support = Department(key="support", name="Support")
        session.add(Address(address="support@example.com", department=support))
        session.add(Agent(email="agent@example.com", name="Agent", departments=[support]))
    return database


def send_and_hold(daemon: DaemonProcess, database: Database) -> None:
    """Through `daemon` (whose relay is down): a message with an attachment, and one
    with too many parts for its limits; back once it has tried the outbox's mail."""
    with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=60) as client:
        client.sendmail("customer@example.org", ["support@example.com"], make_mail(
            subject="invoice", attachments=[("invoice.pdf", "application/pdf", PDF)]))
        client.sendmail("customer@example.org", ["support@example.com"], make_mail(
            subject="photos", attachments=[(f"p{i}.png", "image/png", b"\x89PNG\r\n")
                                           for i in range(5)]))

    def tried() -> bool:
        with database.unit_of_work() as session:
            rows = session.scalars(select(Outbox)).all()
            return bool(rows) and all(r.attempts and r.status == "pending" for r in rows)

    wait_for(tried, "the first daemon's failed attempts")


def notification_sent(database: Database, outbox) -> email.message.EmailMessage | None:
    """The agent notification as the file transport wrote it, once it is sent."""
    with database.unit_of_work() as session:
        row = session.scalar(select(Outbox).where(Outbox.kind == "new_ticket",
                                                  Outbox.status == "sent"))
    if row is None:
        return None
    assert row.recipients == ["agent@example.com"]
    return email.message_from_bytes((outbox / f"{row.id}.eml").read_bytes(),
                                    policy=email.policy.default)


def test_a_message_stored_by_one_daemon_is_sent_and_retried_by_another(
        tmp_path, pg_url, moto_server):  # noqa: F811
    database = support_with_an_agent(pg_url)
    bucket = moto_server.create_bucket()
    # A takes mail (its relay is down, so it sends nothing) and holds many-part mail
    a = config(tmp_path, "a", pg_url, moto_server, bucket,
               '[limits]\nmax_parts = 4\n[outbound]\ntransport = "smtp"\n'
               f'relay_host = "127.0.0.1"\nrelay_port = {free_port()}\n'
               'relay_security = "none"\nretry_base = 1\n')
    # B sends (into .eml files), with the default limits
    b = config(tmp_path, "b", pg_url, moto_server, bucket,
               '[outbound]\nretry_base = 1\nsend_interval = 0.5\n')
    daemon_a = DaemonProcess(a).start()
    try:
        send_and_hold(daemon_a, database)
    finally:
        daemon_a.stop()

    daemon_b = DaemonProcess(b).start()
    try:
        wait_for(lambda: notification_sent(database, tmp_path / "b" / "outbox"),
                 "the second daemon to send the agent notification")
        [attached] = notification_sent(database, tmp_path / "b" / "outbox").iter_attachments()
        assert (attached.get_filename(), attached.get_content()) == ("invoice.pdf", PDF)
        with database.unit_of_work() as session:
            held = session.scalar(select(Quarantine))
        assert held.error_class == "limit"
        retried = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(b),
                                  "quarantine", "retry", str(held.id)],
                                 capture_output=True, text=True, timeout=120)
        assert retried.returncode == 0, retried.stderr
        with database.unit_of_work() as session:
            assert session.get(Quarantine, held.id).resolution.startswith("retried: new")
            assert sorted(session.scalars(select(Ticket.subject))) == ["invoice", "photos"]
    finally:
        daemon_b.stop()
        database.dispose()
    for host in ("a", "b"):  # nothing of the mail on either host's disk
        assert not (tmp_path / host / "raw").exists()
        assert not (tmp_path / host / "attachments").exists()
    assert "Traceback" not in daemon_a.log() + daemon_b.log()
