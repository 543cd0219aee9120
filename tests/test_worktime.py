"""Working-time arithmetic: tables of known answers, then properties."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.service import calendar_from_config
from mailgate.worktime import WorkCalendar, parse_hours

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
MON_FRI = {MON, TUE, WED, THU, FRI}
SAT_WED = {SAT, SUN, MON, TUE, WED}
SAT_THU = SAT_WED | {THU}
EVERY_DAY = set(range(7))
NINE_TO_FIVE = [(time(9), time(17))]
SPLIT_DAY = [(time(9), time(13)), (time(14), time(17))]
WHOLE_DAY = [(time(0), time(0))]  # an end of 00:00 is midnight at the end of the day

BERLIN = WorkCalendar("Europe/Berlin", MON_FRI, NINE_TO_FIVE, holidays={
    date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 31), date(2027, 1, 1)})
BERLIN_SPLIT = WorkCalendar("Europe/Berlin", MON_FRI, SPLIT_DAY)
BERLIN_PLAIN = WorkCalendar("Europe/Berlin", MON_FRI, NINE_TO_FIVE)
BERLIN_NIGHT = WorkCalendar("Europe/Berlin", {SUN}, [(time(1), time(4))])  # spans both DST changes
BERLIN_IN_GAP = WorkCalendar("Europe/Berlin", {SUN}, [(time(2, 30), time(3, 15))])
BERLIN_ALWAYS = WorkCalendar("Europe/Berlin", always=True)
NEW_YORK = WorkCalendar("America/New_York", MON_FRI, NINE_TO_FIVE)
NEW_YORK_SUNDAYS = WorkCalendar("America/New_York", {SUN}, WHOLE_DAY)
NOWRUZ_1405 = {date(2026, 3, 21), date(2026, 3, 22), date(2026, 3, 23), date(2026, 3, 24)}
TEHRAN = WorkCalendar("Asia/Tehran", SAT_WED, NINE_TO_FIVE, holidays=NOWRUZ_1405)
TEHRAN_SAT_THU = WorkCalendar("Asia/Tehran", SAT_THU, [(time(8), time(17))])
TEHRAN_WHOLE_DAYS = WorkCalendar("Asia/Tehran", EVERY_DAY, WHOLE_DAY)
TEHRAN_ALWAYS = WorkCalendar("Asia/Tehran", always=True)
TBILISI = WorkCalendar("Asia/Tbilisi", MON_FRI, [(time(10), time(19))],
                       holidays={date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 7)})


def local(calendar: WorkCalendar, text: str) -> datetime:
    """'2026-11-12 16:30' on the calendar's wall clock (first occurrence if repeated)."""
    return datetime.fromisoformat(text).replace(tzinfo=calendar.zone)


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


# -- the issue's example ----------------------------------------------------

def test_issue_example_thursday_1630_plus_8h_is_saturday_1530():
    """Saturday-Thursday week, 08:00-17:00, Tehran: Thursday gives 0.5 h, Friday is off,
    Saturday 08:00 + 7.5 h = 15:30. (With the Saturday-Wednesday week Thursday is off,
    counting starts Saturday 09:00 and the answer is 17:00: see the add table.)"""
    due = TEHRAN_SAT_THU.add_working(local(TEHRAN_SAT_THU, "2026-11-12 16:30"), hours(8))
    assert due.isoformat() == "2026-11-14T15:30:00+03:30"
    assert due.strftime("%A %H:%M") == "Saturday 15:30"


# -- add_working -------------------------------------------------------------

