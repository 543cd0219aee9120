"""Merging tickets (#15): an agent's `#merge NUMBER` and `mailgate ticket merge FROM INTO`."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.cli import main
from mailgate.config import load_settings
from mailgate.mail.commands import split_commands
from mailgate.mail.tokens import ticket_number
from mailgate.models import Outbox
from mailgate.pipeline import ingest
from tests.mails import make_mail
from tests.test_agents import (AGENT, CUSTOMER, PIPE, admin, agent_reply, agw,  # noqa: F401
                               relay, send, strict, text_of)

OTHER = "other@example.org"
NOWHERE = ticket_number(99990)  # a valid number no ticket has


def new_request(gw, relay, sender=CUSTOMER, to="support@example.com", subject="Printer"):
    """A customer's new ticket: (number, the agents' notification of it, the ack)."""
    result = ingest(gw, make_mail(sender=f"Someone <{sender}>", to=to, subject=subject), PIPE)
    assert result.outcome == "new"
    send(gw)
    notification = relay.to(AGENT)[-1] if to == "support@example.com" else None
    return result.ticket, notification, relay.to(sender)[-1]


def ticket(gw, number):
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        return {"status": t.status, "merged_into": t.merged_into_id and ops.final(
                    session, t).number,
                "messages": [(m.kind, m.author_email) for m in t.messages],
                "events": [(e.kind, e.old_value, e.new_value) for e in t.events],
                "participants": sorted((p.contact.email, p.role) for p in t.participants),
                "first_response_due": t.first_response_due}


def merged_mail(gw) -> list[list[str]]:
    with gw.db.unit_of_work() as session:
        return [row.recipients for row in session.scalars(
            select(Outbox).where(Outbox.kind == "merged").order_by(Outbox.id))]


def command_results(gw) -> list[str]:
    with gw.db.unit_of_work() as session:
        return [str(row.context["errors"]) for row in session.scalars(
            select(Outbox).where(Outbox.kind == "command_result"))]


def test_the_command_reads_a_ticket_number():
    [ok, hashed, typo] = split_commands("#merge 100023\n#merge #100023\n#merge 100024\n")[0]
    assert ok.error is None and hashed.error is None
    assert typo.error.startswith("#merge takes the number")


def with_targets(gw, tmp_path) -> None:
    path = tmp_path / "service.toml"
    path.write_text("[service]\nfirst_response = { normal = 8 }\nresolution = { normal = 32 }\n")
    gw.settings = gw.settings.replace(service=load_settings(path, env={}).service)


def test_an_agent_merges_a_customers_second_request(agw, relay, tmp_path):
    with_targets(agw, tmp_path)
    first, _, _ = new_request(agw, relay)
    second, notification, second_ack = new_request(agw, relay)
    with agw.db.unit_of_work() as session:  # stale: the merge recomputes them
        ops.get_ticket(session, first).first_response_due = None
    result = ingest(agw, agent_reply(notification, f"#merge {first}"), PIPE)
    assert f"command: #merge {first}" in result.trace
    send(agw)
    old, new = ticket(agw, second), ticket(agw, first)
    assert (old["status"], old["merged_into"], old["messages"]) == ("closed", first, [])
    assert old["events"] == [("status", "new", "closed"), ("merged", None, first)]
    assert new["messages"] == [("customer_reply", CUSTOMER), ("customer_reply", CUSTOMER),
                               ("agent_reply", AGENT)]
    assert ("created", None, "new") in new["events"][1:]  # the second ticket's, moved
    assert new["events"][-1] == ("merged", second, None)
    assert new["participants"] == [(CUSTOMER, "requester")]  # not twice
    assert new["first_response_due"] is not None
    # the customer hears once, about the ticket that goes on; no "closed" mail
    assert merged_mail(agw) == [[CUSTOMER]]
    notice = strict(relay.to(CUSTOMER)[-1].raw)
    assert f"[MG#{first}]" in notice["Subject"] and second in text_of(relay.to(CUSTOMER)[-1].raw)
    assert command_results(agw) == []
    # a reply in the old thread (its token, its ack's Message-ID) lands in the new ticket
    reply = ingest(agw, make_mail(subject=f"Re: {second_ack_subject(second_ack)}",
                                  in_reply_to=strict(second_ack.raw)["Message-ID"],
                                  body="Any news?\n"), PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first)
    by_id_only = ingest(agw, make_mail(subject="Re: printer",
                                       in_reply_to=strict(second_ack.raw)["Message-ID"],
                                       body="Still broken.\n"), PIPE)
    assert (by_id_only.outcome, by_id_only.ticket) == ("appended", first)


def second_ack_subject(ack) -> str:
    return strict(ack.raw)["Subject"]


def test_the_agents_text_after_merge_is_relayed_and_the_old_ticket_stays_closed(agw, relay):
    first, _, _ = new_request(agw, relay)
    second, notification, _ = new_request(agw, relay)
    ingest(agw, agent_reply(notification, f"#merge {first}\n\nWe carry on in {first}."), PIPE)
    send(agw)
    old, new = ticket(agw, second), ticket(agw, first)
    assert (old["status"], old["merged_into"]) == ("closed", first)
    assert ("agent_reply", AGENT) in new["messages"]
    assert any(f"We carry on in {first}." in text_of(m.raw) for m in relay.to(CUSTOMER))


def test_two_customers_merged_by_an_admin_each_hear_once(agw, relay, admin):
    first, _, _ = new_request(agw, relay)
    second, _, other_ack = new_request(agw, relay, sender=OTHER)
    out = admin("ticket", "merge", second, first)
    assert out.strip() == f"#{second} merged into #{first}, 2 requester(s) told"
    send(agw)
    assert sorted(merged_mail(agw)) == [[CUSTOMER], [OTHER]]
    new = ticket(agw, first)
    assert new["participants"] == [(CUSTOMER, "requester"), (OTHER, "cc")]
    assert [m[1] for m in new["messages"]] == [CUSTOMER, OTHER]
    # the other customer's reply to their own ack goes to the ticket that goes on
    reply = ingest(agw, make_mail(sender=f"Other <{OTHER}>", subject="Re: printer",
                                  in_reply_to=strict(other_ack.raw)["Message-ID"]), PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first)
    # and the merged notice threads on their side of the thread only
    notice = strict(relay.to(OTHER)[-1].raw)
    assert notice["In-Reply-To"] is not None and "mg.n." not in (notice["References"] or "")


def test_merging_into_a_merged_ticket_follows_it(agw, relay, admin):
    first, _, _ = new_request(agw, relay)
    second, _, _ = new_request(agw, relay)
    third, notification, _ = new_request(agw, relay)
    admin("ticket", "merge", second, first)
    ingest(agw, agent_reply(notification, f"#merge {second}"), PIPE)
    assert ticket(agw, third)["merged_into"] == first
    assert command_results(agw) == []


@pytest.mark.parametrize("arg, why", [
    ("SELF", "cannot be merged into itself"),
    ("100024", "#merge takes the number"),  # a wrong check digit
    (NOWHERE, f"no ticket {NOWHERE}"),
    ("BILLING", "where you are not an agent"),
])
def test_a_merge_refused_is_reported_to_the_agent(agw, relay, arg, why):
    billing, _, _ = new_request(agw, relay, to="billing@example.com")
    number, notification, _ = new_request(agw, relay)
    target = {"SELF": number, "BILLING": billing}.get(arg, arg)
    ingest(agw, agent_reply(notification, f"#merge {target}"), PIPE)
    assert ticket(agw, number)["merged_into"] is None
    assert ticket(agw, number)["status"] == "new"
    [errors] = command_results(agw)
    assert why in errors and f"#merge {target}" in errors
    assert merged_mail(agw) == []


def test_the_command_line_refuses_what_cannot_be_merged(agw, relay, admin, capsys):
    first, _, _ = new_request(agw, relay)
    second, _, _ = new_request(agw, relay)
    admin("ticket", "merge", second, first)
    config = Path(agw.settings.storage.dir).parent / "admin.toml"  # the admin fixture's

    def refused(*args) -> str:
        capsys.readouterr()
        assert main(["--config", str(config), "ticket", "merge", *args]) != 0
        return capsys.readouterr().err

    assert f"#{second} is already merged into #{first}" in refused(second, first)
    assert "cannot be merged into itself" in refused(first, second)  # second is first now
    assert f"no ticket {NOWHERE}" in refused(NOWHERE, first)
    assert f"no ticket {NOWHERE}" in refused(first, NOWHERE)
    assert merged_mail(agw) == [[CUSTOMER]]


def test_an_agent_answering_the_old_tickets_notification_is_still_proven(agw, relay):
    """Mail we signed about a ticket that was merged away proves its reader on the
    ticket it went into: the agent's answer is relayed, not held as unverified."""
    first, _, _ = new_request(agw, relay)
    second, notification, _ = new_request(agw, relay)
    ingest(agw, agent_reply(notification, f"#merge {first}"), PIPE)
    late = ingest(agw, agent_reply(notification, "Sorry for the wait, replacing it today.")
                  .replace(b"Message-ID: <", b"Message-ID: <late-", 1), PIPE)
    assert (late.outcome, late.ticket) == ("appended", first), late.trace
    assert any("verified by signed notification" in line for line in late.trace)
    assert ("agent_reply", AGENT) in ticket(agw, first)["messages"]
