"""Agents answer from their mail client; a forged From never passes as an agent."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import smtplib
import time

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.cli import main
from mailgate.gateway import Gateway
from mailgate.models import Agent, Department, Outbox, Quarantine, Ticket
from mailgate.outbound.sender import OutboxSender
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail
from tests.servers.daemon import DaemonThread
from tests.servers.relay import RecordingRelay

PIPE = Envelope("pipe")
CUSTOMER, AGENT = "customer@example.org", "agent@example.com"
TEST_SECRET, NEW_SECRET = "test-secret-" + "t" * 32, "new-secret-" + "n" * 32


@pytest.fixture
def relay():
    server = RecordingRelay().start()
    yield server
    server.stop()


def with_relay(settings, relay, **security):
    return settings.replace(
        outbound={"transport": "smtp", "relay_host": "127.0.0.1", "relay_port": relay.port,
                  "relay_security": "none", "hostname": "mg.example.com"},
        security={"secret": TEST_SECRET, **security})


@pytest.fixture
def admin(agw, tmp_path, capsys):
    """Run a `mailgate` command on agw's database, storage and secret; its stdout."""
    config = tmp_path / "admin.toml"
    config.write_text(f'[database]\nurl = "{agw.settings.database.url}"\n'
                      f'[storage]\ndir = "{agw.settings.storage.dir}"\nfsync = false\n'
                      f'[security]\nsecret = "{TEST_SECRET}"\n'
                      '[outbound]\nhostname = "mg.example.com"\n')

    def run(*args: str) -> str:
        capsys.readouterr()
        code = main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        assert code == 0, err + out
        return out
    return run


@pytest.fixture
def agw(settings, parser_pool, relay, departments):
    with_agents = with_relay(settings, relay, trusted_authserv_ids=("mx.example.com",))
    gateway = Gateway(with_agents, parser=parser_pool)
    with gateway.db.unit_of_work() as session:
        support = session.scalar(select(Department).where(Department.key == "support"))
        session.add(Agent(email="second@example.com", name="Second", departments=[support]))
    yield gateway
    gateway.close()


def strict(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.strict)


def text_of(raw: bytes) -> str:
    return strict(raw).get_body(("plain",)).get_content()


def send(gw) -> int:
    return OutboxSender(gw).run_once()


def open_ticket(gw, relay, **headers):
    """A customer's new ticket; returns (number, the notification the agent received)."""
    result = ingest(gw, make_mail(message_id="<customer-1@client.example.org>", **headers),
                    PIPE)
    send(gw)
    [notification] = relay.to(AGENT)[-1:]
    return result.ticket, notification


GMAIL = "{new}\n\nOn Sun, Nov 22, 2026 at 10:00 AM Support <support@example.com> wrote:\n\n{quoted}"
OUTLOOK = ("{new}\n\n________________________________\nFrom: Support <support@example.com>\n"
           "Sent: Sunday, November 22, 2026 10:00 AM\nTo: Agent <agent@example.com>\n"
           "Subject: {subject}\n\n{plain}")
THUNDERBIRD = "{new}\n\nOn 11/22/26 10:00 AM, Support wrote:\n{quoted}"


def agent_reply(notification, new: str, style: str = GMAIL, sender: str = AGENT,
                keep_references: bool = True, **headers) -> bytes:
    """A reply built from the received notification, quoting it as the client would."""
    original = strict(notification.raw)
    plain = original.get_body(("plain",)).get_content()
    quoted = "\n".join("> " + line for line in plain.splitlines())
    body = style.format(new=new, quoted=quoted, plain=plain, subject=original["Subject"])
    refs = {}
    if keep_references:
        refs = {"in_reply_to": original["Message-ID"],
                "references": f"{original.get('References', '')} {original['Message-ID']}"}
    return make_mail(sender=f"Agent <{sender}>", to=str(original["From"]),
                     subject=f"Re: {original['Subject']}", body=body, **refs, **headers)


