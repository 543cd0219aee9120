"""Automatic mail that people still need (issue 13): notifications that programs send
open tickets nobody answers; out-of-office replies are recorded on their ticket.

Each test sends the mail as the program (or the person's mail server) would: through
`ingest`, as the MTA pipe does, or over SMTP to the real daemon. What went out is read
from the outbox, where every outgoing mail is written in the message's transaction.
"""
from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.config import DepartmentRouting, load_settings
from mailgate.gateway import Gateway
from mailgate.models import Outbox, Ticket
from mailgate.pipeline import Envelope, ingest
from mailgate.service import Targets
from tests.conftest import CORPUS
from tests.mails import make_mail
from tests.servers.daemon import DaemonThread

PIPE = Envelope("pipe")
CUSTOMER = "customer@example.org"
ZABBIX = "Zabbix <zabbix@monitor.example.org>"


def alert(subject="Problem: Disk space is low on db-2 (free < 10%)", sender=ZABBIX,
          to="support@example.com", **headers) -> bytes:
    """A monitoring notification: a program mailing on its own (RFC 3834 §5)."""
    headers.setdefault("auto_submitted", "auto-generated")
    return make_mail(sender=sender, to=to, subject=subject,
                     body="Problem started at 03:12:44 on 2026.11.22\n"
                          "Host: db-2\nSeverity: High\nOperational data: 7.2 %\n",
                     **headers)


def jira_notification(**headers) -> bytes:
    """An ITSM tool's notification as Jira writes one."""
    return make_mail(sender="Jira <jira@itsm.example.org>",
                     subject="[JIRA] (OPS-812) VPN gateway unreachable from branch office",
                     body="Ana Smith created OPS-812: the VPN gateway is unreachable.\n",
                     auto_submitted="auto-generated", precedence="bulk",
                     x_auto_response_suppress="All", **headers)


def outbox(gw) -> list[tuple[str, list[str]]]:
    with gw.db.unit_of_work() as session:
        return [(row.kind, row.recipients) for row in
                session.scalars(select(Outbox).order_by(Outbox.id))]


def ticket(gw, number) -> dict:
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        return {"status": t.status, "requester": t.requester.email,
                "automatic": [m.automatic for m in t.messages],
                "events": [e.kind for e in t.events],
                "due": t.first_response_due is not None or t.resolution_due is not None}


def set_status(gw, number, status):
    with gw.db.unit_of_work() as session:
        ops.set_status(session, ops.get_ticket(session, number), status, "agent@example.com")


@pytest.fixture
def targets(gw):
    """Response targets, so that the deadline step has something to set."""
    gw.settings = gw.settings.replace(service={"first_response": Targets(normal=8.0),
                                               "resolution": Targets(normal=24.0)})
    return gw


# -- notifications open tickets that nobody answers ----------------------------------------

@pytest.mark.parametrize("raw", [alert(), jira_notification(),
                                 alert(auto_submitted="auto-notified"),
                                 alert(auto_submitted="auto-generated (alert)")],
                         ids=["monitoring", "itsm", "sieve-notify", "with-comment"])
def test_a_notification_opens_a_ticket_marked_automatic_and_never_acknowledged(
        gw, departments, targets, raw):
    result = ingest(gw, raw, PIPE)
    assert result.outcome == "new"
    assert any(line.startswith("guard: automatic (Auto-Submitted: auto-") for line in result.trace)
    t = ticket(gw, result.ticket)
    assert t["automatic"] == [True] and "automatic" in t["events"]
    assert t["due"]  # someone still has to act on it
    # the agents hear of it; the program that sent it hears nothing
    assert outbox(gw) == [("new_ticket", ["agent@example.com"])]
    assert "notify: automatic mail, no acknowledgement" in result.trace


def test_a_notification_with_a_refused_attachment_gets_no_rejection_notice(gw, departments):
    raw = alert(attachments=[("graph.exe", "application/octet-stream", b"MZ\x90\x00" + b"\0" * 64)])
    result = ingest(gw, raw, PIPE)
    assert result.outcome == "new"
    assert "attachment_refused" in ticket(gw, result.ticket)["events"]
    assert [kind for kind, _ in outbox(gw)] == ["new_ticket"]


def test_a_notification_threading_on_its_ticket_is_appended_quietly(gw, departments):
    first = ingest(gw, alert(message_id="<problem-4711@monitor.example.org>"), PIPE)
    set_status(gw, first.ticket, "answered")
    before = outbox(gw)
    recovery = ingest(gw, alert(subject="Resolved: Disk space is low on db-2",
                                in_reply_to="<problem-4711@monitor.example.org>"), PIPE)
    assert (recovery.outcome, recovery.ticket) == ("appended", first.ticket)
    t = ticket(gw, first.ticket)
    assert t["status"] == "answered" and t["automatic"] == [True, True]
    assert "auto_reply" not in t["events"]
    assert outbox(gw) == before


