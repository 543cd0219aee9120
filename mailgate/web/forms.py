"""The list page's filter form, read from the query string. Pure.

Dates are typed as the customer writes them: `2026-11-22`, `1405/09/01` (a year
before 1700 is Solar Hijri), in Western, Persian or Arabic-Indic digits. A value
that is not a date is named back on the page, never an error page.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import jdatetime

from ..vocabulary import STATUSES
from .data import OPEN_STATUSES, Filters

_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_DAY = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s*$")
OPEN = "open_all"  # the status choice "every open ticket"


@dataclass(frozen=True)
class FilterForm:
    """What the customer chose (echoed back into the form) and what is wrong with it."""
    since: str = ""
    until: str = ""
    category: str = ""
    status: str = ""
    wrong: tuple[str, ...] = ()  # names of the fields that are not dates


def parse_day(text: str) -> dt.date | None:
    """A Gregorian date from `text`, or None when it is not one."""
    match = _DAY.match(text.translate(_DIGITS))
    if not match:
        return None
    year, month, day = map(int, match.groups())
    try:
        if year < 1700:
            return jdatetime.date(year, month, day).togregorian()
        return dt.date(year, month, day)
    except ValueError:
        return None


def read_form(query: dict[str, str], categories: list[str]) -> FilterForm:
    """The form as submitted, cut to what it may hold."""
    status = query.get("status", "")
    category = query.get("topic", "")
    form = FilterForm(since=query.get("from", "")[:20], until=query.get("to", "")[:20],
                      category=category if category in categories else "",
                      status=status if status in STATUSES or status == OPEN else "")
    wrong = tuple(name for name, value in (("from", form.since), ("to", form.until))
                  if value.strip() and parse_day(value) is None)
    return FilterForm(form.since, form.until, form.category, form.status, wrong)


def filters(form: FilterForm, timezone: str) -> Filters:
    """The database filters of `form`: its days from midnight in `timezone`, `to` inclusive."""
    zone = ZoneInfo(timezone)

    def midnight(day: dt.date | None, plus: int = 0) -> dt.datetime | None:
        if day is None:
            return None
        return dt.datetime.combine(day + dt.timedelta(days=plus), dt.time(), zone)

    statuses = OPEN_STATUSES if form.status == OPEN else (form.status,) if form.status else ()
    return Filters(since=midnight(parse_day(form.since)), until=midnight(parse_day(form.until), 1),
                   category=form.category, statuses=tuple(statuses))