@pytest.mark.parametrize("style", [GMAIL, OUTLOOK, THUNDERBIRD],
                         ids=["gmail", "outlook", "thunderbird"])
def test_agent_answers_from_the_mail_client(agw, relay, style):
    number, notification = open_ticket(agw, relay)
    result = ingest(agw, agent_reply(notification, "Please restart the printer.", style), PIPE)
    assert (result.outcome, result.ticket) == ("appended", number)
    assert any("verified by signed notification" in line for line in result.trace)
    send(agw)
    answer = [r for r in relay.to(CUSTOMER) if "restart the printer" in text_of(r.raw)]
    assert len(answer) == 1
    msg = strict(answer[0].raw)
    body = text_of(answer[0].raw)
    assert "wrote:" not in body and "Sent:" not in body and "> " not in body
    assert f"[MG#{number}]" in msg["Subject"]
    assert msg["In-Reply-To"] == "<customer-1@client.example.org>"
    assert msg["Auto-Submitted"] is None  # a person's answer, not automatic mail
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        assert t.status == "answered" and t.first_response_at is not None
        assert t.messages[-1].kind == "agent_reply"
        assert t.messages[-1].text_body == "Please restart the printer."


def test_round_trip_over_real_smtp(settings, parser_pool, relay, departments):
    settings = with_relay(settings, relay).replace(
        smtp={"listen": ("127.0.0.1:0",)}, http={"listen": "127.0.0.1:0"},
        daemon={"delivery_workers": 2})
    with DaemonThread(settings, Gateway(settings, parser=parser_pool)) as daemon:
        port = daemon.port()

        def deliver(raw, sender):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail(sender, ["support@example.com"], raw)

        def wait_for(address, count):
            deadline = time.monotonic() + 20
            while len(relay.to(address)) < count and time.monotonic() < deadline:
                time.sleep(0.05)
            return relay.to(address)

        deliver(make_mail(message_id="<rt-1@client.example.org>"), CUSTOMER)
        [notification] = wait_for(AGENT, 1)  # woken right after commit, not the interval
        deliver(agent_reply(notification, "It works again after a restart.", OUTLOOK), AGENT)
        received = wait_for(CUSTOMER, 2)
    ack, answer = received
    assert "It works again after a restart." in text_of(answer.raw)
    assert "From: Support" not in text_of(answer.raw)
    assert strict(answer.raw)["In-Reply-To"] == "<rt-1@client.example.org>"


def test_note_is_never_sent_to_the_customer(agw, relay):
    number, notification = open_ticket(agw, relay)
    before = len(relay.to(CUSTOMER))
    ingest(agw, agent_reply(notification, "#note\nCustomer is on the old firmware."), PIPE)
    send(agw)
    assert len(relay.to(CUSTOMER)) == before
    assert not any("old firmware" in text_of(r.raw) for r in relay.received)
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        assert t.messages[-1].kind == "internal_note" and t.status == "new"


def test_every_command(agw, relay):
    number, notification = open_ticket(agw, relay)
    with agw.db.unit_of_work() as session:
        session.add(Department(key="hardware", name="Hardware"))
    commands = ("#priority urgent\n#assign second@example.com\n#category Printers\n"
                "#cc boss@example.org\n#status in_progress\n\nLooking into it.")
    ingest(agw, agent_reply(notification, commands), PIPE)
    send(agw)
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        assert (t.priority, t.assignee.email, t.category, t.status) == \
            ("urgent", "second@example.com", "Printers", "in_progress")
        assert t.messages[-1].text_body == "Looking into it."
        emails = {p.contact.email: p.role for p in t.participants}
        assert emails["boss@example.org"] == "cc"
    answer = relay.to(CUSTOMER)[-1]
    [copy] = relay.to("boss@example.org")  # Cc participants get the answer too, each their own
    assert answer.rcpt_tos == [CUSTOMER] and copy.rcpt_tos == ["boss@example.org"]
    assert strict(answer.raw)["Message-ID"] != strict(copy.raw)["Message-ID"]
    assert "#priority" not in text_of(answer.raw) and "#priority" not in text_of(copy.raw)
    # next reply: department, uncc, assign me, status resolved (a customer-visible change)
    follow = agent_reply(notification, "#uncc boss@example.org\n#assign me\n"
                                       "#department hardware\n#status resolved")
    ingest(agw, follow, PIPE)
    send(agw)
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        assert (t.assignee.email, t.department.key, t.status) == (AGENT, "hardware", "resolved")
        assert "boss@example.org" not in {p.contact.email for p in t.participants}
    status_mail = relay.to(CUSTOMER)[-1]
    assert strict(status_mail.raw)["Auto-Submitted"] == "auto-replied"


