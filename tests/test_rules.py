"""The admin's [[rules]]: each condition and how they combine (mail/rules.py, pure),
and what loading the file says about them (config_rules.py)."""
from __future__ import annotations

import time

import pytest

from mailgate.config import ConfigError, load_settings
from mailgate.config_rules import Conditions, Rule
from mailgate.mail.parse import parse_message
from mailgate.mail.rules import Facts, evaluate, facts_of, fires, read_headers
from tests.mails import make_mail

RAW = make_mail(
    sender="Ali <ali@mail.bank.example>", to="support+billing@example.com",
    subject="درخواست بازپرداخت‌ها — Refund", body="سلام، مي‌خواهم پولم را پس بگیرم.\n"
    "ᲒᲐᲛᲐᲠᲯᲝᲑᲐ. Invoice INV-2031 attached.\n",
    attachments=[("scan.PDF", "application/pdf", b"%PDF-1.4\n%%EOF\n")],
    x_mailer="=?utf-8?q?Microsoft_Outlook?= 16.0")
FACTS = facts_of(parse_message(RAW), ["support+billing@example.com", "cc@example.org"],
                 read_headers(RAW, {"x-mailer", "list-id"}))


@pytest.mark.parametrize("conditions, holds", [
    ({"recipient": ("support@example.com",)}, True),  # with or without its +tag
    ({"recipient": ("support+billing@example.com",)}, True),
    ({"recipient": ("sales@example.com",)}, False),
    ({"tag": ("BILLING",)}, True),
    ({"tag": ("sales",)}, False),
    ({"from_address": ("ALI@mail.bank.example",)}, True),
    ({"from_domain": ("bank.example",)}, True),  # subdomains too
    ({"from_domain": ("@mail.bank.example",)}, True),
    ({"from_domain": ("ank.example",)}, False),
    ({"subject": r"refund|بازپرداخت"}, True),
    ({"subject": r"^Refund"}, False),
    ({"subject_words": ("بازپرداخت",)}, True),  # a Persian suffix after a non-joiner
    ({"subject_words": ("بازپرد",)}, False),  # words, not parts of words
    ({"body": r"INV-\d{4}"}, True),
    ({"body_words": ("می‌خواهم",)}, True),  # Arabic yeh in the text: the same word
    ({"body_words": ("می خواهم", "nothing")}, True),  # a space for the non-joiner
    ({"body_words": ("გამარჯობა",)}, True),  # Mtavruli capitals: the same letters
    ({"body_words": ("invoice attached",)}, False),
    ({"header": (("x-mailer", "^microsoft outlook"),)}, True),
    ({"header": (("x-mailer", "thunderbird"),)}, False),
    ({"header": (("list-id", "."),)}, False),  # a header the message lacks
    ({"attachment": True}, True),
    ({"attachment": False}, False),
    ({"attachment_type": ("application/pdf",)}, True),
    ({"attachment_type": ("image/*",)}, False),
    ({"attachment_type": (".pdf",)}, True),
])
def test_each_condition(conditions, holds):
    assert fires(Rule(name="r", **conditions), FACTS, []) is holds


def test_all_or_any_of_a_rules_conditions():
    both = {"tag": ("billing",), "from_domain": ("elsewhere.example",)}
    assert not fires(Rule(name="r", **both), FACTS, [])
    assert fires(Rule(name="r", match="any", **both), FACTS, [])
    assert fires(Rule(name="every message"), FACTS, [])


def test_unless_any_exception_holds_the_rule_does_not_fire():
    def rule(**unless):
        return Rule(name="r", tag=("billing",), unless=Conditions(**unless))
    assert fires(rule(), FACTS, [])
    assert not fires(rule(from_domain=("bank.example",)), FACTS, [])
    assert not fires(rule(subject_words=("nothing",), attachment=True), FACTS, [])
    assert fires(rule(subject_words=("nothing",), attachment=False), FACTS, [])
    assert not fires(rule(header=(("x-mailer", "outlook"),)), FACTS, [])


def test_rules_in_order_all_match_unless_one_stops():
    rules = (Rule(name="tag vip", from_domain=("bank.example",), tags=("vip",), priority="low"),
             Rule(name="billing", tag=("billing",), category="billing", priority="urgent",
                  cc=("Accounts@Example.com",), stop=True),
             Rule(name="never tried", subject="refund", department="sales"))
    ruling = evaluate(rules, FACTS)
    assert ruling.fired == ["tag vip", "billing"]
    assert (ruling.priority, ruling.category, ruling.tags, ruling.cc, ruling.department) == \
        ("urgent", "billing", ["vip"], ["accounts@example.com"], "")
    assert ruling.by == {"tags": "tag vip", "priority": "billing", "category": "billing",
                         "cc": "billing"}