ADD_CASES = [
    # calendar, start (calendar's wall clock), working hours, expected
    (BERLIN, "2026-11-12 16:30", 0.5, "2026-11-12T17:00:00+01:00"),  # lands on the end: stays
    (BERLIN, "2026-11-12 16:30", 1, "2026-11-13T09:30:00+01:00"),
    (BERLIN, "2026-11-13 16:00", 2, "2026-11-16T10:00:00+01:00"),  # over the weekend
    (BERLIN, "2026-11-14 12:00", 1, "2026-11-16T10:00:00+01:00"),  # starts on Saturday
    (BERLIN, "2026-11-16 08:00", 0, "2026-11-16T09:00:00+01:00"),  # zero from outside: next start
    (BERLIN, "2026-11-16 17:00", 0, "2026-11-16T17:00:00+01:00"),  # zero on an end: stays
    (BERLIN, "2026-11-16 17:00", 1, "2026-11-17T10:00:00+01:00"),
    (BERLIN, "2026-12-23 16:00", 2, "2026-12-28T10:00:00+01:00"),  # Christmas holidays
    (BERLIN, "2026-12-30 16:00", 9, "2027-01-04T17:00:00+01:00"),  # year end, New Year holidays
    (BERLIN, "2026-03-27 16:00", 2, "2026-03-30T10:00:00+02:00"),  # spring forward weekend
    (BERLIN, "2026-10-23 16:00", 2, "2026-10-26T10:00:00+01:00"),  # fall back weekend
    (BERLIN_PLAIN, "2026-01-05 09:00", 1000, "2026-06-26T17:00:00+02:00"),  # 125 days, 25 weeks
    (BERLIN_SPLIT, "2026-11-16 12:30", 0.5, "2026-11-16T13:00:00+01:00"),
    (BERLIN_SPLIT, "2026-11-16 12:30", 1, "2026-11-16T14:30:00+01:00"),
    (BERLIN_SPLIT, "2026-11-16 13:30", 0.5, "2026-11-16T14:30:00+01:00"),  # starts at lunch
    (BERLIN_SPLIT, "2026-11-16 16:00", 4, "2026-11-17T12:00:00+01:00"),
    (BERLIN_SPLIT, "2026-11-20 16:00", 7, "2026-11-23T16:00:00+01:00"),
    (BERLIN_NIGHT, "2026-03-29 01:30", 1, "2026-03-29T03:30:00+02:00"),  # 02:00-03:00 skipped
    (BERLIN_NIGHT, "2026-10-25 01:30", 2, "2026-10-25T02:30:00+01:00"),  # 02:00-03:00 twice
    (BERLIN_IN_GAP, "2026-03-29 00:00", 0.25, "2026-03-29T03:15:00+02:00"),
    (BERLIN_ALWAYS, "2026-03-28 12:00", 24, "2026-03-29T13:00:00+02:00"),
    (BERLIN_ALWAYS, "2026-10-24 12:00", 24, "2026-10-25T11:00:00+01:00"),
    (NEW_YORK, "2026-03-06 16:00", 2, "2026-03-09T10:00:00-04:00"),  # spring forward weekend
    (NEW_YORK, "2026-10-30 16:00", 2, "2026-11-02T10:00:00-05:00"),  # fall back weekend
    (NEW_YORK, "2025-12-31 16:30", 1, "2026-01-01T09:30:00-05:00"),  # year end, no holidays
    (NEW_YORK_SUNDAYS, "2026-03-08 00:00", 3, "2026-03-08T04:00:00-04:00"),
    (NEW_YORK_SUNDAYS, "2026-11-01 00:00", 3, "2026-11-01T02:00:00-05:00"),
    (NEW_YORK_SUNDAYS, "2026-03-08 23:00", 2, "2026-03-15T01:00:00-04:00"),
    (TEHRAN, "2026-11-12 16:30", 8, "2026-11-14T17:00:00+03:30"),  # Thursday is off
    (TEHRAN, "2026-11-11 16:30", 8, "2026-11-14T16:30:00+03:30"),
    (TEHRAN, "2026-03-18 12:00", 8, "2026-03-25T12:00:00+03:30"),  # Nowruz 1405
    (TEHRAN, "2021-06-16 16:00", 2, "2021-06-19T10:00:00+04:30"),  # Tehran still had DST
    (TEHRAN_SAT_THU, "2026-11-12 16:30", 0.5, "2026-11-12T17:00:00+03:30"),
    (TEHRAN_SAT_THU, "2026-11-12 16:30", 8, "2026-11-14T15:30:00+03:30"),
    (TEHRAN_WHOLE_DAYS, "2021-03-21 12:00", 24, "2021-03-22T13:00:00+04:30"),  # 00:00 skipped
    (TEHRAN_WHOLE_DAYS, "2021-09-21 12:00", 24, "2021-09-22T11:00:00+03:30"),  # 23:00 twice
    (TEHRAN_ALWAYS, "2021-03-21 12:00", 24, "2021-03-22T13:00:00+04:30"),
    (TBILISI, "2025-12-31 18:00", 3, "2026-01-05T12:00:00+04:00"),  # year end, holidays
    (TBILISI, "2026-01-06 18:30", 1, "2026-01-08T10:30:00+04:00"),  # Orthodox Christmas
]


