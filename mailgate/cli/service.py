"""`mailgate calendar due` and `mailgate jobs run`: service hours by hand."""
from __future__ import annotations

import datetime as dt

from .. import jobs
from ..tickets import department_by_key
from .common import EX_DATAERR, EX_USAGE, CommandError, gateway, session_of


def register(sub) -> None:
    cal = sub.add_parser("calendar", help="service hours").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = cal.add_parser("due", help="when N working hours after START are over")
    p.add_argument("department", help="department key (its calendar, or the default)")
    p.add_argument("--start", required=True, help="ISO 8601 moment; no offset: calendar time")
    p.add_argument("--hours", required=True, type=float)
    p.set_defaults(handler=calendar_due)
    job = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = job.add_parser("run", help="run deadline, reminder and digest jobs once now")
    p.set_defaults(handler=jobs_run)


def calendar_due(settings, args) -> None:
    with session_of(settings) as session:
        department_by_key(session, args.department)  # NotFound for a typo
    policy = settings.service.policy(args.department)
    try:
        start = dt.datetime.fromisoformat(args.start)
    except ValueError as error:
        raise CommandError(f"--start: not an ISO 8601 moment: {args.start!r}", EX_USAGE) \
            from error
    if start.tzinfo is None:
        start = start.replace(tzinfo=policy.calendar.zone)
    if args.hours < 0:
        raise CommandError("--hours must not be negative", EX_DATAERR)
    print(policy.calendar.add_working(start, dt.timedelta(hours=args.hours)).isoformat())


def jobs_run(settings, args) -> None:
    with gateway(settings, parse_workers=0) as gw:
        print(f"{jobs.run_all(gw)} job action(s)")
