"""A ticket is one thread in an agent's mail client (#15): the agents' notifications
refer to the earlier mail about that ticket to that same agent, never to anyone else's."""
from __future__ import annotations

import email
import email.policy

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.models import Agent, Department
from mailgate.outbound.sender import OutboxSender
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail

PIPE = Envelope("pipe")
AGENT, SECOND = "agent@example.com", "second@example.com"


@pytest.fixture
def written(settings, gw, departments):
    """The mail the file transport wrote so far, per recipient, oldest first."""
    def read() -> dict[str, list]:
        OutboxSender(gw).run_once()
        files = sorted((settings.storage.dir / "outbox").glob("*.eml"),
                       key=lambda path: int(path.stem))
        mails: dict[str, list] = {}
        for path in files:
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            mails.setdefault(mail["X-Envelope-To"].strip("<>"), []).append(mail)
        return mails
    return read


def customer_mail(number: str | None = None, body: str = "It is on fire.\n") -> bytes:
    subject = f"Re: [MG#{number}] Printer on fire" if number else "Printer on fire"
    return make_mail(subject=subject, body=body)


def refs(mail) -> tuple[str | None, list[str]]:
    return mail["In-Reply-To"], (mail["References"] or "").split()


def test_customer_replies_thread_on_the_agents_earlier_notifications(gw, written):
    number = ingest(gw, customer_mail(), PIPE).ticket
    ingest(gw, customer_mail(number, "Still on fire.\n"), PIPE)
    ingest(gw, customer_mail(number, "Now smoking.\n"), PIPE)
    new, first_reply, second_reply = written()[AGENT]
    assert refs(new) == (None, [])
    assert refs(first_reply) == (new["Message-ID"], [new["Message-ID"]])
    assert refs(second_reply) == (first_reply["Message-ID"],
                                  [new["Message-ID"], first_reply["Message-ID"]])
    # another ticket is another thread
    other = ingest(gw, make_mail(subject="Scanner jammed"), PIPE).ticket
    ingest(gw, customer_mail(other, "Really jammed.\n"), PIPE)
    other_new, other_reply = written()[AGENT][3:]
    assert refs(other_reply) == (other_new["Message-ID"], [other_new["Message-ID"]])


def test_each_agent_threads_on_their_own_mail_only(gw, written):
    with gw.db.unit_of_work() as session:
        support = session.scalar(select(Department).where(Department.key == "support"))
        session.add(Agent(email=SECOND, name="Second", departments=[support]))
    number = ingest(gw, customer_mail(), PIPE).ticket
    ingest(gw, customer_mail(number, "More.\n"), PIPE)
    mails = written()
    for address in (AGENT, SECOND):
        new, reply = mails[address]
        assert refs(reply) == (new["Message-ID"], [new["Message-ID"]])
    # once assigned, only the assignee is told, still in their own thread
    with gw.db.unit_of_work() as session:
        ticket = ops.get_ticket(session, number)
        ticket.assignee = session.scalar(select(Agent).where(Agent.email == SECOND))
    ingest(gw, customer_mail(number, "Even more.\n"), PIPE)
    mails = written()
    assert len(mails[AGENT]) == 2
    new, reply, latest = mails[SECOND]
    assert refs(latest) == (reply["Message-ID"], [new["Message-ID"], reply["Message-ID"]])


def test_a_team_address_threads_on_the_team_mail(gw, written):
    with gw.db.unit_of_work() as session:
        support = session.scalar(select(Department).where(Department.key == "support"))
        support.team_address = "team@example.com"
    number = ingest(gw, customer_mail(), PIPE).ticket
    ingest(gw, customer_mail(number, "More.\n"), PIPE)
    new, reply = written()["team@example.com"]
    assert refs(reply) == (new["Message-ID"], [new["Message-ID"]])


def test_the_customer_never_sees_an_agents_id(gw, written):
    number = ingest(gw, customer_mail(), PIPE).ticket
    ingest(gw, customer_mail(number, "More.\n"), PIPE)
    for mail in written()["customer@example.org"]:
        assert "mg.n." not in f"{mail['In-Reply-To']} {mail['References']}"
