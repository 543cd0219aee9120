"""`mailgate report`: tickets created, first-response and resolution times in working
hours, deadlines missed and the share answered within the promise, per period,
department and category (the figures: `mailgate/reports.py`)."""
from __future__ import annotations

import csv
import datetime as dt
import sys
from zoneinfo import ZoneInfo

from .. import reports
from ..models import utcnow
from ..tickets import department_by_key
from .common import EX_USAGE, CommandError, print_json, print_table, session_of

DEFAULT_DAYS = 30  # without --since: this many days before --until


def register(sub) -> None:
    p = sub.add_parser("report", help="response and resolution times, SLA breaches")
    p.add_argument("--since", help="created on or after DATE (YYYY-MM-DD or ISO 8601; "
                                   f"default: {DEFAULT_DAYS} days before --until)")
    p.add_argument("--until", help="created before ISO 8601 moment, or on or before DATE "
                                   "(default: now)")
    p.add_argument("--department", help="one department (its calendar's dates)")
    p.add_argument("--by", choices=reports.PERIODS, help="one line per period")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--csv", action="store_true",
                        help="one row per period, department and category")
    p.set_defaults(handler=report)


def report(settings, args) -> None:
    zone = settings.service.policy(args.department).calendar.zone
    until = moment(args.until, "--until", zone, end=True) if args.until else utcnow()
    since = moment(args.since, "--since", zone) if args.since else \
        until - dt.timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise CommandError("--since must be before --until", EX_USAGE)
    with session_of(settings) as session:
        if args.department:
            department_by_key(session, args.department)  # NotFound for a typo
        lines = reports.report(reports.ticket_rows(session, since, until, args.department),
                               settings.service.policy, utcnow(), args.by, zone)
    rows = [reports.row_values(key, figures) for key, figures in lines.items()]
    if args.json:
        print_json({"since": since.isoformat(), "until": until.isoformat(),
                    "timezone": zone.key, "by": args.by, "unit": "working hours",
                    "rows": rows})
    elif args.csv:
        write_csv(rows)
    else:
        print_readable(rows, since, until, zone)


def moment(value: str, option: str, zone: ZoneInfo, end: bool = False) -> dt.datetime:
    """An ISO 8601 moment (no offset: `zone`'s time), or a date: its first moment, or
    with `end` the first moment of the next day (the date is included)."""
    try:
        if len(value) == 10:  # YYYY-MM-DD
            day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end else 0)
            return dt.datetime.combine(day, dt.time(), zone)
        found = dt.datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"{option}: not a date or ISO 8601 moment: {value!r}",
                           EX_USAGE) from error
    return found if found.tzinfo else found.replace(tzinfo=zone)


def write_csv(rows: list[dict]) -> None:
    writer = csv.DictWriter(sys.stdout, reports.COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "department": cell(row["department"]),
                      "category": cell(row["category"] or "")} for row in rows)


def cell(text: str) -> str:
    """Text as a spreadsheet shows it, never runs it: an agent's `#category =cmd|…`
    would be a formula in Excel or LibreOffice (CSV injection), so a leading
    = + - @ or control character is quoted with an apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def print_readable(rows: list[dict], since: dt.datetime, until: dt.datetime,
                   zone: ZoneInfo) -> None:
    print(f"Tickets created from {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} "
          f"({zone.key}); times in working hours (median / mean / p90); category *: all "
          "of the department's")
    print_table([[r["period"], r["department"], _category(r["category"]), r["created"],
                  r["answered"], _times(r, "first_response"), r["resolved"],
                  _times(r, "resolution"), r["sla_breaches"], _share(r)] for r in rows],
                ["PERIOD", "DEPARTMENT", "CATEGORY", "CREATED", "ANSWERED",
                 "FIRST RESPONSE", "RESOLVED", "RESOLUTION", "SLA BREACHES",
                 "WITHIN PROMISE"])


def _category(category: str | None) -> str:
    return "(none)" if category is None else category


def _times(row: dict, kind: str) -> str:
    values = [row[f"{kind}_{statistic}_hours"] for statistic in ("median", "mean", "p90")]
    return "-" if values[0] is None else " / ".join(f"{v:.1f}" for v in values)


def _share(row: dict) -> str:
    tested = row["promise_kept"] + row["promise_broken"]
    if not tested:
        return "-"
    return f"{row['within_promise']:.0%} ({row['promise_kept']}/{tested})"
