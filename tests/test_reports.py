"""Service figures (mailgate/reports.py): one ticket in working hours, statistics,
periods and the lines of a report, as tables of cases; the rows read from SQLite and
PostgreSQL; the gauges per department a running daemon serves at /metrics."""
from __future__ import annotations

import datetime as dt
import urllib.request
from datetime import time
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mailgate import reports
from mailgate.gateway import Gateway
from mailgate.metrics import SERVICE_CACHE_SECONDS, ServiceGauges
from mailgate.models import Contact, Department, SlaAlert, Ticket, utcnow
from mailgate.reports import ALL_CATEGORIES, Figures, Measure, Stats, TicketRow
from mailgate.service import Policy, Targets
from mailgate.worktime import WorkCalendar
from tests.servers.daemon import DaemonThread
from tests.test_smtp import daemon_settings  # noqa: F401  (fixture)

BERLIN = ZoneInfo("Europe/Berlin")
TEHRAN = ZoneInfo("Asia/Tehran")
OFFICE = WorkCalendar("Europe/Berlin", days={0, 1, 2, 3, 4}, hours=[(time(9), time(17))])
# first answer within 4 working hours (urgent: 1), Monday to Friday 09:00-17:00 Berlin
POLICY = Policy(calendar=OFFICE, first_response=Targets(normal=4.0, urgent=1.0))
NO_TARGETS = Policy(calendar=OFFICE)
ALWAYS = Policy(calendar=WorkCalendar("UTC", always=True), first_response=Targets(normal=4.0))


