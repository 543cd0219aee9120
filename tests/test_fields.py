"""Fields a customer sets by mail (mail/fields.py): field lines in en/fa/ka, #fields,
X-Priority/Importance, plus tags, the priority ceiling, values a department does not know."""
from __future__ import annotations

import pytest

from mailgate.config_rules import Choice, DepartmentFields
from mailgate.mail.fields import Asked, asked_by_tag, asked_in_headers, asked_in_text, understand

BILLING = Choice(key="billing", en="Billing", fa="مالی", ka="ბილინგი", words=("invoice",))
TECHNICAL = Choice(key="technical", en="Technical", fa="فنی", ka="ტექნიკური")
LMS = Choice(key="lms", en="Learning platform", fa="سامانه آموزش", ka="სასწავლო პლატფორმა")
FIELDS = DepartmentFields(categories=(BILLING, TECHNICAL), products=(LMS,))


def understood(text: str, fields: DepartmentFields = FIELDS) -> dict[str, str]:
    known, _ = understand(asked_in_text(text), fields)
    return {name: item.value for name, item in known.items()}


@pytest.mark.parametrize("text, expected", [
    # English
    ("Priority: high\nThe exam page is down.", {"priority": "high"}),
    ("Type: Billing\nProduct: Learning platform\n\nHi", {"category": "billing",
                                                        "product": "lms"}),
    ("category: INVOICE\n", {"category": "billing"}),
    ("#priority low\n#type technical\nhello", {"priority": "low", "category": "technical"}),
    # Persian: labels, Arabic yeh/kaf, a zero-width non-joiner, a full-width colon
    ("اولویت: فوری\nنوع درخواست: مالی\nسلام", {"priority": "high", "category": "billing"}),
    ("نوع درخواست: فني\nمحصول: سامانه‌آموزش", {"category": "technical", "product": "lms"}),
    ("اولویت：کم", {"priority": "low"}),
    ("#اولویت بالا", {"priority": "high"}),
    # Georgian, and Mtavruli capitals read as the same letters
    ("პრიორიტეტი: მაღალი\nტიპი: ბილინგი\nპროდუქტი: სასწავლო პლატფორმა",
     {"priority": "high", "category": "billing", "product": "lms"}),
    ("ᲢᲘᲞᲘ: ᲑᲘᲚᲘᲜᲒᲘ", {"category": "billing"}),
    # only at the top: after the first line that is not a field, nothing counts
    ("Hello,\nPriority: urgent\n", {}),
    ("\n\n  Priority: normal\nText\nType: billing", {"priority": "normal"}),
])
def test_field_lines(text, expected):
    assert understood(text) == expected


@pytest.mark.parametrize("text, value", [
    ("Priority: urgent", "high"),  # the default ceiling: a customer asks for high at most
    ("اولویت: خیلی فوری", "high"),
    ("პრიორიტეტი: სასწრაფო", "high"),
])
def test_priority_is_capped_at_the_ceiling(text, value):
    known, _ = understand(asked_in_text(text), FIELDS)
    assert known["priority"].value == value
    assert "the most a customer may ask is high" in known["priority"].note


def test_a_department_may_raise_or_lower_the_ceiling():
    assert understood("Priority: urgent", DepartmentFields(priority_ceiling="urgent")) == \
        {"priority": "urgent"}
    assert understood("Priority: high", DepartmentFields(priority_ceiling="normal")) == \
        {"priority": "normal"}


def test_values_the_department_does_not_know_are_kept_as_written():
    known, unknown = understand(asked_in_text("Type: Refunds\nPriority: whenever\nProduct: X"),
                                FIELDS)
    assert known == {}
    assert [(a.field, a.value) for a in unknown] == [
        ("category", "Refunds"), ("priority", "whenever"), ("product", "X")]


@pytest.mark.parametrize("headers, priority", [
    ({"x-priority": ["1 (Highest)"]}, "high"),  # mail clients say "important", not urgent
    ({"x-priority": ["2 (High)"]}, "high"),
    ({"x-priority": ["3"]}, "normal"),
    ({"x-priority": ["5 (Lowest)"]}, "low"),
    ({"importance": ["High"]}, "high"),
    ({"importance": ["low"]}, "low"),
    ({"x-msmail-priority": ["High"]}, "high"),
    ({"x-priority": ["banana"]}, None),
    ({}, None),
])
def test_mail_client_priority(headers, priority):
    asked = asked_in_headers(headers)
    assert (asked[0].value if asked else None) == priority


def test_plus_tag_sets_the_category_or_what_the_department_says():
    assert asked_by_tag("billing", FIELDS) == [Asked("category", "billing", "plus tag")]
    assert asked_by_tag("lms", DepartmentFields(plus_tag="product")) == \
        [Asked("product", "lms", "plus tag")]
    assert asked_by_tag("billing", DepartmentFields(plus_tag="none")) == []
    assert asked_by_tag(None, FIELDS) == []


def test_a_later_ask_wins():
    asked = asked_by_tag("technical", FIELDS) + asked_in_headers({"importance": ["low"]}) \
        + asked_in_text("Type: billing\nPriority: high")
    known, unknown = understand(asked, FIELDS)
    assert (known["category"].value, known["priority"].value, unknown) == \
        ("billing", "high", [])
    assert known["category"].labels == {"en": "Billing", "fa": "مالی", "ka": "ბილინგი"}
