""""My tickets" by mail (issue 12, section 2): a customer's `#tickets` request, its
filters, its languages, and who gets what — sent as customers and attackers would,
through `ingest` (the MTA pipe) and over SMTP to the real daemon, read back from
the mail the real relay received."""
from __future__ import annotations

import datetime as dt
import smtplib

import pytest
from sqlalchemy import select, update

from mailgate import tickets as ops
from mailgate.models import Inbound, Outbox, Ticket
from mailgate.pipeline import ingest
from tests.mails import make_mail
from tests.test_agents import CUSTOMER, relay, send, strict, text_of  # noqa: F401
from tests.test_trust import (ATTACKER, MX, PIPE, clock, new_ticket, reply_to,  # noqa: F401
                              smtp_daemon, tgw)

VICTIM = CUSTOMER
OURS = (b"Received: from mail.example.org (mail.example.org [203.0.113.9]) by "
        b"mx.example.com (Postfix) with ESMTPS id 4F; Sun, 22 Nov 2026 12:00 +0000\r\n")


def lists_to(relay, address: str) -> list:
    return [r for r in relay.to(address) if "ticket" in strict(r.raw)["Subject"].lower()
            or "تیکت" in strict(r.raw)["Subject"] or "ბილეთ" in strict(r.raw)["Subject"]]


def request(gw, relay, subject="#tickets", body="Thanks\n", sender=f"Customer <{VICTIM}>",
            **headers):
    """Send a request; (its result, the text of the list mail that answered, or None)."""
    before = len(relay.received)
    result = ingest(gw, make_mail(sender=sender, subject=subject, body=body, **headers), PIPE)
    send(gw)
    answers = relay.received[before:]
    return result, answers


def three_tickets(gw, relay) -> list[str]:
    """The customer's tickets: an old closed one (billing), an open one, a new one."""
    numbers = []
    for subject in ("Invoice charged twice", "Printer on fire", "Wifi slow at night"):
        numbers.append(new_ticket(gw, relay, subject=subject)[0])
    with gw.db.unit_of_work() as session:
        old = ops.get_ticket(session, numbers[0])
        old.status, old.category = "closed", "billing"
        session.execute(update(Ticket).where(Ticket.id == old.id).values(
            created_at=dt.datetime(2026, 10, 5, 9, tzinfo=dt.timezone.utc)))
        ops.get_ticket(session, numbers[2]).status = "in_progress"
    return numbers


def inbound_row(gw, result) -> tuple[str, list[str]]:
    with gw.db.unit_of_work() as session:
        row = session.get(Inbound, result.inbound_id)
        return row.outcome, list(row.trace)


def test_a_request_opens_no_ticket_and_is_recorded(tgw, relay):
    numbers = three_tickets(tgw, relay)
    result, answers = request(tgw, relay)
    assert result.outcome == "ticket_list" and result.ticket is None
    with tgw.db.unit_of_work() as session:
        assert session.scalar(select(Ticket.id).order_by(Ticket.id.desc())) == \
            ops.get_ticket(session, numbers[-1]).id  # no ticket opened
    outcome, trace = inbound_row(tgw, result)
    assert outcome == "ticket_list"
    assert any(line.startswith("tickets: customer@example.org asks") for line in trace)
    assert [a.rcpt_tos for a in answers] == [[VICTIM]]
    mail = strict(answers[0].raw)
    assert mail["Auto-Submitted"] == "auto-replied"
    text = text_of(answers[0].raw)
    # open ones first, newest first; each with its token, department, status, dates
    order = [text.index(f"[MG#{n}]") for n in (numbers[2], numbers[1], numbers[0])]
    assert order == sorted(order)
    assert "In progress · Support" in text and "Closed · Support · billing" in text
    assert "opened Monday, 5 October 2026" in text


def test_without_proof_the_list_has_no_text_anyone_wrote(tgw, relay):
    three_tickets(tgw, relay)
    _, answers = request(tgw, relay)
    text = text_of(answers[0].raw)
    for subject in ("Invoice charged twice", "Printer on fire", "Wifi slow at night"):
        assert subject not in text and subject not in strict(answers[0].raw).get_body(
            ("html",)).get_content()
    assert "The subjects are not shown" in text


