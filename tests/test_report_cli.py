"""`mailgate report` on SQLite and PostgreSQL: JSON, CSV, the readable table, --by,
--department, the range, and the mistakes an admin can make."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest

from mailgate.db import Database
from mailgate.models import Contact, Department, SlaAlert, Ticket
from mailgate.reports import COLUMNS
from tests.test_cli import mailgate  # noqa: F401  (fixture)

BERLIN = ZoneInfo("Europe/Berlin")
SERVICE = """
[service]
first_response = { normal = 4 }
[service.calendar]
timezone = "Europe/Berlin"
days = ["mon", "tue", "wed", "thu", "fri"]
hours = ["09:00-17:00"]
"""


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def report(mailgate, db_url):
    """`mailgate report …` over four tickets of November 2026 (Berlin office hours,
    first answer promised within 4 working hours): support's Friday-evening one
    answered Monday morning (1.0 h), one answered in 5.0 h with a missed deadline and
    resolved in 8.0 h, one answered in 0.5 h; billing's, the week before, in 1.0 h."""
    with mailgate.config.open("a") as config:
        config.write(SERVICE)
    mailgate("department", "add", "support")
    mailgate("department", "add", "billing")
    database = Database(db_url)
    try:
        with database.unit_of_work() as session:
            add_tickets(session)
    finally:
        database.dispose()

    def run(*args: str, expect: int = 0):
        return mailgate("report", *args, expect=expect)
    return run


def add_tickets(session) -> None:
    support, billing = (session.query(Department).filter_by(key=key).one()
                        for key in ("support", "billing"))
    someone = Contact(email="someone@example.org")
    late = Ticket(department=support, requester=someone, created_at=at(23, 10),
                  first_response_at=at(23, 15), resolved_at=at(24, 10), status="resolved")
    session.add_all([
        Ticket(department=support, requester=someone, category="refund",
               created_at=at(20, 16, 30), first_response_at=at(23, 9, 30), status="answered"),
        late,
        Ticket(department=support, requester=someone, created_at=at(24, 9),
               first_response_at=at(24, 9, 30), status="answered"),
        Ticket(department=billing, requester=someone, created_at=at(11, 11),
               first_response_at=at(11, 12), status="answered"),
    ])
    session.flush()
    session.add(SlaAlert(ticket_id=late.id, kind="first_response", stage="escalation",
                         due_at=at(23, 14)))


NOVEMBER = ("--since", "2026-11-01", "--until", "2026-11-30")


def test_json_has_a_line_per_department_and_category(report):
    found = json.loads(report(*NOVEMBER, "--json").text)
    assert {k: found[k] for k in ("since", "until", "timezone", "by", "unit")} == {
        "since": "2026-11-01T00:00:00+01:00", "until": "2026-12-01T00:00:00+01:00",
        "timezone": "Europe/Berlin", "by": None, "unit": "working hours"}
    assert [(r["department"], r["category"]) for r in found["rows"]] == [
        ("billing", "*"), ("billing", None), ("support", "*"), ("support", None),
        ("support", "refund")]
    assert found["rows"][2] == {
        "period": "all", "department": "support", "category": "*", "created": 3,
        "answered": 3, "first_response_median_hours": 1.0, "first_response_mean_hours": 2.2,
        "first_response_p90_hours": 5.0, "resolved": 1, "resolution_median_hours": 8.0,
        "resolution_mean_hours": 8.0, "resolution_p90_hours": 8.0, "sla_breaches": 1,
        "promise_kept": 2, "promise_broken": 1, "within_promise": 0.667}
    refund = found["rows"][4]
    assert (refund["created"], refund["first_response_median_hours"],
            refund["within_promise"]) == (1, 1.0, 1.0)


def test_csv_by_week_has_one_row_per_period_department_and_category(report):
    rows = list(csv.DictReader(io.StringIO(report(*NOVEMBER, "--by", "week", "--csv").text)))
    assert tuple(rows[0]) == COLUMNS
    assert [(r["period"], r["department"], r["category"], r["created"]) for r in rows] == [
        ("2026-11-09", "billing", "*", "1"), ("2026-11-09", "billing", "", "1"),
        ("2026-11-16", "support", "*", "1"), ("2026-11-16", "support", "refund", "1"),
        ("2026-11-23", "support", "*", "2"), ("2026-11-23", "support", "", "2")]
    week = rows[4]
    assert (week["first_response_median_hours"], week["first_response_p90_hours"],
            week["sla_breaches"], week["within_promise"]) == ("2.8", "5.0", "1", "0.5")


def test_one_department_by_day(report):
    found = json.loads(report(*NOVEMBER, "--department", "billing", "--by", "day",
                              "--json").text)
    assert [(r["period"], r["department"], r["category"]) for r in found["rows"]] == [
        ("2026-11-11", "billing", "*"), ("2026-11-11", "billing", None)]


def test_the_range_takes_whole_days_and_moments(report):
    def created(*args: str) -> int:
        rows = json.loads(report(*args, "--json").text)["rows"]
        return sum(r["created"] for r in rows if r["category"] == "*")

    assert created("--since", "2026-11-23", "--until", "2026-11-23") == 1  # Monday's
    assert created("--since", "2026-11-23T10:00", "--until", "2026-11-24T09:00") == 1
    assert created("--since", "2026-11-23T09:00:00+00:00", "--until", "2026-11-25") == 2
    assert created("--since", "2026-11-20", "--until", "2026-11-30T00:00+01:00") == 3
    assert created("--until", "2026-01-01") == 0  # 30 days before by default


def test_the_table_says_working_hours(report):
    text = report(*NOVEMBER).text
    lines = text.splitlines()
    assert "times in working hours" in lines[0] and "(Europe/Berlin)" in lines[0]
    assert lines[1].split() == ["PERIOD", "DEPARTMENT", "CATEGORY", "CREATED", "ANSWERED",
                                "FIRST", "RESPONSE", "RESOLVED", "RESOLUTION", "SLA",
                                "BREACHES", "WITHIN", "PROMISE"]
    assert lines[4].split() == ["all", "support", "*", "3", "3", "1.0", "/", "2.2", "/",
                                "5.0", "1", "8.0", "/", "8.0", "/", "8.0", "1", "67%",
                                "(2/3)"]
    assert lines[5].split()[:3] == ["all", "support", "(none)"]


@pytest.mark.parametrize("args, code, says", [
    (("--department", "nope"), 65, "no department 'nope'"),
    (("--since", "2026-12-01", "--until", "2026-11-01"), 64, "--since must be before"),
    (("--since", "last week"), 64, "--since: not a date"),
])
def test_mistakes_are_named(report, args, code, says):
    assert says in report(*args, expect=code).stderr.decode()


def test_text_cells_never_become_spreadsheet_formulas():
    from mailgate.cli.report import cell

    assert [cell(v) for v in ("refund", "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)",
                              "\tx", "")] == [
        "refund", "'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "'\tx", ""]
