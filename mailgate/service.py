"""Service hours and promises: calendars and response targets, per department.

Configured in the TOML file (`[service]` for the installation, with a
`[service.calendar]`; `[service.departments.KEY]` overrides any key for one
department, and inherits the rest):

    [service]
    first_response = { normal = 24, high = 8, urgent = 2, low = 48 }  # working hours
    next_response = { normal = 24 }
    resolution = { normal = 72 }
    warn_before = 2              # working hours before a deadline: warn the agents
    escalation_contacts = ["lead@example.com"]
    reminder_after_days = 3      # working days waiting on the customer: remind them
    close_after_days = 7         # days waiting on the customer: close, with notice
    auto_close_status = "resolved"
    digest_time = "08:00"        # daily digest, local time of the calendar ("" = none)
    [service.calendar]
    timezone = "Asia/Tehran"
    days = ["sat", "sun", "mon", "tue", "wed"]
    hours = ["09:00-13:00", "14:00-17:00"]
    holidays_file = "/etc/mailgate/holidays-ir.txt"

Without a `[service]` section the calendar is 24/7 UTC and there are no targets.
A department's calendar replaces the installation's as a whole; its targets
override the installation's one priority at a time. A priority without a target
takes the next lower priority's (urgent: high's, else normal's, else low's), else
the kind's `default` (`resolution = { normal = 72, default = 120 }`), so that a
priority change never drops a deadline; `mailgate check` warns about the rest.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Iterable

from .config_checks import at_least, one_of, positive
from .config_keys import Invalid, Reader, key
from .vocabulary import PRIORITIES
from .worktime import WorkCalendar, hours_problems, parse_hours, timezone_problems

ALWAYS_UTC = WorkCalendar("UTC", always=True)
DAY_NAMES = {
    "mon": 0, "monday": 0,
    "tue": 1, "tuesday": 1,
    "wed": 2, "wednesday": 2,
    "thu": 3, "thursday": 3,
    "fri": 4, "friday": 4,
    "sat": 5, "saturday": 5,
    "sun": 6, "sunday": 6,
}
Problem = tuple[str, str]  # (dotted key, message)


def local_time(value: str) -> str | None:
    """A local time like 08:00, or empty (none)."""
    try:
        if value:
            dt.time.fromisoformat(value)
    except ValueError:
        return f"must be a local time like 08:00, got {value!r}"
    return None


def addresses(value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) and "@" in c for c in value):
        raise Invalid(f"must be a list of addresses, got {value!r}")
    return tuple(c.lower() for c in value)


def work_calendar(table) -> WorkCalendar:
    """A `[...calendar]` table as a calendar; see `calendar_from_config`."""
    calendar, problems = calendar_from_config(table, key="")
    if calendar is None:
        raise Invalid(*problems)
    return calendar


DEADLINES = ("first_response", "next_response", "resolution")
Targets = make_dataclass(
    "Targets", [(p, float, key(0.0, positive)) for p in (*PRIORITIES, "default")], frozen=True,
    namespace={"__module__": __name__,  # so that settings pickle for the worker processes
               "__doc__": "Working hours of a response target per priority, and for the "
                          "priorities without one (`default`); 0: none."})


@dataclass(frozen=True)
class Policy:
    calendar: WorkCalendar = key(ALWAYS_UTC, read=work_calendar)
    first_response: Targets = Targets()
    next_response: Targets = Targets()
    resolution: Targets = Targets()
    warn_before: float = key(2.0, at_least(0))
    escalation_contacts: tuple[str, ...] = key((), read=addresses)
    reminder_after_days: int = key(3, at_least(0))
    close_after_days: int = key(7, at_least(0))
    auto_close_status: str = key("resolved", one_of("resolved", "closed"))
    digest_time: str = key("", local_time)

    def target(self, kind: str, priority: str) -> dt.timedelta | None:
        """The `kind` target of `priority`; None: no deadline of that kind."""
        source = self.target_source(kind, priority)
        return dt.timedelta(hours=getattr(getattr(self, kind), source)) if source else None

    def target_source(self, kind: str, priority: str) -> str | None:
        """Whose target `priority` has: its own, else the next lower priority's that has
        one (urgent falls back to high, then normal, then low), else "default"."""
        targets = getattr(self, kind)
        lower = PRIORITIES[:PRIORITIES.index(priority) + 1] if priority in PRIORITIES else ()
        return next((name for name in (*reversed(lower), "default")
                     if getattr(targets, name)), None)

    def missing_targets(self, kinds=DEADLINES) -> Iterable[Problem]:
        """(kind.priority, what happens) for each priority without a target of its own, in
        a kind that has targets but no `default`: what `mailgate check` warns about."""
        for kind in kinds:
            targets = getattr(self, kind)
            if targets == Targets() or targets.default:
                continue
            for priority in PRIORITIES:
                source = self.target_source(kind, priority)
                if source == priority:
                    continue
                yield f"{kind}.{priority}", (
                    f"no target: {priority} tickets get no {kind} deadline" if source is None
                    else f"no target: {priority} tickets get {source}'s "
                         f"({getattr(targets, source):g} working hours)")

    @property
    def timezone(self) -> str:
        return self.calendar.timezone


@dataclass(frozen=True)
class ServiceSettings(Policy):
    """`[service]`: the installation's policy, and the departments' (by department key)."""
    departments: tuple[tuple[str, Policy], ...] = ()

    def policy(self, department_key: str | None) -> Policy:
        for name, policy in self.departments:
            if name == department_key:
                return policy
        return self

    def target_warnings(self) -> Iterable[Problem]:
        """`missing_targets` of the installation's policy and of each department's own
        targets (those it inherits are named once, under [service])."""
        yield from ((f"service.{k}", m) for k, m in self.missing_targets())
        for name, policy in self.departments:
            own = [kind for kind in DEADLINES if getattr(policy, kind) != getattr(self, kind)]
            yield from ((f"service.departments.{name}.{k}", m)
                        for k, m in policy.missing_targets(own))


# -- a calendar from configuration


def known_timezone(name: str) -> str | None:
    return "; ".join(timezone_problems(name)) or None


def read_days(value) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise Invalid(f"must be a non-empty list of day names, got {value!r}")
    unknown = [name for name in value if not isinstance(name, str) or name.lower() not in DAY_NAMES]
    if unknown:
        raise Invalid(*(f"unknown day name {name!r}; use mon tue wed thu fri sat sun"
                        for name in unknown))
    return frozenset(DAY_NAMES[name.lower()] for name in value)


def read_hours(value) -> tuple[tuple[dt.time, dt.time], ...]:
    if not isinstance(value, list) or not value:
        raise Invalid(f"must be a non-empty list like [\"09:00-17:00\"], got {value!r}")
    hours = [parse_hours(text) if isinstance(text, str) else None for text in value]
    problems = [f"{text!r} is not an interval like \"09:00-17:00\""
                for text, interval in zip(value, hours) if interval is None]
    problems = problems or hours_problems(hours)
    if problems:
        raise Invalid(*problems)
    return tuple(hours)


def read_holidays(value) -> frozenset[dt.date]:
    if not isinstance(value, list):
        raise Invalid(f"must be a list of dates, got {value!r}")
    days = [_parse_date(item) for item in value]
    problems = [f"{item!r} is not a date like \"2026-03-21\""
                for item, day in zip(value, days) if day is None]
    if problems:
        raise Invalid(*problems)
    return frozenset(days)


def read_holidays_file(path) -> frozenset[dt.date]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, TypeError) as error:
        raise Invalid(f"cannot read {path!r}: {error}") from error
    days, problems = set(), []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        day = _parse_date(entry) if entry else None
        if entry and day is None:
            problems.append(f"{path}:{number}: {entry!r} is not a date like \"2026-03-21\"")
        elif day is not None:
            days.add(day)
    if problems:
        raise Invalid(*problems)
    return frozenset(days)


def _parse_date(value) -> dt.date | None:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class CalendarKeys:
    """The keys of a `[...calendar]` table, read; see `calendar_from_config`."""
    timezone: str = key("", known_timezone, required='is required, e.g. "Europe/Berlin"')
    always: bool = key(False)
    days: frozenset[int] | None = key(None, read=read_days)
    hours: tuple[tuple[dt.time, dt.time], ...] | None = key(None, read=read_hours)
    holidays: frozenset[dt.date] | None = key(None, read=read_holidays)
    holidays_file: frozenset[dt.date] | None = key(None, read=read_holidays_file)

    def problems(self):
        if self.always:
            yield from ((name, "cannot be combined with always = true")
                        for name in ("days", "hours", "holidays", "holidays_file")
                        if getattr(self, name) is not None)
            return
        if self.days is None:
            yield "days", 'is required, e.g. ["mon", "tue", "wed", "thu", "fri"]'
        if self.hours is None:
            yield "hours", 'is required, e.g. ["09:00-17:00"]'

    def calendar(self) -> WorkCalendar:
        if self.always:
            return WorkCalendar(self.timezone, always=True)
        return WorkCalendar(self.timezone, self.days, self.hours,
                            (self.holidays or frozenset()) | (self.holidays_file or frozenset()))


def calendar_from_config(table: dict, key: str = "calendar") -> tuple[WorkCalendar | None,
                                                                       list[Problem]]:
    """Build a calendar from a TOML table; return ``(calendar, [])`` or ``(None, problems)``.

    Accepted keys (``key`` prefixes the dotted names in problems)::

        timezone      = "Asia/Tehran"                        # required, an IANA name
        days          = ["sat", "sun", "mon", "tue", "wed"]  # required unless always
        hours         = ["09:00-13:00", "14:00-17:00"]       # required unless always; "24:00" ends a day
        holidays      = ["2026-03-21", 2026-03-22]           # optional; ISO strings or TOML dates
        holidays_file = "/etc/mailgate/holidays.txt"         # optional; one ISO date a line, '#' comments
        always        = true                                 # 24/7; then only timezone may be given

    Day names are mon..sun or full names, in any case. Nothing raises:
    every problem is returned as ``(dotted key, message)``.
    """
    reader = Reader(env=None)
    keys = reader.section(CalendarKeys, table, key)
    return (None, reader.problems) if keys is None else (keys.calendar(), [])
