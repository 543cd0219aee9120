"""The "my tickets" request, read from a subject or first line (mail/ticket_query.py):
a table of cases, pure."""
from __future__ import annotations

import datetime as dt

import pytest

from mailgate.config_customers import LIST_WORDS
from mailgate.mail.ticket_query import CLOSED, OPEN, asks, find_request

LABELS = {"In review": "in_progress", "در حال بررسی": "in_progress",
          "پایان یافته": "resolved", "მუშავდება": "in_progress"}
NOV_1 = dt.date(2026, 11, 1)


@pytest.mark.parametrize("subject,body,expected", [
    ("#tickets", "", dict(where="subject")),
    ("#TICKETS", "", dict(where="subject")),
    ("Re: #tickets", "", dict(where="subject")),
    ("Hello", "\n\n  #tickets open\nmore text", dict(where="first line", statuses=OPEN)),
    ("#tickets open", "", dict(statuses=OPEN)),
    ("#tickets باز", "", dict(statuses=OPEN)),
    ("#tickets ღია", "", dict(statuses=OPEN)),
    ("#tickets closed", "", dict(statuses=CLOSED)),
    ("#tickets all", "", dict(statuses=frozenset())),
    ("#tickets in review", "", dict(statuses={"in_progress"})),
    ("#tickets in_progress", "", dict(statuses={"in_progress"})),
    ("#tickets پایان یافته", "", dict(statuses={"resolved"})),
    ("#tickets since 2026-11-01", "", dict(since=NOV_1)),
    ("#tickets 2026/11/01", "", dict(since=NOV_1)),
    ("#tickets since 1405-08-10", "", dict(since=NOV_1)),
    ("#tickets از ۱۴۰۵/۰۸/۱۰", "", dict(since=NOV_1)),
    ("#tickets از ١٤٠٥/٠٨/١٠", "", dict(since=NOV_1)),  # Arabic-Indic digits
    ("#tickets 2026-11-01-დან", "", dict(since=NOV_1)),
    ("#tickets since 2026-02-30", "", dict(since=None, notes=("2026-02-30",))),
    ("#tickets billing", "", dict(category="billing")),
    ("#tickets open billing since 2026-11-01", "",
     dict(statuses=OPEN, category="billing", since=NOV_1)),
    ("my tickets", "", dict(language="en")),
    ("My Tickets: open", "", dict(statuses=OPEN, language="en")),
    ("my tickets billing", "", dict(category="billing", language="en")),
    ("تیکت‌های من", "", dict(language="fa")),
    ("تیکت های من", "", dict(language="fa")),  # a space for the zero-width non-joiner
    ("تيكت‌هاي من", "", dict(language="fa")),  # Arabic yeh and kaf
    ("\u200fتیکت‌های من\u200f باز", "", dict(statuses=OPEN, language="fa")),  # RLM marks
    ("ჩემი ბილეთები", "", dict(language="ka")),
    ("ჩემი ბილეთები დახურული", "", dict(statuses=CLOSED, language="ka")),
], ids=lambda v: v if isinstance(v, str) and v else None)
def test_requests(subject, body, expected):
    query = find_request(subject, body, LIST_WORDS, LABELS, frozenset({"billing"}))
    assert query is not None
    for name, value in expected.items():
        got = getattr(query, name)
        assert (set(got) if isinstance(got, frozenset) else got) == \
            (set(value) if isinstance(value, (set, frozenset)) else value), name


@pytest.mark.parametrize("subject,body", [
    ("My tickets are gone", ""),  # plain words followed by words no filter knows
    ("my tickets disappeared since 2026-11-01", ""),
    ("Question about #ticketsystem", ""),
    ("Hello", "Hi,\nmy tickets are gone\n"),
    ("Hello", "Please list #tickets"),  # not at the start of the line
    ("[MG#100017] my tickets", ""),
    ("", ""),
])
def test_not_requests(subject, body):
    assert find_request(subject, body, LIST_WORDS, LABELS, frozenset({"billing"})) is None


def test_configured_words_replace_the_defaults():
    words = ("#list", "وضعیت من")
    assert find_request("#list open", "", words).statuses == OPEN
    assert find_request("وضعیت من", "", words).language == "fa"
    assert find_request("#tickets", "", words) is None


def test_asks_is_the_cheap_first_look():
    assert asks("Re: my tickets", "", LIST_WORDS)
    assert asks("x", "\n ჩემი ბილეთები", LIST_WORDS)
    assert not asks("Printer on fire", "It is on fire", LIST_WORDS)


def test_the_trace_line_says_what_was_asked():
    query = find_request("#tickets open since 2026-11-01 billing 2026-13-01", "", LIST_WORDS)
    assert query.describe() == ("in the subject, status answered/in_progress/new/open, "
                                "since 2026-11-01, category 'billing', not a date: 2026-13-01")