def at(day: int, hour: int, minute: int = 0, zone: ZoneInfo = BERLIN) -> dt.datetime:
    """A moment of November 2026 (Friday the 20th, Monday the 23rd)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=zone)


def ticket(created, answered=None, resolved=None, priority="normal", waited=0.0,
           breaches=0, department="support", category=None) -> TicketRow:
    return TicketRow(department, category, priority, created, answered, resolved, waited,
                     breaches)


# -- one ticket ---------------------------------------------------------------------

MEASURES = [
    # Friday evening, answered Monday morning: 65 hours later, one working hour
    ("friday evening to monday morning", ticket(at(20, 16, 30), at(23, 9, 30)), POLICY,
     Measure(1.0, None, True, 0)),
    ("the same on a 24/7 calendar", ticket(at(20, 16, 30), at(23, 9, 30)), ALWAYS,
     Measure(65.0, None, False, 0)),
    ("written on Saturday", ticket(at(21, 10), at(23, 11)), POLICY, Measure(2.0, None, True, 0)),
    ("answered after the target", ticket(at(23, 10), at(23, 15)), POLICY,
     Measure(5.0, None, False, 0)),
    ("answered exactly when the target ran out", ticket(at(23, 10), at(23, 14)), POLICY,
     Measure(4.0, None, False, 0)),
    ("urgent: its own target", ticket(at(23, 10), at(23, 11, 30), priority="urgent"), POLICY,
     Measure(1.5, None, False, 0)),
    ("high falls back to normal's target", ticket(at(23, 10), at(23, 13), priority="high"),
     POLICY, Measure(3.0, None, True, 0)),
    ("no target: no promise", ticket(at(23, 10), at(23, 15)), NO_TARGETS,
     Measure(5.0, None, None, 0)),
    ("not answered, still in time", ticket(at(23, 10)), POLICY, Measure(None, None, None, 0)),
    ("not answered, time is up", ticket(at(20, 10)), POLICY, Measure(None, None, False, 0)),
    ("resolved unanswered in time", ticket(at(20, 10), resolved=at(20, 11)), POLICY,
     Measure(None, 1.0, None, 0)),
    ("resolved unanswered too late", ticket(at(20, 10), resolved=at(23, 11)), POLICY,
     Measure(None, 9.0, False, 0)),
    # Monday 10:00 to Wednesday 10:00 is 16 working hours, 8 of them waiting on the customer
    ("resolution less waiting on the customer",
     ticket(at(23, 10), at(23, 10, 30), at(25, 10), waited=8 * 3600, breaches=2), POLICY,
     Measure(0.5, 8.0, True, 2)),
]


@pytest.mark.parametrize("row, policy, expected", [case[1:] for case in MEASURES],
                         ids=[case[0] for case in MEASURES])
def test_one_ticket_in_working_hours(row, policy, expected):
    assert reports.measure(row, policy, now=at(23, 12)) == expected


@pytest.mark.parametrize("values, expected", [
    ([], Stats(None, None, None)),
    ([2.5], Stats(2.5, 2.5, 2.5)),
    ([0.5, 1.0, 30.0], Stats(1.0, 10.5, 30.0)),
    ([3, 1, 2, 4], Stats(2.5, 2.5, 4)),
    (list(range(1, 11)), Stats(5.5, 5.5, 9)),  # nearest rank: 9 of 10 took no longer
    (list(range(1, 21)), Stats(10.5, 10.5, 18)),
])
def test_median_mean_and_p90(values, expected):
    assert reports.stats(values) == expected


@pytest.mark.parametrize("moment, by, zone, period", [
    (at(22, 12), None, BERLIN, "all"),
    (at(22, 12), "day", BERLIN, "2026-11-22"),
    (at(22, 12), "week", BERLIN, "2026-11-16"),  # a Sunday: the week of Monday the 16th
    (at(23, 0), "week", BERLIN, "2026-11-23"),
    (at(22, 12), "month", BERLIN, "2026-11"),
    # late Sunday evening in UTC is Monday morning in Tehran
    (at(22, 23, 30, dt.timezone.utc), "day", TEHRAN, "2026-11-23"),
    (at(22, 23, 30, dt.timezone.utc), "week", TEHRAN, "2026-11-23"),
    (at(22, 23, 30, dt.timezone.utc), "day", BERLIN, "2026-11-23"),
    (dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.timezone.utc), "month", TEHRAN, "2026-12"),
])
def test_the_period_of_a_moment(moment, by, zone, period):
    assert reports.period_of(moment, by, zone) == period


@pytest.mark.parametrize("kept, broken, share", [(0, 0, None), (3, 1, 0.75), (0, 2, 0.0)])
def test_the_share_within_the_promise_counts_tested_promises_only(kept, broken, share):
    assert Figures(created=9, kept=kept, broken=broken).within_promise == share


# -- a report -----------------------------------------------------------------------

WEEK_ROWS = [
    ticket(at(20, 16, 30), at(23, 9, 30), category="refund"),  # 1.0, kept
    ticket(at(23, 10), at(23, 15), category="refund", breaches=1),  # 5.0, broken
    ticket(at(23, 10), at(23, 11), resolved=at(23, 13)),  # 1.0 kept, resolved in 3.0
    ticket(at(20, 10)),  # never answered, time up: broken
    ticket(at(23, 9), at(23, 9, 30), department="billing", category="invoice"),  # 0.5 kept
]


def lines(rows, by=None, zone=BERLIN) -> dict:
    figures = reports.report(rows, lambda department: POLICY, at(23, 16), by, zone)
    return {key: reports.row_values(key, f) for key, f in figures.items()}


def test_a_report_has_a_line_per_department_and_its_categories():
    found = lines(WEEK_ROWS)
    assert list(found) == [("all", "billing", "*"), ("all", "billing", "invoice"),
                           ("all", "support", "*"), ("all", "support", None),
                           ("all", "support", "refund")]
    assert found["all", "support", ALL_CATEGORIES] == {
        "period": "all", "department": "support", "category": "*", "created": 4,
        "answered": 3, "first_response_median_hours": 1.0, "first_response_mean_hours": 2.3,
        "first_response_p90_hours": 5.0, "resolved": 1, "resolution_median_hours": 3.0,
        "resolution_mean_hours": 3.0, "resolution_p90_hours": 3.0, "sla_breaches": 1,
        "promise_kept": 2, "promise_broken": 2, "within_promise": 0.5}
    refund = found["all", "support", "refund"]
    assert (refund["created"], refund["first_response_mean_hours"], refund["sla_breaches"],
            refund["within_promise"]) == (2, 3.0, 1, 0.5)
    uncategorized = found["all", "support", None]
    assert (uncategorized["created"], uncategorized["answered"],
            uncategorized["within_promise"]) == (2, 1, 0.5)
    assert found["all", "billing", "invoice"]["first_response_median_hours"] == 0.5


@pytest.mark.parametrize("by, zone, periods", [
    ("day", BERLIN, ["2026-11-20", "2026-11-23"]),
    ("week", BERLIN, ["2026-11-16", "2026-11-23"]),
    ("month", BERLIN, ["2026-11"]),
])
def test_a_report_by_period(by, zone, periods):
    found = lines(WEEK_ROWS, by, zone)
    assert sorted({period for period, _, _ in found}) == periods
    totals = [v["created"] for (_, dept, cat), v in found.items() if cat == ALL_CATEGORIES]
    assert sum(totals) == len(WEEK_ROWS)


def test_a_report_of_nothing_is_empty():
    assert lines([]) == {}


# -- the database -------------------------------------------------------------------

UTC = dt.timezone.utc


@pytest.fixture
def database(settings):
    gateway = Gateway(settings)
    gateway.db.ensure_schema()
    yield gateway.db
    gateway.close()


def add_tickets(db, now: dt.datetime) -> None:
    """support: three tickets this week (one new, one a day old answered in 30 min,
    one resolved with two missed deadlines) and one a month old, still new; billing:
    one answered in an hour and closed; empty: none."""
    with db.unit_of_work() as session:
        support, billing = Department(key="support", name="S"), Department(key="billing", name="B")
        empty = Department(key="empty", name="E")
        someone = Contact(email="someone@example.org")
        session.add_all([support, billing, empty, someone])
        hours = dt.timedelta(hours=1)
        rows = [
            Ticket(department=support, requester=someone, created_at=now - 2 * hours),
            Ticket(department=support, requester=someone, category="refund",
                   created_at=now - 30 * hours, first_response_at=now - 29.5 * hours,
                   status="answered"),
            Ticket(department=support, requester=someone, created_at=now - 72 * hours,
                   first_response_at=now - 60 * hours, resolved_at=now - 48 * hours,
                   status="resolved"),
            Ticket(department=support, requester=someone, created_at=now - 30 * 24 * hours),
            Ticket(department=billing, requester=someone, created_at=now - 3 * hours,
                   first_response_at=now - 2 * hours, resolved_at=now - hours,
                   closed_at=now - hours, status="closed"),
        ]
        session.add_all(rows)
        session.flush()
        session.add_all([SlaAlert(ticket_id=rows[2].id, kind=kind, stage=stage, due_at=now)
                         for kind, stage in (("first_response", "escalation"),
                                             ("first_response", "warning"),
                                             ("resolution", "escalation"))])


NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAILY_4H = Policy(first_response=Targets(normal=4.0))  # 24/7 UTC


def test_rows_are_read_with_their_breaches(database):
    add_tickets(database, NOW)
    with database.unit_of_work() as session:
        rows = sorted(reports.ticket_rows(session, NOW - dt.timedelta(days=7), NOW),
                      key=lambda r: r.created_at)
        support = list(reports.ticket_rows(session, NOW - dt.timedelta(days=7), NOW,
                                           "support"))
    assert [(r.department, r.category, r.breaches) for r in rows] == [
        ("support", None, 2), ("support", "refund", 0), ("billing", None, 0),
        ("support", None, 0)]
    assert rows[0] == TicketRow("support", None, "normal", NOW - dt.timedelta(hours=72),
                                NOW - dt.timedelta(hours=60), NOW - dt.timedelta(hours=48),
                                0.0, 2)
    assert len(support) == 3


def test_recent_figures_per_department(database):
    add_tickets(database, NOW)
    with database.unit_of_work() as session:
        found = reports.recent(session, lambda key: DAILY_4H, NOW)
    assert sorted(found) == ["billing", "empty", "support"]
    support = found["support"]
    assert (support.open, support.created_last_day) == (3, 1)
    assert reports.stats(support.last_week.first_responses) == Stats(6.25, 6.25, 12.0)
    assert (support.last_week.breaches, support.last_week.kept, support.last_week.broken) == \
        (2, 1, 1)
    assert (found["billing"].open, found["billing"].created_last_day) == (0, 1)
    assert found["empty"] == reports.Recent(0, 0, Figures())


# -- /metrics -----------------------------------------------------------------------

def test_the_gauges_are_read_once_per_cache_period():
    reads, clock = [], [0.0]

    def read():
        reads.append(clock[0])
        return {"support": reports.Recent(3, 1, Figures(created=1, first_responses=[0.5],
                                                        kept=1))}

    registry = CollectorRegistry()
    registry.register(ServiceGauges(read, clock=lambda: clock[0]))
    assert reads == []  # registering reads nothing
    first = generate_latest(registry).decode()
    clock[0] = SERVICE_CACHE_SECONDS - 1
    assert generate_latest(registry).decode() == first
    clock[0] = SERVICE_CACHE_SECONDS
    generate_latest(registry)
    assert reads == [0.0, SERVICE_CACHE_SECONDS]
    assert 'mailgate_department_first_response_working_hours{department="support",' \
           'statistic="median"} 0.5' in first
    assert 'mailgate_department_within_promise_ratio{department="support"} 1.0' in first
    assert "resolution_working_hours{" not in first  # nothing resolved: no sample


def test_a_running_daemon_serves_the_gauges_per_department(daemon_settings):
    settings = daemon_settings.replace(service={"first_response": DAILY_4H.first_response})
    gateway = Gateway(settings)
    gateway.db.ensure_schema()
    add_tickets(gateway.db, utcnow())
    with DaemonThread(settings, gateway) as daemon:
        url = f"http://127.0.0.1:{daemon.port('http')}/metrics"
        with urllib.request.urlopen(url, timeout=30) as answer:
            text = answer.read().decode()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines()
                   if line.startswith("mailgate_department_"))
    assert samples == {
        'mailgate_department_open_tickets{department="billing"}': "0.0",
        'mailgate_department_open_tickets{department="empty"}': "0.0",
        'mailgate_department_open_tickets{department="support"}': "3.0",
        'mailgate_department_tickets_created_last_24h{department="billing"}': "1.0",
        'mailgate_department_tickets_created_last_24h{department="empty"}': "0.0",
        'mailgate_department_tickets_created_last_24h{department="support"}': "1.0",
        'mailgate_department_first_response_working_hours{department="billing",'
        'statistic="median"}': "1.0",
        'mailgate_department_first_response_working_hours{department="billing",'
        'statistic="mean"}': "1.0",
        'mailgate_department_first_response_working_hours{department="billing",'
        'statistic="p90"}': "1.0",
        'mailgate_department_first_response_working_hours{department="support",'
        'statistic="median"}': "6.25",
        'mailgate_department_first_response_working_hours{department="support",'
        'statistic="mean"}': "6.25",
        'mailgate_department_first_response_working_hours{department="support",'
        'statistic="p90"}': "12.0",
        'mailgate_department_resolution_working_hours{department="billing",'
        'statistic="median"}': "2.0",
        'mailgate_department_resolution_working_hours{department="billing",'
        'statistic="mean"}': "2.0",
        'mailgate_department_resolution_working_hours{department="billing",'
        'statistic="p90"}': "2.0",
        'mailgate_department_resolution_working_hours{department="support",'
        'statistic="median"}': "24.0",
        'mailgate_department_resolution_working_hours{department="support",'
        'statistic="mean"}': "24.0",
        'mailgate_department_resolution_working_hours{department="support",'
        'statistic="p90"}': "24.0",
        'mailgate_department_sla_breaches_last_7d{department="billing"}': "0.0",
        'mailgate_department_sla_breaches_last_7d{department="empty"}': "0.0",
        'mailgate_department_sla_breaches_last_7d{department="support"}': "2.0",
        'mailgate_department_within_promise_ratio{department="billing"}': "1.0",
        'mailgate_department_within_promise_ratio{department="support"}': "0.5",
    }