@pytest.mark.parametrize("calendar, start, amount, expected", ADD_CASES)
def test_add_working(calendar, start, amount, expected):
    assert calendar.add_working(local(calendar, start), hours(amount)).isoformat() == expected


def test_add_working_accepts_any_input_timezone_and_answers_in_the_calendars():
    start = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)  # 10:00 in Tbilisi
    assert TBILISI.add_working(start, hours(1)).isoformat() == "2026-01-05T11:00:00+04:00"


# -- subtract_working --------------------------------------------------------

SUBTRACT_CASES = [
    (BERLIN, "2026-11-16 10:00", 2, "2026-11-13T16:00:00+01:00"),
    (BERLIN, "2026-11-16 09:00", 0, "2026-11-16T09:00:00+01:00"),  # zero on a start: stays
    (BERLIN, "2026-11-16 08:00", 1, "2026-11-13T16:00:00+01:00"),  # from outside
    (BERLIN, "2027-01-04 17:00", 9, "2026-12-30T16:00:00+01:00"),  # back over the year end
    (BERLIN, "2026-03-30 10:00", 2, "2026-03-27T16:00:00+01:00"),
    (BERLIN_SPLIT, "2026-11-16 14:30", 1, "2026-11-16T12:30:00+01:00"),
    (BERLIN_SPLIT, "2026-11-16 14:00", 1, "2026-11-16T12:00:00+01:00"),
    (BERLIN_NIGHT, "2026-03-29 03:30", 1, "2026-03-29T01:30:00+01:00"),
    (BERLIN_ALWAYS, "2026-03-29 13:00", 24, "2026-03-28T12:00:00+01:00"),
    (NEW_YORK, "2026-03-09 10:00", 2, "2026-03-06T16:00:00-05:00"),
    (NEW_YORK, "2026-11-02 10:00", 2, "2026-10-30T16:00:00-04:00"),
    (TEHRAN_SAT_THU, "2026-11-14 15:30", 8, "2026-11-12T16:30:00+03:30"),
    (TEHRAN, "2026-03-25 12:00", 8, "2026-03-18T12:00:00+03:30"),
    (TBILISI, "2026-01-05 12:00", 3, "2025-12-31T18:00:00+04:00"),
]


@pytest.mark.parametrize("calendar, end, amount, expected", SUBTRACT_CASES)
def test_subtract_working(calendar, end, amount, expected):
    assert calendar.subtract_working(local(calendar, end), hours(amount)).isoformat() == expected


# -- working_between ---------------------------------------------------------

BETWEEN_CASES = [
    (BERLIN, "2026-03-27 09:00", "2026-03-30 17:00", 16),
    (BERLIN, "2026-10-23 09:00", "2026-10-26 17:00", 16),
    (BERLIN, "2026-11-12 16:30", "2026-11-13 09:30", 1),
    (BERLIN, "2026-11-13 09:30", "2026-11-12 16:30", 0),  # reversed
    (BERLIN, "2026-11-13 09:30", "2026-11-13 09:30", 0),
    (BERLIN, "2026-01-01 00:00", "2027-01-01 00:00", 258 * 8),  # 261 weekdays, 3 holidays
    (BERLIN_SPLIT, "2026-11-16 00:00", "2026-11-17 00:00", 7),
    (BERLIN_SPLIT, "2026-11-16 12:00", "2026-11-16 15:00", 2),
    (BERLIN_NIGHT, "2026-03-29 00:00", "2026-03-30 00:00", 2),
    (BERLIN_NIGHT, "2026-10-25 00:00", "2026-10-26 00:00", 4),
    (BERLIN_IN_GAP, "2026-03-29 00:00", "2026-03-30 00:00", 0.25),  # from the change, 03:00
    (BERLIN_IN_GAP, "2026-10-25 00:00", "2026-10-26 00:00", 1.75),  # 02:30 CEST to 03:15 CET
    (BERLIN_ALWAYS, "2026-03-28 12:00", "2026-03-29 12:00", 23),
    (NEW_YORK_SUNDAYS, "2026-03-08 00:00", "2026-03-09 00:00", 23),
    (NEW_YORK_SUNDAYS, "2026-11-01 00:00", "2026-11-02 00:00", 25),
    (NEW_YORK_SUNDAYS, "2026-11-08 00:00", "2026-11-09 00:00", 24),
    (TEHRAN, "2026-03-18 12:00", "2026-03-25 12:00", 8),
    (TEHRAN_WHOLE_DAYS, "2021-03-22 00:00", "2021-03-23 00:00", 23),
    (TEHRAN_WHOLE_DAYS, "2021-09-21 00:00", "2021-09-22 00:00", 25),
    (TEHRAN_WHOLE_DAYS, "2023-03-22 00:00", "2023-03-23 00:00", 24),  # DST abolished in 2022
    (TBILISI, "2025-12-31 00:00", "2026-01-09 00:00", 4 * 9),
]


