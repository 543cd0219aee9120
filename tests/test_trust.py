"""Attacks on the trust boundary, sent as an attacker would (issue 11, points 1-5).

Every test sends the hostile mail through the pipeline (`ingest`, as the MTA
pipe does) or over SMTP to the real daemon, then looks at the database and at
the mail the real relay received. The suite-wide guard in conftest.py checks,
after every test, that no agent-signed id reached anyone but its agent.
"""
from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.gateway import Gateway
from mailgate.models import Agent, Department, Inbound, Outbox, Quarantine, Suppression
from mailgate.pipeline import Envelope, ingest
from mailgate.signing import AGENT_ID
from tests.conftest import agent_proof_leaks
from tests.mails import make_mail
from tests.servers.clock import Clock
from tests.servers.daemon import DaemonThread
from tests.test_agents import (AGENT, CUSTOMER, TEST_SECRET, agent_reply, relay,  # noqa: F401
                               send, strict, text_of)

PIPE = Envelope("pipe")
ATTACKER = "mallory@evil.example"
MX = "mx.example.com"


def trusting(settings, relay, **changes):
    outbound = {"transport": "smtp", "relay_host": "127.0.0.1", "relay_port": relay.port,
                "relay_security": "none", "hostname": "mg.example.com",
                "bounce_address": "bounces@example.com", **changes.pop("outbound", {})}
    security = {"secret": TEST_SECRET, "trusted_authserv_ids": (MX,),
                **changes.pop("security", {})}
    return settings.replace(outbound=outbound, security=security, **changes)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def tgw(settings, parser_pool, relay, departments, clock):
    gateway = Gateway(trusting(settings, relay), parser=parser_pool, clock=clock)
    with gateway.db.unit_of_work() as session:
        support = session.scalar(select(Department).where(Department.key == "support"))
        session.add(Agent(email="second@example.com", name="Second", departments=[support]))
    yield gateway
    gateway.close()


def new_ticket(gw, relay, sender=f"Customer <{CUSTOMER}>", **headers):
    """A customer's new ticket: (number, the agent's notification, the customer's ack)."""
    result = ingest(gw, make_mail(sender=sender, **headers), PIPE)
    send(gw)
    address = sender.split("<")[-1].rstrip(">")
    return result.ticket, relay.to(AGENT)[-1], relay.to(address)[-1]


def reply_to(received, body: str, sender: str = f"Customer <{CUSTOMER}>", **headers) -> bytes:
    """A reply to a mail we sent, written the way mail clients write one."""
    original = strict(received.raw)
    return make_mail(sender=sender, subject=f"Re: {original['Subject']}", body=body,
                     in_reply_to=original["Message-ID"],
                     references=f"{original.get('References', '')} {original['Message-ID']}",
                     **headers)


def ticket(gw, number):
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        return {"status": t.status, "priority": t.priority,
                "cc": {p.contact.email for p in t.participants if p.role == "cc"},
                "messages": [(m.kind, m.author_email, m.text_body) for m in t.messages],
                "events": [(e.kind, e.new_value) for e in t.events]}


def held(gw) -> list[str]:
    with gw.db.unit_of_work() as session:
        return [q.error_class for q in session.scalars(select(Quarantine))]


# -- 1. agent proof never reaches a customer -----------------------------------------

def test_internal_note_id_never_reaches_the_customer_and_cannot_be_replayed(tgw, relay):
    number, notification, _ = new_ticket(tgw, relay)
    ingest(tgw, agent_reply(notification, "#note\nChecked the logs, customer is right."), PIPE)
    ingest(tgw, agent_reply(notification, "#status resolved\nFixed, please try again."), PIPE)
    send(tgw)
    to_customer = relay.to(CUSTOMER)
    assert len(to_customer) >= 2  # ack, the answer (and the status mail)
    for mail in to_customer:
        assert not AGENT_ID.search(mail.raw.split(b"\r\n\r\n")[0].decode()), mail.raw[:600]
    # the customer forges the agent's From and answers with everything they were sent
    answer = to_customer[-1]
    ids = " ".join(strict(m.raw)["Message-ID"] for m in to_customer)
    forged = make_mail(sender=f"Agent <{AGENT}>", subject=f"Re: {strict(answer.raw)['Subject']}",
                       body="#priority urgent\n#cc outsider@evil.example\n\nPay here: "
                            "http://evil.example/pay", in_reply_to=strict(answer.raw)["Message-ID"],
                       references=ids)
    ingest(tgw, forged, PIPE)
    send(tgw)
    state = ticket(tgw, number)
    assert state["priority"] == "normal" and "outsider@evil.example" not in state["cc"]
    assert not any("evil.example/pay" in (m[2] or "") for m in state["messages"])
    assert held(tgw) == ["unverified"]
    assert not relay.to("outsider@evil.example")
    assert not any("evil.example/pay" in text_of(m.raw) for m in relay.to(CUSTOMER))


