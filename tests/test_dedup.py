"""Dedup (issue 13): the same message seen twice is one; two messages that only share a
Message-ID are two.

Mail comes in as MTAs hand it over: over SMTP to the real daemon (CRLF, with the
daemon's own Received: line), through the pipe (Postfix's pipe(8) writes LF line
ends) and again through another hop that adds its own trace headers.
"""
from __future__ import annotations

import email.utils
import hashlib
import re
import smtplib

import pytest
from sqlalchemy import func, select, update

from mailgate import tickets as ops
from mailgate.gateway import Gateway
from mailgate.models import Inbound, Ticket
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail
from tests.servers.daemon import DaemonThread

PIPE = Envelope("pipe")
DATE = email.utils.formatdate(1795000000)
HOP = (b"Received: from mx2.example.com (mx2.example.com [192.0.2.25])\r\n"
       b"\tby imap.example.com (Postfix) with LMTP id 77AB; Mon, 23 Nov 2026 08:00:03 +0000\r\n"
       b"Delivered-To: support@example.com\r\nReturn-Path: <customer@example.org>\r\n")


def mail(body: str, message_id: str = "<4711@printer.example.org>") -> bytes:
    """The printer's alert: one Message-ID, sender, subject and date, whatever it says."""
    raw = make_mail(subject="Printer alert", body=body, message_id=message_id)
    return re.sub(rb"(?m)^Date: .*\r$", b"Date: " + DATE.encode() + b"\r", raw, count=1)


def tickets(gw) -> int:
    with gw.db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(Ticket))


def events(gw, number) -> list[tuple[str, str]]:
    with gw.db.unit_of_work() as session:
        return [(e.kind, e.new_value) for e in ops.get_ticket(session, number).events]


def test_two_messages_under_one_message_id_are_both_kept(gw, departments):
    """A device that stamps every mail with one Message-ID, same sender, date and subject."""
    first = ingest(gw, mail("Toner low.\n"), PIPE)
    second = ingest(gw, mail("Paper jam in tray 2.\n"), PIPE)
    assert (first.outcome, second.outcome) == ("new", "new")
    assert second.ticket != first.ticket and tickets(gw) == 2
    assert ("duplicate_id", "<4711@printer.example.org>") in events(gw, first.ticket)
    assert any(line.startswith(f"dedup: Message-ID also on inbound #{first.inbound_id} "
                               f"(#{first.ticket}) with other content") for line in second.trace)
    # each of them, delivered again, is a duplicate of itself
    again = ingest(gw, mail("Paper jam in tray 2.\n"), PIPE)
    assert (again.outcome, again.ticket) == ("duplicate", second.ticket)
    assert [kind for kind, _ in events(gw, first.ticket)].count("duplicate_id") == 1


def test_a_message_cannot_be_suppressed_by_sending_its_message_id_first(gw, departments):
    """Someone who knows (or guesses) the Message-ID a customer's mail will carry, and
    sends their own mail under it with the customer's From, Date and Subject, no
    longer makes the customer's real mail a "duplicate" that vanishes."""
    forged = ingest(gw, mail("Please ignore my earlier mail, all is fine.\n"), PIPE)
    real = ingest(gw, mail("The printer is on fire, please come now.\n"), PIPE)
    assert real.outcome == "new" and real.ticket != forged.ticket
    with gw.db.unit_of_work() as session:
        texts = [m.text_body for m in ops.get_ticket(session, real.ticket).messages]
    assert texts == ["The printer is on fire, please come now.\n"]


def test_a_resend_through_other_hops_is_one_message(gw, departments):
    raw = mail("Toner low.\n")
    assert ingest(gw, raw, PIPE).outcome == "new"
    redeliveries = [
        HOP + raw,  # another hop's trace headers
        raw.replace(b"\r\n", b"\n"),  # a pipe: LF line ends
        (HOP + raw).replace(b"\r\n", b"\n") + b"\n",  # both, and a final newline added
        raw.rstrip(b"\r\n"),  # the final newline dropped
    ]
    for redelivered in redeliveries:
        result = ingest(gw, redelivered, PIPE)
        assert result.outcome == "duplicate", result.trace
        assert "dedup: same Message-ID and content as inbound #1 (new)" in result.trace
    assert tickets(gw) == 1


def test_one_character_more_is_another_message(gw, departments):
    raw = mail("Toner low.\n")
    ingest(gw, raw, PIPE)
    assert ingest(gw, raw.replace(b"Toner low.", b"Toner low!"), PIPE).outcome == "new"


def test_a_message_recorded_before_the_body_counted_is_still_found(gw, departments):
    """Rows written by the version before (Message-ID, From, Date and Subject only):
    an IMAP mailbox fetched again after its UIDVALIDITY changed makes no new tickets."""
    raw = mail("Toner low.\n")
    first = ingest(gw, raw, PIPE)
    old = "\0".join(["<4711@printer.example.org>", "customer@example.org", DATE, "Printer alert"])
    with gw.db.unit_of_work() as session:
        session.execute(update(Inbound).where(Inbound.id == first.inbound_id).values(
            dedup_key="m:" + hashlib.sha256(old.encode()).hexdigest()))
    assert ingest(gw, raw, Envelope("imap")).outcome == "duplicate"
    assert tickets(gw) == 1


def test_without_a_message_id_the_body_decides(gw, departments):
    raw = make_mail(body="No id here.\n").replace(b"Message-ID:", b"X-Old-ID:")
    assert ingest(gw, raw, PIPE).outcome == "new"
    assert ingest(gw, HOP + raw.replace(b"\r\n", b"\n"), PIPE).outcome == "duplicate"
    assert ingest(gw, raw.replace(b"No id here.", b"Still no id."), PIPE).outcome == "new"


@pytest.fixture
def daemon(settings, parser_pool, departments):
    configured = settings.replace(smtp={"listen": ("127.0.0.1:0",)},
                                  http={"listen": "127.0.0.1:0"}, daemon={"delivery_workers": 1})
    gateway = Gateway(configured, parser=parser_pool)
    with DaemonThread(configured, gateway) as running:
        yield running, gateway
    gateway.close()


def test_over_smtp_then_through_the_pipe_is_one_ticket(daemon):
    """The MTA delivers over SMTP, then a second route (the pipe) hands over the same
    mail with LF line ends and its own trace headers."""
    running, gw = daemon
    raw = mail("Toner low.\n")
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
        client.sendmail("customer@example.org", ["support@example.com"], raw)
        client.sendmail("customer@example.org", ["support@example.com"],
                        mail("Paper jam in tray 2.\n"))
    again = ingest(gw, (HOP + raw).replace(b"\r\n", b"\n"), PIPE)
    assert again.outcome == "duplicate"
    assert tickets(gw) == 2