def test_an_answer_that_resolves_tells_the_status_in_the_answer_itself(agw, relay):
    """An agent's answer with `#status resolved` is one mail to the customer that says
    both (no status mail of its own, which could arrive first)."""
    number, notification = open_ticket(agw, relay)
    ingest(agw, agent_reply(notification, "#status resolved\n\nRestart the router."), PIPE)
    send(agw)
    with agw.db.unit_of_work() as session:
        ticket_id = ops.get_ticket(session, number).id
        rows = session.scalars(select(Outbox).where(
            Outbox.ticket_id == ticket_id, Outbox.kind.in_(("agent_reply", "status_change"))))
        told = [(row.kind, row.recipients, row.context.get("status")) for row in rows]
    assert told == [("agent_reply", [CUSTOMER],
                     {"old": "new", "new": "resolved", "reason": ""})]
    assert "Restart the router." in text_of(relay.to(CUSTOMER)[-1].raw)


def test_invalid_commands_are_not_applied_and_the_agent_is_told(agw, relay):
    number, notification = open_ticket(agw, relay)
    ingest(agw, agent_reply(notification, "#status maybe\n#assign nobody@example.com\n"
                                          "#department nowhere\n#frobnicate\n#priority high\n"
                                          "\nOn it."), PIPE)
    send(agw)
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        assert (t.priority, t.assignee_id, t.department.key, t.status) == \
            ("high", None, "support", "answered")
    [report] = [r for r in relay.to(AGENT) if "command_result" in
                (strict(r.raw)["Message-ID"] or "") or "#frobnicate" in text_of(r.raw)]
    body = text_of(report.raw)
    for line in ("#status maybe", "#assign nobody@example.com", "#department nowhere",
                 "#frobnicate"):
        assert line in body
    assert "unknown status 'maybe'" in body
    assert "nobody@example.com is not an active agent" in body


def test_commands_from_a_customer_are_ordinary_text(agw, relay):
    number, _ = open_ticket(agw, relay)
    ingest(agw, make_mail(subject=f"Re: [MG#{number}]", body="#status closed\n#priority low\n"),
           PIPE)
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        assert (t.status, t.priority) == ("new", "normal")
        assert t.messages[-1].text_body.startswith("#status closed")


@pytest.mark.parametrize("word", ["#close", "#بستن", "#დახურვა"])
def test_customer_closes_by_mail_and_gets_confirmation(agw, relay, word):
    agw.settings = agw.settings.replace(outbound={"close_words": ("#close", "#بستن",
                                                                  "#დახურვა")})
    number, _ = open_ticket(agw, relay)
    ack = strict(relay.to(CUSTOMER)[-1].raw)
    ingest(agw, make_mail(subject=f"Re: [MG#{number}]", body=f"{word}\nThanks, solved.",
                          in_reply_to=ack["Message-ID"], references=ack["Message-ID"]), PIPE)
    send(agw)
    with agw.db.unit_of_work() as session:
        assert ops.get_ticket(session, number).status == "closed"
        rows = list(session.scalars(select(Outbox).where(Outbox.kind == "status_change")))
        assert len(rows) == 1 and rows[0].context["status"]["new"] == "closed"


