"""Service figures: tickets created, how fast they were answered and resolved in
working hours, deadlines missed, the share answered within the promise.

Rows in, figures out. `ticket_rows()` reads the tickets created in a range with
one streamed query, as plain `TicketRow` values; everything else is pure:
`measure()` turns one row into working hours on its department's calendar,
`report()` sums the measures per (period, department, category), `row_values()`
writes one line of the report as flat values (hours with one decimal).

- first response: the working time from the ticket's creation to the first answer;
- resolution: the working time from creation to `resolved_at`, less the working
  time spent waiting on the customer (as the resolution deadline counts it);
- the promise is the configured first-response target (`[service] first_response`
  of the ticket's priority, in its department's calendar): kept when the first
  answer came before it ran out, broken when it came later or has not come and
  the time is up; a ticket resolved unanswered before its time was up, or still
  within it, is neither (the promise is not tested yet);
- SLA breaches: the escalations the deadline job recorded (`sla_alerts`), one per
  missed deadline (first response, next response, resolution).

p90 is the nearest-rank 90th percentile: nine tickets in ten took no longer.
"""
from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Department, SlaAlert, Ticket
from .service import Policy
from .sla import DONE

PERIODS = ("day", "week", "month")
ALL_CATEGORIES = "*"  # the category of a department's line over all its categories
WHOLE_RANGE = "all"  # the period of a report not split by --by
YIELD_PER = 1000  # rows fetched at a time from the database
HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class TicketRow:
    """What the report needs of one ticket, as plain values."""
    department: str
    category: str | None
    priority: str
    created_at: dt.datetime
    first_response_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    waited: float = 0.0  # working seconds spent waiting on the customer
    breaches: int = 0  # missed deadlines (escalations recorded)


@dataclass(frozen=True)
class Measure:
    """One ticket in working hours; None: not answered (not resolved) yet."""
    first_response: float | None
    resolution: float | None
    promise_kept: bool | None  # None: no target, or not tested yet
    breaches: int


def measure(row: TicketRow, policy: Policy, now: dt.datetime) -> Measure:
    calendar = policy.calendar
    first = resolution = None
    if row.first_response_at is not None:
        first = calendar.working_between(row.created_at, row.first_response_at) / HOUR
    if row.resolved_at is not None:
        spent = calendar.working_between(row.created_at, row.resolved_at) / HOUR
        resolution = max(0.0, spent - row.waited / 3600)
    return Measure(first, resolution, promise_kept(row, policy, now), row.breaches)


def promise_kept(row: TicketRow, policy: Policy, now: dt.datetime) -> bool | None:
    """Was the first answer before the first-response target ran out? None while that
    is not known (or there is no target)."""
    target = policy.target("first_response", row.priority)
    if target is None:
        return None
    due = policy.calendar.add_working(row.created_at, target)
    if row.first_response_at is not None:
        return row.first_response_at < due
    return False if (row.resolved_at or now) >= due else None


@dataclass(frozen=True)
class Stats:
    """Median, mean and nearest-rank 90th percentile of some hours (None: no values)."""
    median: float | None = None
    mean: float | None = None
    p90: float | None = None


def stats(values: list[float]) -> Stats:
    if not values:
        return Stats()
    ordered = sorted(values)
    return Stats(statistics.median(ordered), statistics.fmean(ordered),
                 ordered[math.ceil(0.9 * len(ordered)) - 1])


@dataclass
class Figures:
    """The sums of one line of a report."""
    created: int = 0
    first_responses: list[float] = field(default_factory=list)
    resolutions: list[float] = field(default_factory=list)
    breaches: int = 0
    kept: int = 0
    broken: int = 0

    def add(self, one: Measure) -> None:
        self.created += 1
        if one.first_response is not None:
            self.first_responses.append(one.first_response)
        if one.resolution is not None:
            self.resolutions.append(one.resolution)
        self.breaches += one.breaches
        self.kept += one.promise_kept is True
        self.broken += one.promise_kept is False

    @property
    def within_promise(self) -> float | None:
        """The share of tickets whose promise was tested that kept it."""
        tested = self.kept + self.broken
        return self.kept / tested if tested else None


Key = tuple[str, str, str | None]  # (period, department, category)