@pytest.mark.parametrize("calendar, first, last, expected", BETWEEN_CASES)
def test_working_between(calendar, first, last, expected):
    assert calendar.working_between(local(calendar, first), local(calendar, last)) == hours(expected)


# -- is_working and next_working_moment --------------------------------------

IS_WORKING_CASES = [
    (BERLIN, "2026-11-12 09:00", True),
    (BERLIN, "2026-11-12 16:59", True),
    (BERLIN, "2026-11-12 17:00", False),  # intervals are half-open
    (BERLIN, "2026-11-12 08:59", False),
    (BERLIN, "2026-11-14 12:00", False),  # Saturday
    (BERLIN, "2026-12-24 10:00", False),  # holiday
    (BERLIN_SPLIT, "2026-11-16 13:30", False),
    (TEHRAN, "2026-11-12 10:00", False),  # Thursday
    (TEHRAN, "2026-11-14 10:00", True),  # Saturday
    (TEHRAN, "2026-03-21 10:00", False),  # Nowruz
    (TEHRAN_SAT_THU, "2026-11-12 10:00", True),
    (BERLIN_ALWAYS, "2026-12-25 03:00", True),
]


@pytest.mark.parametrize("calendar, moment, expected", IS_WORKING_CASES)
def test_is_working(calendar, moment, expected):
    assert calendar.is_working(local(calendar, moment)) is expected


NEXT_CASES = [
    (BERLIN, "2026-11-12 10:00", "2026-11-12T10:00:00+01:00"),
    (BERLIN, "2026-11-12 17:00", "2026-11-13T09:00:00+01:00"),
    (BERLIN, "2026-12-23 18:00", "2026-12-28T09:00:00+01:00"),
    (BERLIN_SPLIT, "2026-11-16 13:15", "2026-11-16T14:00:00+01:00"),
    (BERLIN_IN_GAP, "2026-03-28 12:00", "2026-03-29T03:00:00+02:00"),  # 02:30 does not exist
    (TEHRAN, "2026-11-12 16:30", "2026-11-14T09:00:00+03:30"),
    (TBILISI, "2025-12-31 19:00", "2026-01-05T10:00:00+04:00"),
    (BERLIN_ALWAYS, "2026-12-25 03:00", "2026-12-25T03:00:00+01:00"),
]


@pytest.mark.parametrize("calendar, moment, expected", NEXT_CASES)
def test_next_working_moment(calendar, moment, expected):
    assert calendar.next_working_moment(local(calendar, moment)).isoformat() == expected


def test_intervals_on_a_split_day_and_a_day_off():
    assert [(a.isoformat(), b.isoformat()) for a, b in BERLIN_SPLIT.intervals_on(date(2026, 11, 16))] == [
        ("2026-11-16T09:00:00+01:00", "2026-11-16T13:00:00+01:00"),
        ("2026-11-16T14:00:00+01:00", "2026-11-16T17:00:00+01:00"),
    ]
    assert BERLIN_SPLIT.intervals_on(date(2026, 11, 15)) == []


# -- refusals ----------------------------------------------------------------

