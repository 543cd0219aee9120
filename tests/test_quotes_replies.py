"""Customers' replies read cleanly (#12): agents are sent, and the ticket stores, what
the customer typed; the original, quotes and all, stays one command away; a reply
that only quotes is noted and sent to nobody. Real database, real SMTP relay."""
from __future__ import annotations

import email
import email.policy

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.cli import main
from mailgate.models import Outbox
from mailgate.pipeline import ingest
from tests.mails import make_mail
from tests.test_outbound import CUSTOMER, PIPE, clock, mgw, relay, reply_to, send_all  # noqa: F401

AGENT = "agent@example.com"


def _quoting(ack, typed: str, attribution: str) -> str:
    """`typed` above the acknowledgement, quoted whole as a mail client quotes it."""
    plain = email.message_from_bytes(ack.raw, policy=email.policy.default) \
        .get_body(("plain",)).get_content()
    quoted = "\n".join(f"> {line}".rstrip() for line in plain.splitlines())
    return f"{typed}\n\n{attribution}\n{quoted}\n" if typed else f"{attribution}\n{quoted}\n"


def _ticket(gw, number):
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        return t.status, [(m.kind, m.text_body, m.html_body) for m in t.messages], \
            [e.kind for e in t.events]


def _agent_mail(relay) -> list[str]:
    return [email.message_from_bytes(m.raw, policy=email.policy.default)
            .get_body(("plain",)).get_content() for m in relay.to(AGENT)]


ATTRIBUTIONS = [
    pytest.param("On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@example.com> wrote:",
                 "The toner is new, it still smudges.", id="gmail-en"),
    pytest.param("در تاریخ دوشنبه ۱۵ دی ۱۴۰۴، ساعت ۱۰:۰۰ ACME Support <support@example.com> نوشت:",
                 "تونر نو است ولی هنوز لک می‌اندازد.", id="gmail-fa"),
    pytest.param("ორშ, 5 იან. 2026, 10:00 ACME Support <support@example.com> წერს:",
                 "ტონერი ახალია, მაინც ლაქებს ტოვებს.", id="gmail-ka"),
    pytest.param("Am Mo., 5. Jan. 2026 um 10:00 Uhr schrieb ACME Support "
                 "<support@example.com>:", "Der Toner ist neu, es schmiert trotzdem.",
                 id="gmail-de"),
]


@pytest.mark.parametrize("attribution, typed", ATTRIBUTIONS)
def test_agents_get_and_the_ticket_keeps_what_the_customer_typed(mgw, relay, attribution,
                                                                 typed):
    first = ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    [ack] = relay.to(CUSTOMER)
    body = _quoting(ack, typed, attribution)
    reply = ingest(mgw, reply_to(ack, body), PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first.ticket)
    assert "apply: quoted history cut from the stored text" in reply.trace
    send_all(mgw)
    status, messages, _ = _ticket(mgw, first.ticket)
    assert messages[-1] == ("customer_reply", typed, None)
    [_, notice] = _agent_mail(relay)  # the new ticket's notice, then the reply's
    assert typed in notice and attribution not in notice
    assert not any(line.startswith(">") for line in notice.splitlines())
    assert status == "new"


def test_a_reply_that_only_quotes_is_noted_and_sent_to_nobody(mgw, relay):
    first = ingest(mgw, make_mail(), PIPE)
    with mgw.db.unit_of_work() as session:
        ops.set_status(session, ops.get_ticket(session, first.ticket), "answered", AGENT)
    send_all(mgw)
    [ack] = relay.to(CUSTOMER)
    before = len(relay.received)
    body = _quoting(ack, "", "On Mon, Jan 5, 2026 at 10:00 AM ACME <support@example.com> wrote:")
    reply = ingest(mgw, reply_to(ack, body), PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first.ticket)
    assert any(line.startswith("quote_only:") for line in reply.trace)
    assert send_all(mgw) == 0 and len(relay.received) == before
    status, messages, events = _ticket(mgw, first.ticket)
    assert status == "answered" and events[-1] == "quote_only"
    assert messages[-1][1] == body.strip()  # nothing new: stored as it came


def test_a_reply_with_only_a_file_is_not_quote_only(mgw, relay):
    first = ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    [ack] = relay.to(CUSTOMER)
    body = _quoting(ack, "", "On Mon, Jan 5, 2026 at 10:00 AM ACME <support@example.com> wrote:")
    raw = reply_to(ack, body)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    msg.add_attachment(b"%PDF-1.4\n%%EOF\n", maintype="application", subtype="pdf",
                       filename="invoice.pdf")
    reply = ingest(mgw, msg.as_bytes(), PIPE)
    assert not any(line.startswith("quote_only:") for line in reply.trace)
    assert send_all(mgw) == 1 and len(relay.to(AGENT)) == 2


def test_a_new_ticket_keeps_its_text_whole(mgw):
    body = "Please see below.\n\nOn Mon, Jan 5, 2026 at 10:00 AM Bob <bob@example.net> wrote:\n" \
           "> the printer is on fire\n"
    result = ingest(mgw, make_mail(body=body), PIPE)
    _, [(_, text, _)], _ = _ticket(mgw, result.ticket)
    assert text == body  # a new ticket's quoted mail is context the agent has nowhere else


def test_ticket_show_full_prints_the_original(mgw, relay, tmp_path, capsys):
    first = ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    [ack] = relay.to(CUSTOMER)
    body = _quoting(ack, "Still smudges.", "On Mon, Jan 5, 2026 at 10:00 AM ACME "
                    "<support@example.com> wrote:")
    ingest(mgw, reply_to(ack, body), PIPE)
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{mgw.settings.database.url}"\n'
                      f'[storage]\ndir = "{mgw.settings.storage.dir}"\nfsync = false\n')
    capsys.readouterr()
    assert main(["--config", str(config), "ticket", "show", str(first.ticket)]) == 0
    short = capsys.readouterr().out
    assert "Still smudges." in short and "> " not in short
    assert main(["--config", str(config), "ticket", "show", str(first.ticket), "--full"]) == 0
    full = capsys.readouterr().out
    assert "Still smudges." in full and "> ##-" in full and "wrote:" in full
    for row in _rows(mgw):  # the agents' mail carried the cut text only
        assert "wrote:" not in str(row.context)


def _rows(gw) -> list[Outbox]:
    with gw.db.unit_of_work() as session:
        return list(session.scalars(select(Outbox).where(Outbox.kind == "customer_reply")))