def period_of(moment: dt.datetime, by: str | None, zone: ZoneInfo) -> str:
    """The period a moment falls in, named by its first local day: 2026-11-20 (day),
    2026-11-16 (the week's Monday), 2026-11 (month); "all" when not split."""
    day = moment.astimezone(zone).date()
    if by is None:
        return WHOLE_RANGE
    if by == "week":
        return (day - dt.timedelta(days=day.weekday())).isoformat()
    return day.isoformat() if by == "day" else f"{day:%Y-%m}"


def report(rows: Iterable[TicketRow], policy: Callable[[str], Policy], now: dt.datetime,
           by: str | None = None, zone: ZoneInfo = ZoneInfo("UTC")) -> dict[Key, Figures]:
    """Figures per (period, department, category), and per (period, department, "*")
    over all of a department's categories; in order, each department's "*" first."""
    lines: dict[Key, Figures] = defaultdict(Figures)
    for row in rows:
        one = measure(row, policy(row.department), now)
        period = period_of(row.created_at, by, zone)
        lines[period, row.department, ALL_CATEGORIES].add(one)
        lines[period, row.department, row.category].add(one)
    return dict(sorted(lines.items(), key=lambda item: _order(item[0])))


def _order(key: Key) -> tuple:
    period, department, category = key
    return period, department, category != ALL_CATEGORIES, category is not None, category or ""


COLUMNS = ("period", "department", "category", "created", "answered",
           "first_response_median_hours", "first_response_mean_hours",
           "first_response_p90_hours", "resolved", "resolution_median_hours",
           "resolution_mean_hours", "resolution_p90_hours", "sla_breaches",
           "promise_kept", "promise_broken", "within_promise")


def row_values(key: Key, figures: Figures) -> dict:
    """One line of a report as flat values (`COLUMNS`): hours with one decimal, the
    share within the promise as a fraction with three (None: nothing to say)."""
    first, resolution = stats(figures.first_responses), stats(figures.resolutions)
    share = figures.within_promise
    return dict(zip(COLUMNS, (
        *key, figures.created, len(figures.first_responses),
        *_hours(first), len(figures.resolutions), *_hours(resolution),
        figures.breaches, figures.kept, figures.broken,
        None if share is None else round(share, 3))))


def _hours(figures: Stats) -> tuple:
    return tuple(None if v is None else round(v, 1)
                 for v in (figures.median, figures.mean, figures.p90))


# -- what the daemon exports per department (/metrics) --------------------------

@dataclass(frozen=True)
class Recent:
    """A department's figures now: open tickets, tickets created in the last day, and
    the report of the tickets created in the last week."""
    open: int
    created_last_day: int
    last_week: Figures


def recent(session: Session, policy: Callable[[str], Policy],
           now: dt.datetime) -> dict[str, Recent]:
    """`Recent` of every department, by key (two queries)."""
    week = list(ticket_rows(session, now - dt.timedelta(days=7), now))
    figures = report(week, policy, now)
    last_day = Counter(r.department for r in week if r.created_at >= now - dt.timedelta(days=1))
    return {key: Recent(count, last_day[key],
                        figures.get((WHOLE_RANGE, key, ALL_CATEGORIES), Figures()))
            for key, count in open_tickets(session).items()}


# -- reading the database ----------------------------------------------------------

def ticket_rows(session: Session, since: dt.datetime, until: dt.datetime,
                department: str | None = None) -> Iterator[TicketRow]:
    """The tickets created in [since, until) (of one department), streamed."""
    breaches = select(func.count(SlaAlert.id)).where(
        SlaAlert.ticket_id == Ticket.id, SlaAlert.stage == "escalation").scalar_subquery()
    query = select(Department.key, Ticket.category, Ticket.priority, Ticket.created_at,
                   Ticket.first_response_at, Ticket.resolved_at, Ticket.paused_working,
                   breaches).join(Department, Ticket.department_id == Department.id).where(
        Ticket.created_at >= since, Ticket.created_at < until)
    if department is not None:
        query = query.where(Department.key == department)
    for values in session.execute(query.execution_options(yield_per=YIELD_PER)):
        yield TicketRow(*values[:6], values[6] or 0.0, values[7])


def open_tickets(session: Session) -> dict[str, int]:
    """Tickets not resolved or closed, by department key (every department)."""
    return dict(session.execute(
        select(Department.key, func.count(Ticket.id)).outerjoin(
            Ticket, (Ticket.department_id == Department.id) & Ticket.status.not_in(DONE))
        .group_by(Department.key).order_by(Department.key)).all())