def test_answering_a_mail_we_sent_proves_and_shows_subjects(tgw, relay):
    number, _, ack = new_ticket(tgw, relay, subject="Printer on fire")
    _, answers = request(tgw, relay, subject=f"Re: {strict(ack.raw)['Subject']}",
                         body="#tickets\n\n> old text\n",
                         in_reply_to=strict(ack.raw)["Message-ID"],
                         references=strict(ack.raw)["Message-ID"])
    assert len(answers) == 1
    assert f"[MG#{number}] Printer on fire" in text_of(answers[0].raw)
    # the list itself is signed for them: answering it with #tickets proves them too
    _, unproven = request(tgw, relay)
    listed = strict(unproven[0].raw)
    assert "Printer on fire" not in text_of(unproven[0].raw)
    result, again = request(tgw, relay, subject=f"Re: {listed['Subject']}", body="#tickets\n",
                            in_reply_to=listed["Message-ID"], references=listed["Message-ID"])
    assert any("proven by signed reply" in line for line in result.trace)
    assert "Printer on fire" in text_of(again[0].raw)


def test_our_boundarys_authentication_results_prove(tgw, relay):
    new_ticket(tgw, relay, subject="Printer on fire")
    mail = make_mail(sender=f"Customer <{VICTIM}>", subject="my tickets")
    header = f"Authentication-Results: {MX}; dmarc=pass header.from=example.org\r\n".encode()
    ingest(tgw, header + OURS + mail, PIPE)  # written by our MX, above its Received:
    send(tgw)
    assert "Printer on fire" in text_of(lists_to(relay, VICTIM)[-1].raw)


@pytest.mark.parametrize("subject,shown,hidden", [
    ("#tickets open", [1, 2], [0]),
    ("#tickets closed", [0], [1, 2]),
    ("#tickets all", [0, 1, 2], []),
    ("#tickets since 2026-11-01", [1, 2], [0]),
    ("#tickets از ۱۴۰۵/۰۸/۱۰", [1, 2], [0]),  # 1405-08-10 is 2026-11-01
    ("#tickets billing", [0], [1, 2]),
    ("my tickets billing", [0], [1, 2]),  # a category they have: a filter, not text
    ("#tickets in progress", [2], [0, 1]),
    ("#tickets در حال بررسی", [2], [0, 1]),  # the Persian label of in_progress
    ("#tickets ღია 2026-11-01-დან", [1, 2], [0]),
], ids=["open", "closed", "all", "since", "since-solar-hijri", "category", "plain-category",
        "status", "status-label-fa", "ka-open-since"])
def test_each_filter(tgw, relay, subject, shown, hidden):
    numbers = three_tickets(tgw, relay)
    _, answers = request(tgw, relay, subject=subject)
    text = text_of(answers[0].raw)
    assert [i for i in range(3) if f"[MG#{numbers[i]}]" in text] == shown
    assert not any(f"[MG#{numbers[i]}]" in text for i in hidden)


def test_a_date_that_is_none_is_said(tgw, relay):
    three_tickets(tgw, relay)
    _, answers = request(tgw, relay, subject="#tickets since 2026-02-30")
    assert "Not a date: 2026-02-30" in text_of(answers[0].raw)


@pytest.mark.parametrize("subject,expected", [
    ("تیکت‌های من", ["تیکت‌های شما", "بسته‌شده", "ثبت: دوشنبه ۱۳ مهر ۱۴۰۵"]),
    ("تیکت های من باز", ["در حال بررسی", "· باز"]),  # a space for the ZWNJ
    ("ჩემი ბილეთები", ["თქვენი ბილეთები", "დახურულია",
                        "გახსნილია: ორშაბათი, 5 ოქტომბერი 2026"]),
], ids=["fa", "fa-typed-with-a-space", "ka"])
def test_in_the_customers_language_and_calendar(tgw, relay, subject, expected):
    three_tickets(tgw, relay)
    _, answers = request(tgw, relay, subject=subject)
    text = text_of(answers[0].raw)
    assert all(part in text for part in expected), text