def test_forged_agent_without_proof_runs_nothing_and_reaches_nobody(agw, relay):
    number, notification = open_ticket(agw, relay)
    before = len(relay.to(CUSTOMER))
    forged = agent_reply(notification, "#status closed\n#priority low\nPay to IBAN XX00.",
                         keep_references=False)
    result = ingest(agw, forged, PIPE)
    assert result.outcome == "quarantined" and "held for review" in result.reason
    send(agw)
    assert len(relay.to(CUSTOMER)) == before
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        assert (t.status, t.priority, len(t.messages)) == ("new", "normal", 1)
        assert session.get(Quarantine, result.quarantine_id).error_class == "unverified"


def test_the_agent_is_told_when_mail_in_their_name_is_held(agw, relay):
    """The real agent hears of it either way: their own answer did not go out, or
    someone used their address. Answering that notice is a verified reply; the
    notices are capped per agent per hour, so forgeries cannot flood the agent."""
    number, notification = open_ticket(agw, relay)
    held = ingest(agw, agent_reply(notification, "Pay to IBAN XX00.", keep_references=False),
                  PIPE)
    assert held.outcome == "quarantined" and held.queued
    send(agw)
    [notice] = [r for r in relay.to(AGENT) if "held" in strict(r.raw)["Subject"]]
    assert f"mailgate quarantine retry {held.quarantine_id} --as agent" in text_of(notice.raw)
    assert strict(notice.raw)["Auto-Submitted"] == "auto-generated"
    assert not [r for r in relay.to(CUSTOMER) if "IBAN" in text_of(r.raw)]
    answer = ingest(agw, agent_reply(notice, "Sorry, here is the real answer."), PIPE)
    assert (answer.outcome, answer.ticket) == ("appended", number)
    assert any("verified by signed notification" in line for line in answer.trace)
    for i in range(8):
        ingest(agw, agent_reply(notification, f"forged {i}", keep_references=False), PIPE)
    send(agw)
    notices = [r for r in relay.to(AGENT) if "held" in strict(r.raw)["Subject"]]
    assert len(notices) == agw.settings.outbound.ack_limit_per_hour


def test_an_admin_releases_held_agent_mail_as_the_agents(agw, relay):
    """The agent's client dropped References and the MTA adds no trusted
    Authentication-Results: the answer is held; an admin who checked it with the
    agent releases it with `quarantine retry ID --as agent`."""
    from mailgate.pipeline import retry_quarantined

    number, notification = open_ticket(agw, relay)
    held = ingest(agw, agent_reply(notification, "#priority high\nPlease restart it.",
                                   keep_references=False), PIPE)
    assert held.outcome == "quarantined"
    result = retry_quarantined(agw, held.quarantine_id, "agent")
    assert (result.outcome, result.ticket) == ("appended", number)
    assert any("verified by an admin" in line for line in result.trace)
    send(agw)
    [answer] = [r for r in relay.to(CUSTOMER) if "restart it" in text_of(r.raw)]
    assert "#priority" not in text_of(answer.raw)
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        assert (t.status, t.priority) == ("answered", "high")
        entry = session.get(Quarantine, held.quarantine_id)
        assert entry.resolved_at is not None and "as agent" in entry.resolution