def test_a_department_may_ignore_notifications(gw, departments):
    gw.settings = gw.settings.replace(routing={
        "departments": (("support", DepartmentRouting(automatic_mail="ignore")),)})
    ignored = ingest(gw, alert(), PIPE)
    assert ignored.outcome == "ignored" and ignored.ticket is None
    assert ignored.reason == 'automatic mail: automatic_mail = "ignore" for support'
    # another department still takes them, and people's mail still opens tickets
    assert ingest(gw, alert(to="billing@example.com"), PIPE).outcome == "new"
    assert ingest(gw, make_mail(), PIPE).outcome == "new"


def test_notifications_ignored_everywhere_but_one_department(tmp_path, settings, parser_pool,
                                                             departments):
    config = tmp_path / "mailgate.toml"
    config.write_text('[routing]\nautomatic_mail = "ignore"\n'
                      '[routing.departments.billing]\nautomatic_mail = "ticket"\n')
    gw = Gateway(settings.replace(routing=load_settings(config).routing), parser=parser_pool)
    try:
        assert ingest(gw, alert(), PIPE).outcome == "ignored"
        assert ingest(gw, alert(to="billing@example.com"), PIPE).outcome == "new"
    finally:
        gw.close()


# -- out-of-office replies: an event on their ticket, nothing more -----------------------

def out_of_office(number: str, **headers) -> bytes:
    """What Exchange sends back while its user is away."""
    return make_mail(subject=f"Automatic reply: Re: [MG#{number}] Printer on fire",
                     body="I am out of the office until 1 December with no access to mail.\n",
                     auto_submitted="auto-replied", x_auto_response_suppress="All", **headers)


@pytest.mark.parametrize("status", ["answered", "resolved", "closed"])
def test_out_of_office_is_an_event_on_its_ticket_and_reopens_nothing(gw, departments, status):
    first = ingest(gw, make_mail(), PIPE)
    set_status(gw, first.ticket, status)
    before = outbox(gw)
    away = ingest(gw, out_of_office(first.ticket), PIPE)
    assert (away.outcome, away.ticket) == ("appended", first.ticket)
    t = ticket(gw, first.ticket)
    assert t["status"] == status and t["events"].count("auto_reply") == 1
    assert t["automatic"] == [False, True]
    assert outbox(gw) == before  # no agent notification, no acknowledgement


def test_out_of_office_that_names_no_ticket_opens_none(gw, departments):
    away = ingest(gw, make_mail(subject="Automatic reply: your newsletter",
                                auto_submitted="auto-replied"), PIPE)
    assert away.outcome == "ignored" and away.reason == "auto_reply does not open tickets"
    assert outbox(gw) == []


# -- bounces and read receipts keep their handling -----------------------------------------

@pytest.mark.parametrize("name", ["cpython__msg_25.txt", "ruby-mail__report_422.eml"])
def test_real_dsns_marked_auto_generated_stay_bounces(gw, departments, name):
    """Sendmail writes `Auto-Submitted: auto-generated (failure)` on its DSNs: they are
    still bounces (here about no mail of ours), never a ticket."""
    raw = (CORPUS / name).read_bytes()
    result = ingest(gw, raw, Envelope("pipe", rcpt_to=("support@example.com",)))
    assert any(line.startswith("guard: bounce") for line in result.trace)
    assert result.outcome == "ignored" and result.ticket is None


# -- over SMTP, as the monitoring host sends it -------------------------------------------

def test_a_notification_over_smtp_becomes_a_ticket(settings, parser_pool, departments):
    configured = settings.replace(smtp={"listen": ("127.0.0.1:0",)},
                                  http={"listen": "127.0.0.1:0"},
                                  daemon={"delivery_workers": 1})
    gw = Gateway(configured, parser=parser_pool)
    try:
        with DaemonThread(configured, gw) as daemon:
            with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
                client.sendmail("zabbix@monitor.example.org", ["support@example.com"], alert())
                client.sendmail("", ["support@example.com"], out_of_office("1000"))
        with gw.db.unit_of_work() as session:
            numbers = [t.number for t in session.scalars(select(Ticket))]
        assert len(numbers) == 1
        t = ticket(gw, numbers[0])
        assert t["requester"] == "zabbix@monitor.example.org" and t["automatic"] == [True]
        assert [kind for kind, _ in outbox(gw)] == ["new_ticket"]
    finally:
        gw.close()