NAIVE = datetime(2026, 11, 12, 10, 0)


@pytest.mark.parametrize("call", [
    lambda c: c.is_working(NAIVE),
    lambda c: c.next_working_moment(NAIVE),
    lambda c: c.add_working(NAIVE, hours(1)),
    lambda c: c.subtract_working(NAIVE, hours(1)),
    lambda c: c.working_between(NAIVE, NAIVE),
])
@pytest.mark.parametrize("calendar", [BERLIN, BERLIN_ALWAYS])
def test_naive_datetimes_are_refused(calendar, call):
    with pytest.raises(ValueError, match="naive"):
        call(calendar)


def test_negative_working_time_is_refused():
    start = local(BERLIN, "2026-11-12 10:00")
    with pytest.raises(ValueError, match="negative"):
        BERLIN.add_working(start, hours(-1))
    with pytest.raises(ValueError, match="negative"):
        BERLIN.subtract_working(start, hours(-1))


@pytest.mark.parametrize("arguments, message", [
    (dict(timezone="Mars/Olympus", days=MON_FRI, hours=NINE_TO_FIVE), "unknown timezone"),
    (dict(timezone="UTC", days=set(), hours=NINE_TO_FIVE), "no working days"),
    (dict(timezone="UTC", days={7}, hours=NINE_TO_FIVE), "weekdays must be"),
    (dict(timezone="UTC", days=MON_FRI, hours=[]), "no working hours"),
    (dict(timezone="UTC", days=MON_FRI, hours=[(time(9), time(13)), (time(12), time(17))]), "overlaps"),
    (dict(timezone="UTC", days=MON_FRI, hours=[(time(22), time(6))]), "crosses midnight"),
    (dict(timezone="UTC", days=MON_FRI, hours=[(time(9), time(9))]), "empty"),
])
def test_invalid_calendars_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        WorkCalendar(**arguments)


def test_calendars_are_values():
    from_lists = WorkCalendar("UTC", [MON, TUE], [(time(9), time(17))])
    assert from_lists == WorkCalendar("UTC", {TUE, MON}, NINE_TO_FIVE)
    assert hash(from_lists) == hash(WorkCalendar("UTC", frozenset({MON, TUE}), tuple(NINE_TO_FIVE)))


# -- calendar_from_config ----------------------------------------------------

@pytest.mark.parametrize("table, expected", [
    ({"timezone": "Asia/Tehran", "days": ["sat", "sun", "mon", "tue", "wed"],
      "hours": ["09:00-13:00", "14:00-17:00"], "holidays": ["2026-03-21", date(2026, 3, 22)]},
     WorkCalendar("Asia/Tehran", SAT_WED, SPLIT_DAY, {date(2026, 3, 21), date(2026, 3, 22)})),
    ({"timezone": "Europe/Berlin", "days": ["Monday", "TUE", "wed", "Thursday", "fri"],
      "hours": ["9:00 – 17:00"]},
     WorkCalendar("Europe/Berlin", MON_FRI, NINE_TO_FIVE)),
    ({"timezone": "UTC", "days": ["sun"], "hours": ["00:00-24:00"]},
     WorkCalendar("UTC", {SUN}, WHOLE_DAY)),
    ({"timezone": "UTC", "days": ["sun"], "hours": ["18:00-24:00", "06:00-12:00"]},
     WorkCalendar("UTC", {SUN}, [(time(6), time(12)), (time(18), time(0))])),
    ({"always": True, "timezone": "UTC"}, WorkCalendar("UTC", always=True)),
    ({"always": False, "timezone": "Asia/Tbilisi", "days": ["mon"], "hours": ["10:00-19:00"]},
     WorkCalendar("Asia/Tbilisi", {MON}, [(time(10), time(19))])),
])
def test_config_builds_calendars(table, expected):
    assert calendar_from_config(table) == (expected, [])


def test_config_reads_a_holidays_file(tmp_path):
    path = tmp_path / "holidays.txt"
    path.write_text("# Nowruz 1405\n2026-03-21\n2026-03-22  # second day\n\n   \n2026-04-01\n")
    table = {"timezone": "Asia/Tehran", "days": ["sat"], "hours": ["09:00-17:00"],
             "holidays": ["2026-03-21", "2026-12-31"], "holidays_file": str(path)}
    calendar, problems = calendar_from_config(table)
    assert problems == []
    assert calendar.holidays == {date(2026, 3, 21), date(2026, 3, 22), date(2026, 4, 1), date(2026, 12, 31)}