def test_an_admin_releases_held_agent_mail_as_a_customers(agw, relay, admin):
    """`quarantine retry ID --as customer`: the held text joins the ticket it answers as
    customer text; no command runs, no new ticket in the agent's name, no
    acknowledgement to the agent."""
    number, notification = open_ticket(agw, relay)
    held = ingest(agw, agent_reply(notification, "#status closed\nIs this still open?",
                                   keep_references=False), PIPE)
    send(agw)
    before = len(relay.received)
    ran = admin("quarantine", "retry", str(held.quarantine_id), "--as", "customer")
    assert ran.strip() == f"quarantine {held.quarantine_id}: appended #{number}"
    send(agw)
    delivered = relay.received[before:]
    # the department's agents hear of the customer text; nobody else hears anything
    assert sorted(r.rcpt_tos for r in delivered) == [[AGENT], ["second@example.com"]]
    assert not any("New ticket" in strict(r.raw)["Subject"] for r in delivered)
    with agw.db.unit_of_work() as session:
        assert [t.number for t in session.scalars(select(Ticket))] == [number]
        t = ops.get_ticket(session, number)
        assert t.status == "new" and t.requester.email == CUSTOMER  # no command ran
        assert (t.messages[-1].kind, t.messages[-1].author_email) == ("customer_reply", AGENT)
        assert "Is this still open?" in t.messages[-1].text_body
        entry = session.get(Quarantine, held.quarantine_id)
        assert entry.resolution == f"retried: appended #{number} (as customer, vouched by " \
                                   "an admin)"
        inbound = t.messages[-1].inbound_id
    explained = admin("message", "explain", str(inbound))
    assert f"thread: new ticket linked to #{number}" in explained
    assert f"agent: released by an admin as a customer's text (quarantine retry --as " \
           f"customer): append to #{number}, no command run" in explained
    assert "verified" not in explained


def test_explain_says_a_proven_agents_reply_was_appended(agw, relay, admin):
    """The threading policy opens a linked ticket for a non-participant; the agent step
    then says, in order, that a proven agent's answer is appended instead."""
    number, notification = open_ticket(agw, relay)
    result = ingest(agw, agent_reply(notification, "Please restart the printer."), PIPE)
    lines = admin("message", "explain", str(result.inbound_id)).splitlines()
    assert lines[0].endswith(f": appended #{number}")
    thread = next(i for i, line in enumerate(lines) if "thread: " in line)
    assert lines[thread].strip() == (
        f"thread: new ticket linked to #{number} — {AGENT} is not a participant of "
        f"#{number}; policy new_linked opens a linked ticket")
    assert [line.strip() for line in lines[thread + 1:thread + 3]] == [
        f"agent: {AGENT} verified by signed notification",
        f"agent: an agent's answer, appended to #{number} (not new ticket linked to "
        f"#{number}: that is for customers' mail)"]


def test_vouching_is_only_for_mail_held_as_unverified(agw):
    from mailgate.pipeline import retry_quarantined

    held = ingest(agw, make_mail(to="nobody@example.com"), PIPE)  # no department
    assert held.outcome == "quarantined"
    with pytest.raises(ValueError, match="not unverified"):
        retry_quarantined(agw, held.quarantine_id, "agent")


def test_forged_header_lookalikes_do_not_count(agw, relay):
    number, notification = open_ticket(agw, relay)
    original = strict(notification.raw)["Message-ID"]
    local = original[1:].split("@")[0]
    tampered = "<" + local[:-1] + ("0" if local[-1] != "0" else "1") + "@mg.example.com>"
    forged = agent_reply(notification, "#priority low\nHi", keep_references=False,
                         in_reply_to=tampered, references=tampered)
    assert ingest(agw, forged, PIPE).outcome == "quarantined"
    # an Authentication-Results header from an untrusted MTA (or below ours) is no proof
    untrusted = agent_reply(notification, "#priority low\nHi", keep_references=False,
                            authentication_results="evil.example; dmarc=pass "
                                                   "header.from=example.com")
    assert ingest(agw, untrusted, PIPE).outcome == "quarantined"
    with agw.db.unit_of_work() as session:
        assert ops.get_ticket(session, number).priority == "normal"


def test_signature_for_one_ticket_replayed_onto_another_fails(agw, relay):
    first, notification_a = open_ticket(agw, relay)
    second, _ = open_ticket(agw, relay, subject="Another problem",
                            sender="Other <other@example.org>")
    replay = agent_reply(notification_a, "#priority low\nHi").replace(
        f"[MG#{first}]".encode(), f"[MG#{second}]".encode())
    result = ingest(agw, replay, PIPE)
    assert result.outcome == "quarantined"
    with agw.db.unit_of_work() as session:
        assert ops.get_ticket(session, second).priority == "normal"


