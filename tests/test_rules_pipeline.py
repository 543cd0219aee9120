"""Rules and customer fields through the whole pipeline, on SQLite and PostgreSQL:
what a new ticket gets, what its acknowledgement says, what spam/ignore keep."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.config_rules import Choice, FieldSettings, Rule
from mailgate.gateway import Gateway
from mailgate.mail.tokens import format_token
from mailgate.models import Inbound, Outbox, Participant, Ticket, TicketEvent
from mailgate.outbound.render import Templates
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail

PIPE = Envelope("pipe")
BILLING = Choice(key="billing", en="Billing", fa="مالی", ka="ბილინგი")
TECHNICAL = Choice(key="technical", en="Technical", fa="فنی", ka="ტექნიკური")
LMS = Choice(key="lms", en="Learning platform", fa="سامانه آموزش")
FIELDS = FieldSettings(categories=(BILLING, TECHNICAL), products=(LMS,))


@pytest.fixture
def with_rules(settings, parser_pool, departments):
    """A gateway whose settings carry `rules` (and FIELDS): with_rules(Rule(...), ...)."""
    made = []

    def make(*rules: Rule, fields: FieldSettings = FIELDS) -> Gateway:
        made.append(Gateway(settings.replace(rules=rules, fields=fields), parser=parser_pool))
        return made[-1]
    yield make
    for gw in made:
        gw.close()


def saved(gw, number) -> tuple[Ticket, list[tuple[str, str | None]], list[str]]:
    """The ticket, its events (kind, new value), its Cc participants."""
    with gw.db.unit_of_work() as session:
        ticket = ops.get_ticket(session, number)
        ticket.assignee, ticket.department  # loaded while the session is open
        events = [(e.kind, e.new_value) for e in ticket.events]
        cc = [p.contact.email for p in session.scalars(
            select(Participant).where(Participant.ticket_id == ticket.id,
                                      Participant.role == "cc"))]
        return ticket, events, cc


def outbox(gw, kind: str) -> list[Outbox]:
    with gw.db.unit_of_work() as session:
        return list(session.scalars(select(Outbox).where(Outbox.kind == kind,
                                                         Outbox.channel == "email")))


def test_persian_field_lines_plus_tag_and_ack(with_rules):
    gw = with_rules()
    result = ingest(gw, make_mail(
        to="billing+lms@example.com", subject="شهریه دو بار کسر شد", x_priority="1 (Highest)",
        body="نوع درخواست: مالی\nاولویت: فوری\n\nسلام، شهریه ترم دو بار از کارتم کسر شد.\n"),
        PIPE)
    ticket, events, _ = saved(gw, result.ticket)
    assert (ticket.category, ticket.product, ticket.priority) == ("billing", None, "high")
    assert ("category", "billing") in events and ("priority", "high") in events
    # the plus tag asked for category "lms", which billing does not have: kept as text
    assert ("field_unknown", "category: lms") in events
    assert any("fields: priority high (اولویت: line); asked urgent, the most a customer may "
               "ask is high" in line for line in result.trace)
    # the message stays as written: the lines are read, not cut
    assert ticket.messages[0].text_body.startswith("نوع درخواست: مالی\n")
    [ack] = outbox(gw, "ack")
    assert ack.context["understood"] == [
        {"field": "category", "value": "billing",
         "labels": {"en": "Billing", "fa": "مالی", "ka": "ბილინგი"}},
        {"field": "priority", "value": "high", "labels": {}}]
    text = Templates(gw.settings).render("ack", ack.locale, ack.context).text
    assert "نوع درخواست: مالی · اولویت: بالا" in text


def test_english_lines_and_georgian_ack_labels(with_rules):
    gw = with_rules()
    result = ingest(gw, make_mail(to="support@example.com", importance="low",
                                  body="Type: technical\nProduct: Learning platform\n\nHi.\n"),
                    PIPE)
    ticket, _, _ = saved(gw, result.ticket)
    assert (ticket.category, ticket.product, ticket.priority) == ("technical", "lms", "low")
    [ack] = outbox(gw, "ack")
    text = Templates(gw.settings).render("ack", "ka", ack.context).text
    assert "ტიპი: ტექნიკური · პროდუქტი: Learning platform · პრიორიტეტი: დაბალი" in text
    english = Templates(gw.settings).render("ack", "en", ack.context).text
    assert "We understood: Type: Technical · Product: Learning platform · Priority: Low" in english


def test_plus_tag_sets_the_category(with_rules):
    gw = with_rules()
    result = ingest(gw, make_mail(to="support+Billing@example.com"), PIPE)
    ticket, events, _ = saved(gw, result.ticket)
    assert ticket.category == "billing" and ("category", "billing") in events
    assert ticket.department.key == "support"


def test_fields_on_a_reply_change_nothing(with_rules):
    gw = with_rules()
    first = ingest(gw, make_mail(), PIPE)
    reply = ingest(gw, make_mail(subject=f"Re: {format_token('MG', first.ticket)}",
                                 body="Priority: high\nType: billing\n"), PIPE)
    assert reply.outcome == "appended"
    ticket, _, _ = saved(gw, first.ticket)
    assert (ticket.priority, ticket.category) == ("normal", None)


def test_a_rule_sets_department_fields_assignee_tags_and_cc(with_rules):
    gw = with_rules(
        Rule(name="bank", from_domain=("bank.example",), tags=("vip",)),
        Rule(name="invoices", subject_words=("فاکتور", "invoice"), department="support",
             category="billing", priority="urgent", assignee="agent@example.com",
             cc=("accounts@example.com",), tags=("finance",), stop=True),
        Rule(name="never", tags=("never",)))
    result = ingest(gw, make_mail(sender="a@mail.bank.example", to="billing@example.com",
                                  subject="فاکتور ۴۲", body="Priority: low\n"), PIPE)
    ticket, events, cc = saved(gw, result.ticket)
    assert ticket.department.key == "support"  # moved from billing by the rule
    # the rule's priority wins over the customer's, and no ceiling holds the admin
    assert (ticket.category, ticket.priority, ticket.tags) == ("billing", "urgent",
                                                               ["vip", "finance"])
    assert ticket.assignee.email == "agent@example.com" and cc == ["accounts@example.com"]
    assert ("assigned", "agent@example.com") in events and ("tags", "vip, finance") in events
    assert "rules: 'bank' fired: tags" in result.trace
    assert "rules: 'invoices' fired: department, category, priority, assignee, tags, cc" \
        in result.trace
    assert "route: support by rule 'invoices' (was billing)" in result.trace


def test_a_rule_naming_no_department_or_agent_is_noted(with_rules):
    gw = with_rules(Rule(name="r", department="sales", assignee="gone@example.com"))
    result = ingest(gw, make_mail(), PIPE)
    ticket, _, _ = saved(gw, result.ticket)
    assert (ticket.department.key, ticket.assignee) == ("support", None)
    assert "rules: 'r': no department 'sales'; the routed one stays" in result.trace
    assert "fields: gone@example.com is not an active agent (rule 'r'); not assigned" \
        in result.trace


def test_acknowledge_false_skips_the_ack_only(with_rules):
    gw = with_rules(Rule(name="partners", from_domain=("example.org",), acknowledge=False))
    result = ingest(gw, make_mail(), PIPE)
    assert result.outcome == "new"
    assert outbox(gw, "ack") == [] and len(outbox(gw, "new_ticket")) == 1
    assert "notify: no acknowledgement, rule 'partners'" in result.trace


@pytest.mark.parametrize("action, outcome", [("spam", "spam"), ("ignore", "ignored")])
def test_spam_and_ignore_keep_the_message_and_open_no_ticket(with_rules, action, outcome):
    gw = with_rules(Rule(name="lottery", body_words=("lottery", "قرعه کشی"), action=action))
    result = ingest(gw, make_mail(body="You won the LOTTERY!\n"), PIPE)
    assert (result.outcome, result.ticket, result.queued) == (outcome, None, False)
    assert result.reason == f"rule 'lottery': {action}"
    with gw.db.unit_of_work() as session:
        row = session.get(Inbound, result.inbound_id)
        assert (row.outcome, row.ticket_id) == (outcome, None)
        assert "rules: 'lottery' fired: action" in row.trace
        assert session.scalar(select(Ticket.id)) is None
    assert gw.storage.raw.get(row.sha256)  # the raw message is kept


def test_message_explain_names_the_rule(with_rules, capsys):
    from mailgate.cli.tickets import message_explain

    gw = with_rules(Rule(name="lottery", subject="won", action="spam"))
    result = ingest(gw, make_mail(subject="You won"), PIPE)

    class Args:
        id, json = result.inbound_id, False
    message_explain(gw.settings, Args)
    out = capsys.readouterr().out
    assert f"inbound {result.inbound_id} via pipe" in out and ": spam" in out
    assert "rules: 'lottery' fired: action" in out


def test_an_agents_answer_is_never_swallowed_by_spam_or_ignore(with_rules):
    gw = with_rules(Rule(name="lottery", body_words=("lottery",), action="ignore"))
    first = ingest(gw, make_mail(body="I won a lottery?\n"), PIPE)
    assert first.outcome == "ignored"
    customer = ingest(gw, make_mail(body="Printer broken\n"), PIPE)
    answer = ingest(gw, make_mail(sender="Agent <agent@example.com>",
                                  subject=f"Re: {format_token('MG', customer.ticket)}",
                                  body="No lottery here, sorry.\n"), PIPE)
    # unproven here (no signed reference), so the agent step holds it for review, as it
    # does every unproven agent answer: the rule did not swallow it
    assert answer.outcome == "quarantined" and "held for review" in answer.reason


def test_ticket_views_carry_product_and_tags(with_rules):
    from mailgate.views import ticket_summary

    gw = with_rules(Rule(name="vip", from_domain=("example.org",), tags=("vip",)))
    result = ingest(gw, make_mail(body="Product: learning platform\n"), PIPE)
    with gw.db.unit_of_work() as session:
        summary = ticket_summary(ops.get_ticket(session, result.ticket), "MG")
    assert (summary["product"], summary["tags"]) == ("lms", ["vip"])


def test_over_smtp_through_the_daemons_delivery_workers(settings, parser_pool, departments):
    """The rules and fields reach the delivery worker processes with the settings: the
    envelope's plus tag sets the category, a spam rule's verdict is the SMTP reply."""
    import smtplib

    from tests.servers.daemon import DaemonThread

    daemon_settings = settings.replace(
        smtp={"listen": ("127.0.0.1:0",)}, http={"listen": "127.0.0.1:0"},
        daemon={"delivery_workers": 1}, fields=FIELDS,
        rules=(Rule(name="lottery", subject_words=("lottery",), action="spam"),))
    gw = Gateway(daemon_settings, parser=parser_pool)
    with DaemonThread(daemon_settings, gw) as daemon:
        with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
            client.sendmail("customer@example.org", ["support+billing@example.com"],
                            make_mail(to="support+billing@example.com"))
            client.mail("customer@example.org")
            client.rcpt("support@example.com")
            code, reply = client.data(make_mail(subject="You won the lottery"))
    assert code == 250 and reply.startswith(b"2.0.0 OK: spam (id ")
    with gw.db.unit_of_work() as session:
        assert session.scalars(select(Ticket.category)).all() == ["billing"]
        assert sorted(session.scalars(select(Inbound.outcome))) == ["new", "spam"]
    gw.close()