def test_a_signature_is_proof_only_from_its_own_agent(tgw, relay):
    number, notification, _ = new_ticket(tgw, relay)
    # the second agent (or anyone who got hold of the id) sends with agent@'s signature
    stolen = agent_reply(notification, "#priority urgent\nDone.", sender="second@example.com")
    ingest(tgw, stolen, PIPE)
    assert ticket(tgw, number)["priority"] == "normal"
    assert held(tgw) == ["unverified"]


def test_a_signature_expires(tgw, relay, clock):
    number, notification, _ = new_ticket(tgw, relay)
    clock.advance(days=31)
    ingest(tgw, agent_reply(notification, "#priority urgent\nLate answer."), PIPE)
    assert ticket(tgw, number)["priority"] == "normal"
    assert held(tgw) == ["unverified"]
    clock.advance(days=-2)  # day 29: still good
    ingest(tgw, agent_reply(notification, "#priority high\nOn time."), PIPE)
    assert ticket(tgw, number)["priority"] == "high"


def test_the_guard_finds_a_leak():
    leaked = (b"From: s@example.com\r\nTo: c@example.org\r\nMessage-ID: <mg.ack.1.aa@h>\r\n"
              b"References: <x@y> <mg.n.7.3.6926c48a0011223344556677.abcd"
              b"0123456789abcdef0123456789abcdef@mg.example.com>\r\n\r\nHi\r\n")
    assert agent_proof_leaks(leaked)
    own = leaked.replace(b"<mg.ack.1.aa@h>", b"<mg.n.7.3.1@h>").replace(b"References: ", b"X: ")
    assert not agent_proof_leaks(own)  # an agent's mail threads on that agent's own mail
    for other in (b"<mg.n.7.4.1@h>", b"<mg.n.8.3.1@h>"):  # another agent's, another ticket's
        assert agent_proof_leaks(own.replace(b"<mg.n.7.3.1@h>", other))
    assert not agent_proof_leaks(leaked.replace(b"mg.n.", b"mg.c."))


# -- 2. Authentication-Results only where our own MTA wrote it ---------------------

def forged_agent_mail(notification_subject: str, auth: str, below_received: bool) -> bytes:
    mail = make_mail(sender=f"Agent <{AGENT}>", subject=f"Re: {notification_subject}",
                     body="#priority urgent\nUrgent now.")
    forged = f"Authentication-Results: {MX}; dmarc=pass header.from={auth}\r\n".encode()
    if below_received:  # the sender's header, under the upstream relay's Received:
        upstream = b"Received: from evil (evil [198.51.100.66]) by relay.evil.example; x\r\n"
        return upstream + forged + mail
    return forged + mail


@pytest.mark.parametrize("auth", ["example.com", "co.uk"])
def test_sender_written_authentication_results_prove_nothing(tgw, relay, auth):
    number, notification, _ = new_ticket(tgw, relay)
    subject = strict(notification.raw)["Subject"]
    ingest(tgw, forged_agent_mail(subject, auth, below_received=True), PIPE)
    assert ticket(tgw, number)["priority"] == "normal"
    assert held(tgw) == ["unverified"]


def test_authentication_results_from_our_mx_prove_the_agent(tgw, relay):
    number, notification, _ = new_ticket(tgw, relay)
    mail = forged_agent_mail(strict(notification.raw)["Subject"], "example.com", False)
    ours = (b"Received: from mail.example.com (mail.example.com [203.0.113.7]) by "
            b"mx.example.com (Postfix) with ESMTPS id 4F; Sun, 22 Nov 2026 12:00 +0000\r\n")
    ingest(tgw, mail.replace(b"\r\n", b"\r\n" + ours, 1), PIPE)
    assert ticket(tgw, number)["priority"] == "urgent"


def test_a_comment_is_no_property(tgw, relay):
    number, notification, _ = new_ticket(tgw, relay)
    mail = make_mail(sender=f"Agent <{AGENT}>", subject=f"Re: {strict(notification.raw)['Subject']}",
                     body="#priority urgent\nx")
    header = f"Authentication-Results: {MX}; dkim=pass (header.d=example.com) header.d=evil.example\r\n"
    ingest(tgw, header.encode() + mail, PIPE)
    assert ticket(tgw, number)["priority"] == "normal"