@pytest.mark.parametrize("action", ["spam", "ignore"])
def test_spam_or_ignore_ends_the_rules(action):
    ruling = evaluate((Rule(name="junk", subject="refund", action=action),
                       Rule(name="after", tags=("x",))), FACTS)
    assert (ruling.fired, ruling.action, ruling.tags) == (["junk"], action, [])


def test_acknowledge_false_stays_once_a_rule_said_so():
    ruling = evaluate((Rule(name="quiet", tag=("billing",), acknowledge=False),
                       Rule(name="later", tags=("x",))), FACTS)
    assert ruling.acknowledge is False and ruling.fired == ["quiet", "later"]


def test_a_pattern_that_runs_too_long_does_not_hold_and_is_noted():
    facts = Facts((), "", "", "a" * 5000 + "!", {}, ())
    started = time.monotonic()
    ruling = evaluate((Rule(name="slow", body=r"(a|aa)+$", tags=("x",)),), facts)
    assert time.monotonic() - started < 5  # bounded, whatever the machine (50 ms nominal)
    assert ruling.fired == []
    assert ruling.notes == ["rule 'slow': body: pattern '(a|aa)+$' ran out of time (0.05s); "
                            "taken as no match"]


def load(tmp_path, text: str):
    path = tmp_path / "mailgate.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env={})


def problems(tmp_path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.problems


def test_rules_and_fields_load(tmp_path):
    settings = load(tmp_path, """
[fields]
priority_ceiling = "normal"
[[fields.categories]]
key = "billing"
fa = "مالی"
[fields.departments.lms]
plus_tag = "product"
[[fields.departments.lms.products]]
key = "moodle"
en = "Moodle"
[[rules]]
name = "exam week"
subject_words = ["امتحان", "exam"]
header = { "X-Mailer" = "^Outlook" }
attachment = true
department = "lms"
product = "moodle"
priority = "urgent"
[rules.unless]
from_domain = ["staff.example"]
subject = "^(re|aw|پاسخ):"
""")
    lms = settings.fields.department("lms")
    assert (lms.plus_tag, lms.priority_ceiling, [c.key for c in lms.categories]) == \
        ("product", "normal", ["billing"])  # a department's missing keys are [fields]'
    assert settings.fields.department("other").products == ()
    rule = settings.rules[0]
    assert (rule.header, rule.attachment, rule.conditions()) == (
        (("x-mailer", "^Outlook"),), True,
        ["subject_words", "header", "attachment"])
    assert rule.actions() == ["department", "product", "priority"]
    assert rule.unless.conditions() == ["from_domain", "subject"]


def test_what_loading_says_about_wrong_rules(tmp_path):
    found = problems(tmp_path, """
[[fields.categories]]
key = "billing"
[[fields.categories]]
key = "billing"
[[rules]]
name = "a"
subject = "(unclosed"
header = { "List-Id" = "[" }
attachment = "yes"
priority = "asap"
[[rules]]
name = "a"
category = "refunds"
action = "spam"
""")
    assert ("fields.categories", '"billing" twice') in found
    assert ("rules[0].subject", 'not a regular expression: "(unclosed": missing ) at '
            "position 9") in found
    assert any(key == "rules[0].header.List-Id" for key, _ in found)
    assert ("rules[0].attachment", 'expected true or false, got "yes"') in found
    assert ("rules[0].priority", 'must be one of low, normal, high, urgent; got "asap"') in found


def test_cross_rule_problems(tmp_path):
    found = problems(tmp_path, """
[[fields.categories]]
key = "billing"
[[rules]]
name = "a"
category = "billing"
[[rules]]
name = "a"
category = "refunds"
action = "spam"
""")
    assert found == [
        ("rules[1].name", '"a" again'),
        ("rules[1].action", "spam ends the message's path: no other action would run"),
        ("rules[1].category", '"refunds" is not among the categories of [fields] or any '
         "[fields.departments.*]")]


def test_the_readme_examples_load(tmp_path):
    """The four portals' forms in README's "Rules and fields" load as written."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Rules and fields")[1].split("\n## ")[0]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    settings = load(tmp_path, "\n".join(blocks))
    assert len(blocks) == 4 and len(settings.rules) >= 8
    assert {key for key, _ in settings.fields.departments} == {"elearning", "citizens",
                                                               "support"}