def test_trusted_authentication_results_prove_an_agent(agw, relay):
    number, notification = open_ticket(agw, relay)
    reply = agent_reply(notification, "#priority high\nAnswer.", keep_references=False,
                        authentication_results="mx.example.com; dkim=pass "
                                               "header.d=example.com; dmarc=pass "
                                               "header.from=example.com")
    result = ingest(agw, reply, PIPE)
    assert any("Authentication-Results dmarc=pass" in l or "dkim=pass" in l
               for l in result.trace)
    with agw.db.unit_of_work() as session:
        assert ops.get_ticket(session, number).priority == "high"


def test_rotated_secret_verifies_until_the_grace_period_ends(settings, parser_pool, relay,
                                                             departments):
    old = Gateway(with_relay(settings, relay), parser=parser_pool)
    number, notification = open_ticket(old, relay)
    old.close()
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    rotated = with_relay(settings, relay).replace(security={
        "secret": NEW_SECRET, "previous_secret": TEST_SECRET,
        "previous_valid_until": until.isoformat()})
    gw = Gateway(rotated, parser=parser_pool)
    assert ingest(gw, agent_reply(notification, "#priority high\nok"), PIPE).outcome == \
        "appended"
    expired = rotated.replace(security={"previous_valid_until": (
        dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)).isoformat()})
    gw.settings = expired
    late = agent_reply(notification, "#priority low\nlater")
    assert ingest(gw, late, PIPE).outcome == "quarantined"
    gw.close()


def test_agent_opens_a_ticket_for_a_customer(agw, relay):
    raw = make_mail(sender=f"Agent <{AGENT}>", to="support@example.com",
                    subject="Your new account", body="#new newcustomer@example.net\n\n"
                                                     "Dear customer, your account is ready.",
                    authentication_results="mx.example.com; dmarc=pass header.from=example.com")
    result = ingest(agw, raw, PIPE)
    assert result.outcome == "new"
    send(agw)
    [mail] = relay.to("newcustomer@example.net")
    assert "your account is ready" in text_of(mail.raw)
    assert "#new" not in text_of(mail.raw)
    with agw.db.unit_of_work() as session:
        t = ops.get_ticket(session, result.ticket)
        assert (t.requester.email, t.status) == ("newcustomer@example.net", "answered")


def test_agent_without_proof_writing_new_is_an_ordinary_customer(agw, relay):
    raw = make_mail(sender=f"Agent <{AGENT}>", subject="x",
                    body="#new victim@example.net\nSend me your password.")
    result = ingest(agw, raw, PIPE)
    send(agw)
    assert relay.to("victim@example.net") == []
    with agw.db.unit_of_work() as session:
        assert ops.get_ticket(session, result.ticket).requester.email == AGENT


def test_a_new_tickets_subject_keeps_no_token_of_another(agw, relay):
    """A mistyped token, or the token of the ticket a linked one follows, is left out of
    the new ticket's subject, so its acknowledgement carries one token: its own."""
    number, _ = open_ticket(agw, relay)
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    mistyped = ingest(agw, make_mail(subject=f"Re: [MG#{typo}] typo"), PIPE)
    linked = ingest(agw, make_mail(sender="Other <other@example.org>",
                                   subject=f"Re: [MG#{number}] Printer on fire"), PIPE)
    assert mistyped.outcome == linked.outcome == "new"
    send(agw)
    acks = {strict(r.raw)["Subject"] for r in relay.received if r.rcpt_tos != [AGENT]
            and r.rcpt_tos != ["second@example.com"]}
    assert f"Re: [MG#{mistyped.ticket}] typo" in acks
    assert f"Re: [MG#{linked.ticket}] Printer on fire" in acks
    with agw.db.unit_of_work() as session:
        assert ops.get_ticket(session, linked.ticket).subject == "Printer on fire"