@pytest.fixture
def smtp_daemon(settings, relay, parser_pool, departments, request):
    """The real daemon on a loopback port; `request.param`: its [smtp] trusted_relays."""
    configured = trusting(settings, relay, smtp={"listen": ("127.0.0.1:0",),
                                                  "trusted_relays": request.param},
                          http={"listen": "127.0.0.1:0"}, daemon={"delivery_workers": 1})
    gateway = Gateway(configured, parser=parser_pool)
    with DaemonThread(configured, gateway) as daemon:
        yield daemon, gateway


@pytest.mark.parametrize("smtp_daemon,proves", [((), False), (("127.0.0.0/8",), True)],
                         indirect=["smtp_daemon"], ids=["untrusted-client", "trusted-relay"])
def test_over_smtp_only_a_trusted_relay_brings_proof(smtp_daemon, relay, proves):
    daemon, gw = smtp_daemon
    number = ingest(gw, make_mail(), PIPE).ticket
    send(gw)
    notification = relay.to(AGENT)[-1]
    mail = forged_agent_mail(strict(notification.raw)["Subject"], "example.com", False)
    with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
        client.sendmail(AGENT, ["support@example.com"], mail)
    assert ticket(gw, number)["priority"] == ("urgent" if proves else "normal")
    assert held(gw) == ([] if proves else ["unverified"])


# -- 3. forged delivery reports silence nobody ----------------------------------------

def dsn(to: str, final_recipient: str, original_id: str = "<x@y>") -> bytes:
    return (f"From: MAILER-DAEMON@mx.evil.example\r\nTo: {to}\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
            f"Message-ID: <dsn-{abs(hash((to, original_id)))}@mx.evil.example>\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.evil.example\r\n\r\n"
            f"Final-Recipient: rfc822; {final_recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: {original_id}\r\nSubject: x\r\n--B--\r\n").encode()


def suppressed(gw) -> dict[str, int]:
    with gw.db.unit_of_work() as session:
        return {s.address: s.hard_bounces for s in session.scalars(select(Suppression))}


def test_forged_reports_suppress_nobody(tgw, relay):
    number, _, ack = new_ticket(tgw, relay)
    ack_id = strict(ack.raw)["Message-ID"]
    for i in (1, 2, 3):  # to sequential, untagged VERP addresses, naming the agent
        result = ingest(tgw, dsn(f"bounces+o{i}@example.com", AGENT), Envelope(
            "smtp", "", (f"bounces+o{i}@example.com",)))
        assert result.outcome == "ignored" and result.ticket is None
        ingest(tgw, dsn(f"bounces+o{i}.0123456789ab@example.com", AGENT),  # a made-up tag
               Envelope("smtp", "", (f"bounces+o{i}.0123456789ab@example.com",)))
        # quoting the customer's acknowledgement, to the support address
        ingest(tgw, dsn("support@example.com", CUSTOMER, ack_id).replace(
            b"<dsn-", f"<dsn{i}-".encode()), PIPE)
    assert suppressed(tgw) == {}
    events = [e for e in ticket(tgw, number)["events"] if e[0] == "bounce"]
    assert events  # recorded on the ticket, for the agents to see
    with tgw.db.unit_of_work() as session:
        assert session.scalar(select(Outbox).where(Outbox.kind == "ack")).status == "sent"
    # the next mail to the customer and to the agent still goes out
    ingest(tgw, make_mail(subject="still here?"), PIPE)
    assert send(tgw) >= 2


def test_a_verified_report_suppresses_only_the_address_we_sent_to(tgw, relay):
    for i in range(3):
        ingest(tgw, make_mail(subject=f"try {i}"), PIPE)
        send(tgw)
        ack = relay.to(CUSTOMER)[-1]
        assert ack.mail_from.startswith("bounces+o")
        result = ingest(tgw, dsn(ack.mail_from, AGENT, strict(ack.raw)["Message-ID"]),
                        Envelope("smtp", "", (ack.mail_from,)))
        assert result.outcome == "bounce"
    assert suppressed(tgw) == {CUSTOMER: 3}  # never the agent the report named


# -- 4. identity is the author; customer commands need proof --------------------------

def test_reply_to_does_not_make_a_message_the_victims(tgw, relay):
    number, _, _ = new_ticket(tgw, relay)
    attack = make_mail(sender=f"Support <no-reply@evil.example>", reply_to=CUSTOMER,
                       subject=f"Re: [MG#{number}]", body="#close\nI am the customer.")
    ingest(tgw, attack, PIPE)
    state = ticket(tgw, number)
    assert state["status"] == "new"
    assert [m[1] for m in state["messages"]] == [CUSTOMER]  # nothing appended as the victim