def test_ordinary_mail_that_mentions_tickets_is_a_ticket(tgw, relay):
    three_tickets(tgw, relay)
    result, _ = request(tgw, relay, subject="My tickets are gone from the portal")
    assert result.outcome == "new"
    result, _ = request(tgw, relay, subject="Hello", body="Hi,\nmy tickets are gone\n")
    assert result.outcome == "new"


def test_someone_without_tickets_gets_an_empty_list(tgw, relay):
    _, answers = request(tgw, relay, sender="New <new@example.net>")
    assert [a.rcpt_tos for a in answers] == [["new@example.net"]]
    assert "You have no tickets" in text_of(answers[0].raw)


# -- as an attacker would --------------------------------------------------------------

def test_a_forged_from_with_reply_to_elsewhere_sends_to_from_only(tgw, relay):
    three_tickets(tgw, relay)
    _, answers = request(tgw, relay, sender=f"Victim <{VICTIM}>", reply_to=ATTACKER)
    assert [a.rcpt_tos for a in answers] == [[VICTIM]]
    assert relay.to(ATTACKER) == []
    assert "Printer on fire" not in text_of(answers[0].raw)


def test_a_copied_authentication_results_header_proves_nothing(tgw, relay):
    three_tickets(tgw, relay)
    forged = f"Authentication-Results: {MX}; dmarc=pass header.from=example.org\r\n".encode()
    upstream = b"Received: from evil (evil [198.51.100.66]) by relay.evil.example; x\r\n"
    ingest(tgw, upstream + forged + make_mail(sender=VICTIM, subject="#tickets",
                                              reply_to=ATTACKER), PIPE)
    send(tgw)
    assert relay.to(ATTACKER) == []
    assert "Printer on fire" not in text_of(lists_to(relay, VICTIM)[-1].raw)


def test_the_attackers_own_signed_id_proves_nothing_for_the_victim(tgw, relay):
    three_tickets(tgw, relay)
    _, _, attackers_ack = new_ticket(tgw, relay, sender=f"Mallory <{ATTACKER}>")
    theirs = strict(attackers_ack.raw)["Message-ID"]
    result, answers = request(tgw, relay, sender=VICTIM, in_reply_to=theirs, references=theirs)
    assert any("nothing proves the sender" in line for line in result.trace)
    assert [a.rcpt_tos for a in answers] == [[VICTIM]]
    assert "Printer on fire" not in text_of(answers[0].raw)


def test_requests_are_capped_like_every_automatic_reply(tgw, relay):
    limit = tgw.settings.outbound.ack_limit_per_hour
    results = [request(tgw, relay, sender="Someone <someone@example.net>")[0]
               for _ in range(limit + 2)]
    assert len(relay.to("someone@example.net")) == limit
    assert all(r.outcome == "ticket_list" for r in results)
    assert any("no list" in line for line in results[-1].trace)


@pytest.mark.parametrize("smtp_daemon", [()], indirect=True, ids=["untrusted-client"])
def test_over_smtp_a_forged_header_and_reply_to_get_nothing(smtp_daemon, relay):
    daemon, gw = smtp_daemon
    new_ticket(gw, relay, subject="Printer on fire")
    forged = f"Authentication-Results: {MX}; dmarc=pass header.from=example.org\r\n".encode()
    mail = forged + make_mail(sender=VICTIM, subject="#tickets", reply_to=ATTACKER)
    with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
        client.sendmail(ATTACKER, ["support@example.com"], mail)
    send(gw)
    with gw.db.unit_of_work() as session:
        rows = session.scalars(select(Outbox).where(Outbox.kind == "my_tickets")).all()
        assert [r.recipients for r in rows] == [[VICTIM]]
        assert rows[0].context["verified"] is False
        assert all(t["subject"] == "" for t in rows[0].context["tickets"])
    assert relay.to(ATTACKER) == []
