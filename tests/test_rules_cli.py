"""`mailgate rule list|test` and what `mailgate check` says about rules: an admin sees
the rules in order and tries a message against them without storing anything."""
from __future__ import annotations

import json

from sqlalchemy import create_engine, func, select

from mailgate.models import Inbound, Ticket
from tests.mails import make_mail
from tests.test_cli import mailgate  # noqa: F401  (the fixture: commands in-process)

RULES = """
[[fields.categories]]
key = "billing"
en = "Billing"
fa = "مالی"
ka = "ბილინგი"
[[fields.products]]
key = "lms"
en = "Learning platform"
[[rules]]
name = "exam week"
subject_words = ["امتحان", "exam"]
priority = "urgent"
tags = ["exam"]
[[rules]]
name = "partners"
from_domain = ["partner.example"]
acknowledge = false
stop = true
[[rules]]
name = "lottery"
match = "any"
body_words = ["lottery", "قرعه کشی"]
header = { "X-Mailer" = "^MassMailer" }
action = "spam"
"""


def setup(mailgate, extra: str = "") -> None:
    with open(mailgate.config, "a", encoding="utf-8") as fh:
        fh.write(RULES + extra)
    mailgate("department", "add", "support")
    mailgate("address", "add", "support@example.com", "--department", "support")


def counts(mailgate) -> tuple[int, int]:
    url = mailgate.config.read_text().split('url = "')[1].split('"')[0]
    engine = create_engine(url)
    with engine.connect() as conn:
        found = (conn.scalar(select(func.count()).select_from(Inbound)),
                 conn.scalar(select(func.count()).select_from(Ticket)))
    engine.dispose()
    return found


def test_rule_list_in_order_with_the_fields(mailgate):
    setup(mailgate)
    text = mailgate("rule", "list").text
    assert text.splitlines()[:3] == [
        '1. exam week — all of: subject_words ["امتحان", "exam"]; then go on',
        '     priority = "urgent"', '     tags = ["exam"]']
    assert "3. lottery — any of: body_words" in text and '     action = "spam"' in text
    assert "  category billing: Billing / مالی / ბილინგი" in text
    listed = json.loads(mailgate("rule", "list", "--json").text)
    assert [r["name"] for r in listed["rules"]] == ["exam week", "partners", "lottery"]
    assert listed["rules"][2]["conditions"]["header"] == {"x-mailer": "^MassMailer"}


def test_rule_test_says_what_would_happen_and_stores_nothing(mailgate):
    setup(mailgate)
    eml = mailgate.tmp_path / "exam.eml"
    eml.write_bytes(make_mail(to="support+billing@example.com", subject="سوال امتحان",
                              body="اولویت: فوری\nمحصول: Moodle\n\nسلام\n"))
    text = mailgate("rule", "test", str(eml)).text
    assert "rules fired: exam week\n" in text and "department: support\n" in text
    assert "field category: billing (plus tag)\n" in text
    assert "field priority: high (اولویت: line); asked urgent, the most a customer may ask " \
        "is high\n" in text
    assert "not understood, kept as text: product 'Moodle' (محصول: line)\n" in text
    assert 'rule sets priority: "urgent"\n' in text
    assert "acknowledgement: yes" in text
    assert counts(mailgate) == (0, 0)


def test_rule_test_spam_and_no_acknowledgement(mailgate):
    setup(mailgate)
    spam = mailgate.tmp_path / "spam.eml"
    spam.write_bytes(make_mail(body="Claim your prize\n", x_mailer="MassMailer 2.0"))
    verdict = json.loads(mailgate("rule", "test", str(spam), "--json").text)
    assert (verdict["outcome"], verdict["reason"], verdict["fired"]) == \
        ("spam", "rule 'lottery': spam", ["lottery"])
    partner = mailgate.tmp_path / "partner.eml"
    partner.write_bytes(make_mail(sender="ops@partner.example"))
    verdict = json.loads(mailgate("rule", "test", str(partner), "--json").text)
    assert verdict["acknowledgement"] == "no: rule 'partners'"
    assert counts(mailgate) == (0, 0)


def test_rule_test_of_a_missing_file(mailgate):
    ran = mailgate("rule", "test", str(mailgate.tmp_path / "none.eml"), expect=66)
    assert b"cannot read" in ran.stderr


def test_check_names_rules_the_database_does_not_back(mailgate):
    setup(mailgate, '[[rules]]\nname = "sales"\ntag = ["sales"]\ndepartment = "sale"\n'
                    'assignee = "gone@example.com"\n')
    ran = mailgate("check", expect=78)
    assert 'rules[3].department: no department "sale" in the database' in ran.text
    assert "rules[3].assignee: gone@example.com is not an active agent" in ran.text