GOOD = {"timezone": "Europe/Berlin", "days": ["mon"], "hours": ["09:00-17:00"]}


@pytest.mark.parametrize("table, problems", [
    ({"days": ["mon"], "hours": ["09:00-17:00"]},
     [("calendar.timezone", 'is required, e.g. "Europe/Berlin"')]),
    ({**GOOD, "timezone": "Asia/Teheran"}, [("calendar.timezone", "unknown timezone 'Asia/Teheran'")]),
    ({**GOOD, "timezone": "../etc/passwd"}, [("calendar.timezone", "unknown timezone '../etc/passwd'")]),
    ({**GOOD, "days": ["mon", "thurs", 3]},
     [("calendar.days", "unknown day name 'thurs'; use mon tue wed thu fri sat sun"),
      ("calendar.days", "unknown day name 3; use mon tue wed thu fri sat sun")]),
    ({**GOOD, "days": []}, [("calendar.days", "must be a non-empty list of day names, got []")]),
    ({**GOOD, "days": "mon-fri"},
     [("calendar.days", "must be a non-empty list of day names, got 'mon-fri'")]),
    ({"timezone": "UTC"},
     [("calendar.days", 'is required, e.g. ["mon", "tue", "wed", "thu", "fri"]'),
      ("calendar.hours", 'is required, e.g. ["09:00-17:00"]')]),
    ({**GOOD, "hours": ["09:00-13:00", "12:00-17:00"]},
     [("calendar.hours", "12:00-17:00 overlaps the interval before it")]),
    ({**GOOD, "hours": ["18:00-24:00", "20:00-21:00"]},
     [("calendar.hours", "20:00-21:00 overlaps the interval before it")]),
    ({**GOOD, "hours": ["22:00-06:00"]}, [("calendar.hours", "22:00-06:00 is empty or crosses midnight")]),
    ({**GOOD, "hours": ["09:00-09:00"]}, [("calendar.hours", "09:00-09:00 is empty or crosses midnight")]),
    ({**GOOD, "hours": ["9-17", "25:00-26:00", "09:60-10:00", "10:00-24:30", 9]},
     [("calendar.hours", f"{text!r} is not an interval like \"09:00-17:00\"")
      for text in ["9-17", "25:00-26:00", "09:60-10:00", "10:00-24:30", 9]]),
    ({**GOOD, "hours": "09:00-17:00"},
     [("calendar.hours", "must be a non-empty list like [\"09:00-17:00\"], got '09:00-17:00'")]),
    ({**GOOD, "holidays": ["2026-02-30", "21.03.2026", datetime(2026, 1, 1)]},
     [("calendar.holidays", f"{item!r} is not a date like \"2026-03-21\"")
      for item in ["2026-02-30", "21.03.2026", datetime(2026, 1, 1)]]),
    ({**GOOD, "holidays": "2026-03-21"},
     [("calendar.holidays", "must be a list of dates, got '2026-03-21'")]),
    ({**GOOD, "holiday": ["2026-03-21"]}, [("calendar.holiday", "unknown key; did you mean 'holidays'?")]),
    ({"always": True, "timezone": "UTC", "days": ["mon"], "holidays": []},
     [("calendar.days", "cannot be combined with always = true"),
      ("calendar.holidays", "cannot be combined with always = true")]),
    ({**GOOD, "always": "yes"}, [("calendar.always", 'expected true or false, got "yes"')]),
])
def test_config_problems(table, problems):
    assert calendar_from_config(table) == (None, problems)


def test_config_problems_use_the_given_key():
    assert calendar_from_config({**GOOD, "days": ["xyz"]}, key="sla.support.calendar") == (
        None, [("sla.support.calendar.days", "unknown day name 'xyz'; use mon tue wed thu fri sat sun")])