def test_a_customer_command_without_proof_is_text_and_the_customer_is_told(tgw, relay):
    number, _, _ = new_ticket(tgw, relay)
    # a forger knows the victim's address and ticket number, not our mail to them
    ingest(tgw, make_mail(subject=f"Re: [MG#{number}]", body="#close\nDone, close it."), PIPE)
    send(tgw)
    state = ticket(tgw, number)
    assert state["status"] == "new"
    assert ("unverified_command", "#close") in state["events"]
    assert state["messages"][-1][2].startswith("#close")
    notice = [m for m in relay.to(CUSTOMER) if "Not applied" in strict(m.raw)["Subject"]]
    assert len(notice) == 1 and "#close" in text_of(notice[0].raw)
    [to_agent] = [m for m in relay.to(AGENT) if "Done, close it." in text_of(m.raw)]
    assert "Sender not verified" in text_of(to_agent.raw)
    # the real customer answers the notice: now it counts
    ingest(tgw, reply_to(notice[0], "#close\nYes, please."), PIPE)
    assert ticket(tgw, number)["status"] == "closed"


def test_a_cc_participant_signs_for_themselves_only(tgw, relay):
    number, notification, _ = new_ticket(tgw, relay)
    ingest(tgw, agent_reply(notification, "#cc friend@example.net\nAdded your colleague."),
           PIPE)
    send(tgw)
    [to_friend] = relay.to("friend@example.net")
    # the friend's signed id, sent with the requester's From, proves nothing
    ingest(tgw, reply_to(to_friend, "#close\nclose it"), PIPE)
    assert ticket(tgw, number)["status"] == "open"  # the reply counts as a reply, no more
    # with their own From it does: they are a participant
    ingest(tgw, reply_to(to_friend, "#close\nclose it", sender="friend@example.net"), PIPE)
    assert ticket(tgw, number)["status"] == "closed"


def test_append_policy_never_lets_a_stranger_command(tgw, relay):
    tgw.settings = tgw.settings.replace(threading={"foreign_sender": "append"})
    number, _, ack = new_ticket(tgw, relay)
    # the stranger even has the customer's acknowledgement (forwarded to them)
    ingest(tgw, reply_to(ack, "#close\nclose", sender=ATTACKER), PIPE)
    send(tgw)
    state = ticket(tgw, number)
    assert state["status"] == "new" and state["messages"][-1][1] == ATTACKER
    assert not relay.to(ATTACKER)  # no notice either: a stranger's command is just text


# -- 5. acknowledgements are no reflection service -------------------------------------

PHISH = "Your account is suspended. Verify now: http://evil.example/verify"


def test_forged_mail_reflects_nothing_and_is_capped(tgw, relay):
    target = "target@victims.example"
    for i in range(14):
        ingest(tgw, make_mail(sender=f'"{PHISH}" <{target}>', subject=f"{PHISH} {'!' * i}",
                              body=PHISH + "\n"), PIPE)
    send(tgw)
    acks = relay.to(target)
    assert len(acks) == tgw.settings.outbound.ack_limit_per_hour == 5
    for ack in acks:
        mail = strict(ack.raw)
        whole = text_of(ack.raw) + mail.get_body(("html",)).get_content() + mail["Subject"]
        assert "http://evil.example" not in whole and "Verify now" not in text_of(ack.raw)
        assert len(mail["Subject"]) < 120


def test_replies_are_capped_per_domain(tgw, relay):
    tgw.settings = tgw.settings.replace(outbound={**vars(tgw.settings.outbound),
                                                  "ack_limit_per_domain": 4})
    for i in range(7):
        ingest(tgw, make_mail(sender=f"user{i}@victims.example", subject=f"hi {i}"), PIPE)
    send(tgw)
    assert sum(len(relay.to(f"user{i}@victims.example")) for i in range(7)) == 4


@pytest.mark.parametrize("smtp_daemon", [()], indirect=True)
def test_replies_are_capped_per_client_network(smtp_daemon, relay):
    daemon, gw = smtp_daemon
    limit = gw.settings.outbound.ack_limit_per_network
    with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
        for i in range(limit + 3):
            address = f"victim{i}@domain{i}.example"
            client.sendmail(address, ["support@example.com"],
                            make_mail(sender=address, subject=f"hello {i}"))
    send(gw)
    acks = [m for m in relay.received if m.message["Auto-Submitted"] == "auto-replied"]
    assert len(acks) == limit
    with gw.db.unit_of_work() as session:
        assert len(list(session.scalars(select(Inbound)))) == limit + 3  # all kept


def test_no_acknowledgement_when_our_dmarc_check_failed(tgw, relay):
    header = f"Authentication-Results: {MX}; dmarc=fail (p=none) header.from=victims.example\r\n"
    result = ingest(tgw, header.encode() + make_mail(sender="ceo@victims.example"), PIPE)
    send(tgw)
    assert result.outcome == "new"
    assert not relay.to("ceo@victims.example")
    assert any("DMARC failed" in line for line in result.trace)
