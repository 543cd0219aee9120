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
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from .vocabulary import PRIORITIES
from .worktime import WorkCalendar, calendar_from_config

KINDS = ("first_response", "next_response", "resolution")
KEYS = set(KINDS) | {"warn_before", "escalation_contacts", "reminder_after_days",
                     "close_after_days", "auto_close_status", "digest_time", "calendar",
                     "departments"}
ALWAYS_UTC = WorkCalendar("UTC", always=True)


@dataclass(frozen=True)
class Policy:
    calendar: WorkCalendar = ALWAYS_UTC
    targets: tuple[tuple[str, str, float], ...] = ()  # (kind, priority, working hours)
    warn_before: float = 2.0
    escalation_contacts: tuple[str, ...] = ()
    reminder_after_days: int = 3
    close_after_days: int = 7
    auto_close_status: str = "resolved"
    digest_time: str = ""

    def target(self, kind: str, priority: str) -> dt.timedelta | None:
        for k, p, hours in self.targets:
            if k == kind and p == priority:
                return dt.timedelta(hours=hours)
        return None

    @property
    def timezone(self) -> str:
        return self.calendar.timezone


@dataclass(frozen=True)
class ServiceSettings:
    default: Policy = field(default_factory=Policy)
    departments: tuple[tuple[str, Policy], ...] = ()

    def policy(self, department_key: str | None) -> Policy:
        for key, policy in self.departments:
            if key == department_key:
                return policy
        return self.default


def _targets(where: str, table: dict, inherited, problems) -> tuple:
    targets = {(k, p): h for k, p, h in inherited}
    for kind in KINDS:
        if kind not in table:
            continue
        value = table[kind]
        if not isinstance(value, dict):
            problems.append((f"{where}.{kind}", "a table of priority = working hours"))
            continue
        for priority, hours in value.items():
            if priority not in PRIORITIES:
                problems.append((f"{where}.{kind}.{priority}",
                                 f"unknown priority; one of {', '.join(PRIORITIES)}"))
            elif isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
                problems.append((f"{where}.{kind}.{priority}", "positive working hours"))
            else:
                targets[(kind, priority)] = float(hours)
    return tuple((k, p, h) for (k, p), h in sorted(targets.items()))


def _policy(where: str, table: dict, base: Policy, problems: list) -> Policy:
    values = {}
    for key in table:
        if key not in KEYS or (key == "departments" and where != "service"):
            problems.append((f"{where}.{key}", "unknown key"))
    if "calendar" in table:
        calendar, found = calendar_from_config(table["calendar"], f"{where}.calendar")
        problems.extend(found)
        if calendar is not None:
            values["calendar"] = calendar
    values["targets"] = _targets(where, table, base.targets, problems)
    simple = {"warn_before": (int, float), "reminder_after_days": int,
              "close_after_days": int, "auto_close_status": str, "digest_time": str}
    for key, kind in simple.items():
        if key in table:
            if isinstance(table[key], bool) or not isinstance(table[key], kind):
                problems.append((f"{where}.{key}", "wrong type"))
            else:
                values[key] = table[key]
    if "escalation_contacts" in table:
        contacts = table["escalation_contacts"]
        if not isinstance(contacts, list) or not all(isinstance(c, str) and "@" in c
                                                     for c in contacts):
            problems.append((f"{where}.escalation_contacts", "a list of addresses"))
        else:
            values["escalation_contacts"] = tuple(c.lower() for c in contacts)
    if values.get("auto_close_status", "resolved") not in ("resolved", "closed"):
        problems.append((f"{where}.auto_close_status", "resolved or closed"))
    digest = values.get("digest_time", "")
    if digest:
        try:
            dt.time.fromisoformat(digest)
        except ValueError:
            problems.append((f"{where}.digest_time", "a local time like 08:00"))
    return replace(base, **values)


def load_service(table, problems: list) -> ServiceSettings:
    if not isinstance(table, dict):
        problems.append(("service", "must be a table"))
        return ServiceSettings()
    default = _policy("service", table, Policy(), problems)
    departments = []
    for key, sub in (table.get("departments") or {}).items():
        if not isinstance(sub, dict):
            problems.append((f"service.departments.{key}", "must be a table"))
            continue
        departments.append((key, _policy(f"service.departments.{key}", sub, default,
                                         problems)))
    return ServiceSettings(default, tuple(departments))