def test_config_reports_an_unreadable_holidays_file(tmp_path):
    missing = tmp_path / "missing.txt"
    calendar, problems = calendar_from_config({**GOOD, "holidays_file": str(missing)})
    assert calendar is None
    assert [key for key, _ in problems] == ["calendar.holidays_file"]
    assert problems[0][1].startswith(f"cannot read '{missing}'")


def test_config_reports_bad_lines_in_the_holidays_file(tmp_path):
    path = tmp_path / "holidays.txt"
    path.write_text("2026-03-21\n# fine\nNowruz\n2026-13-01 # wrong month\n")
    assert calendar_from_config({**GOOD, "holidays_file": str(path)}) == (None, [
        ("calendar.holidays_file", f"{path}:3: 'Nowruz' is not a date like \"2026-03-21\""),
        ("calendar.holidays_file", f"{path}:4: '2026-13-01' is not a date like \"2026-03-21\""),
    ])


@pytest.mark.parametrize("text, expected", [
    ("09:00-17:00", (time(9), time(17))),
    ("9:30–12:15", (time(9, 30), time(12, 15))),
    (" 00:00 - 24:00 ", (time(0), time(0))),
    ("17:00-09:00", (time(17), time(9))),  # well formed; hours_problems rejects it
    ("24:00-24:00", None),
    ("9h-17h", None),
    ("", None),
])
def test_parse_hours(text, expected):
    assert parse_hours(text) == expected


# -- properties --------------------------------------------------------------

PROPERTY_CALENDARS = [BERLIN, BERLIN_SPLIT, BERLIN_NIGHT, BERLIN_IN_GAP, BERLIN_ALWAYS, NEW_YORK,
                      NEW_YORK_SUNDAYS, TEHRAN, TEHRAN_SAT_THU, TEHRAN_WHOLE_DAYS, TBILISI]
EPOCH = datetime(2019, 1, 1, tzinfo=timezone.utc)  # Tehran still had DST until 2022
SPAN_SECONDS = 9 * 365 * 24 * 3600

calendars = st.sampled_from(PROPERTY_CALENDARS)
moments = st.integers(0, SPAN_SECONDS).map(lambda seconds: EPOCH + timedelta(seconds=seconds))
amounts = st.integers(0, 300 * 60).map(lambda minutes: timedelta(minutes=minutes))
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


def is_interval_end(calendar: WorkCalendar, moment: datetime) -> bool:
    day = moment.astimezone(calendar.zone).date()
    ends = [end for near in (day - timedelta(days=1), day) for _, end in calendar.intervals_on(near)]
    return moment in ends


@PROPERTY_SETTINGS
@given(calendars, moments, amounts)
def test_adding_then_subtracting_returns_to_a_working_start(calendar, moment, amount):
    start = calendar.next_working_moment(moment)
    assert calendar.subtract_working(calendar.add_working(start, amount), amount) == start


@PROPERTY_SETTINGS
@given(calendars, moments, amounts)
def test_working_time_until_the_deadline_is_the_amount_added(calendar, start, amount):
    assert calendar.working_between(start, calendar.add_working(start, amount)) == amount


@PROPERTY_SETTINGS
@given(calendars, moments, amounts)
def test_working_time_from_the_subtracted_start_is_the_amount(calendar, end, amount):
    assert calendar.working_between(calendar.subtract_working(end, amount), end) == amount


@PROPERTY_SETTINGS
@given(calendars, moments, amounts)
def test_a_deadline_is_working_time_or_an_interval_end(calendar, start, amount):
    deadline = calendar.add_working(start, amount)
    assert deadline.tzinfo == calendar.zone
    assert deadline >= start
    assert calendar.is_working(deadline) or is_interval_end(calendar, deadline)


@PROPERTY_SETTINGS
@given(calendars, moments, moments)
def test_working_time_adds_up_over_a_split(calendar, first, second):
    low, high = sorted([first, second])
    middle = low + (high - low) / 3
    assert (calendar.working_between(low, middle) + calendar.working_between(middle, high)
            == calendar.working_between(low, high))


def test_long_spans_are_cheap():
    start = local(TEHRAN, "2026-01-03 09:00")
    due = TEHRAN.add_working(start, hours(20_000))  # about ten years of working days
    assert TEHRAN.working_between(start, due) == hours(20_000)
    assert TEHRAN.subtract_working(due, hours(20_000)) == start
