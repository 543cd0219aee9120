"""Business calendars and working-time arithmetic.

A :class:`WorkCalendar` says when a team works: a timezone, the working
weekdays, the working hours of each working day (possibly split, such as
09:00-13:00 and 14:00-17:00), the holidays, or simply "always" (24/7).
Its methods answer the questions a service-level promise asks: is this
moment working time, when does working time resume, when have N working
hours elapsed, how much working time lies between two moments.

Rules, all of them deliberate:

* Inputs are timezone-aware datetimes (a naive one raises ``ValueError``);
  results are aware datetimes in the calendar's timezone.
* Working time is real elapsed time. Hours are read on the local wall clock
  of each day, so on a daylight-saving change day an interval that spans the
  change is one hour shorter (spring forward) or longer (fall back).
* Each interval boundary is the first moment at which the local clock shows
  that time: a time skipped by a spring-forward change means the moment of
  the change, a time repeated by a fall-back change means its first
  occurrence.
* An interval is half-open, ``[start, end)``: at 17:00 with hours 09:00-17:00
  ``is_working`` is False and ``next_working_moment`` is the next morning.
* Adding working time that runs out exactly at the end of an interval returns
  that end, not the next interval's start: Thursday 16:30 + 30 minutes with
  hours 09:00-17:00 is Thursday 17:00. So a deadline computed by
  :meth:`WorkCalendar.add_working` is always working time or exactly the end
  of an interval. Likewise subtracting that runs out exactly at the start of
  an interval returns that start.
* A start outside working time counts from the next working moment (for
  adding) or the previous one (for subtracting). Adding or subtracting zero
  returns the moment itself when it lies in an interval or on its end.
* Holidays are local dates. In "always" mode there are no days, hours or
  holidays: every moment is working time.

Work is done day by day, never minute by minute, so long spans are cheap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = timezone.utc
ONE_DAY = timedelta(days=1)
MIDNIGHT = time(0)

HOURS_PATTERN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class WorkCalendar:
    """When a team works. See the module docstring for the exact rules.

    ``days`` are Python weekday numbers (Monday is 0, Sunday is 6).
    ``hours`` are ``(start, end)`` local times; an end of ``time(0)`` means
    midnight at the end of the day. Lists and sets are accepted and stored
    as a sorted tuple and frozensets.
    """

    timezone: str
    days: frozenset[int] = frozenset()
    hours: tuple[tuple[time, time], ...] = ()
    holidays: frozenset[date] = frozenset()
    always: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        object.__setattr__(self, "hours", tuple(sorted(tuple(pair) for pair in self.hours)))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        problems = calendar_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def intervals_on(self, day: date) -> list[Interval]:
        """The working intervals of a local date, as aware datetimes in the calendar's zone."""
        return [(start.astimezone(self.zone), end.astimezone(self.zone))
                for start, end in self._utc_intervals(day)]

    def is_working(self, moment: datetime) -> bool:
        now = _utc(moment)
        if self.always:
            return True
        day = self._local_date(now)
        nearby = [span for near in (day - ONE_DAY, day, day + ONE_DAY) for span in self._utc_intervals(near)]
        return any(start <= now < end for start, end in nearby)

    def next_working_moment(self, moment: datetime) -> datetime:
        """``moment`` itself when it is working time, else the start of the next interval."""
        now = _utc(moment)
        if not self.always:
            now = next(max(now, start) for start, end in self._intervals_from(now) if end > now)
        return now.astimezone(self.zone)

    def add_working(self, start: datetime, delta: timedelta) -> datetime:
        """The moment at which ``delta`` of working time has elapsed after ``start``."""
        now, remaining = _utc(start), _non_negative(delta)
        if self.always:
            return (now + remaining).astimezone(self.zone)
        for begin, end in self._intervals_from(now):
            if end < now:
                continue
            now = max(now, begin)
            if now + remaining <= end:
                return (now + remaining).astimezone(self.zone)
            remaining -= end - now
            now = end
        raise AssertionError("unreachable: working intervals never run out")

    def subtract_working(self, end: datetime, delta: timedelta) -> datetime:
        """The moment from which ``delta`` of working time elapses until ``end``."""
        now, remaining = _utc(end), _non_negative(delta)
        if self.always:
            return (now - remaining).astimezone(self.zone)
        for begin, finish in self._intervals_back_from(now):
            if begin > now:
                continue
            now = min(now, finish)
            if now - remaining >= begin:
                return (now - remaining).astimezone(self.zone)
            remaining -= now - begin
            now = begin
        raise AssertionError("unreachable: working intervals never run out")

    def working_between(self, first: datetime, last: datetime) -> timedelta:
        """The working time in ``[first, last)``; zero when ``last <= first``."""
        low, high = _utc(first), _utc(last)
        if high <= low:
            return timedelta(0)
        if self.always:
            return high - low
        total = timedelta(0)
        for begin, end in self._intervals_from(low):
            if begin >= high:
                return total
            total += max(timedelta(0), min(end, high) - max(begin, low))
        raise AssertionError("unreachable: working intervals never run out")

    # -- helpers: intervals as UTC datetimes, so that arithmetic is real time

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def _utc_intervals(self, day: date) -> list[Interval]:
        if self.always or day.weekday() not in self.days or day in self.holidays:
            return []
        spans = [(_first_instant_showing(self.zone, day, start),
                  _first_instant_showing(self.zone, day + ONE_DAY if end == MIDNIGHT else day, end))
                 for start, end in self.hours]
        return [(start, end) for start, end in spans if start < end]

    def _intervals_from(self, moment: datetime):
        """Intervals in time order, from the day before ``moment``'s local date on, forever."""
        day = self._local_date(moment) - ONE_DAY
        while True:
            yield from self._utc_intervals(day)
            day += ONE_DAY

    def _intervals_back_from(self, moment: datetime):
        """Intervals in reverse time order, from the day after ``moment``'s local date back."""
        day = self._local_date(moment) + ONE_DAY
        while True:
            yield from reversed(self._utc_intervals(day))
            day -= ONE_DAY


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: a timezone is required")
    return moment.astimezone(UTC)


def _non_negative(delta: timedelta) -> timedelta:
    if delta < timedelta(0):
        raise ValueError(f"negative working time {delta}")
    return delta


def _first_instant_showing(zone: ZoneInfo, day: date, clock: time) -> datetime:
    """The first UTC instant at which the wall clock in ``zone`` shows ``day`` ``clock`` or later."""
    wall = datetime.combine(day, clock)
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if _wall(instant, zone) == wall:
        return instant  # an existing time; fold=0 is its first occurrence
    # Skipped by a spring-forward change: find the change between the two readings.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(instant.timestamp())
    low, high = min(low, high), max(low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


# -- validation, shared by the constructor and the config reader (`service.py`)


def calendar_problems(calendar: WorkCalendar) -> list[str]:
    """What is wrong with a calendar, as messages; empty when it is usable."""
    problems = timezone_problems(calendar.timezone)
    if calendar.always:
        return problems
    if not calendar.days:
        problems.append("no working days")
    if any(day not in range(7) for day in calendar.days):
        problems.append(f"weekdays must be 0 (Monday) to 6 (Sunday), got {sorted(calendar.days)}")
    if not calendar.hours:
        problems.append("no working hours")
    return problems + hours_problems(calendar.hours)


def timezone_problems(name: str) -> list[str]:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return [f"unknown timezone {name!r}"]
    return []


def hours_problems(hours) -> list[str]:
    """Intervals must be non-empty, stay within one day and not overlap."""
    problems = []
    previous_end = None
    for start, end in sorted(hours):
        if end != MIDNIGHT and end <= start:
            problems.append(f"{_span(start, end)} is empty or crosses midnight")
        elif previous_end is not None and (previous_end == MIDNIGHT or start < previous_end):
            problems.append(f"{_span(start, end)} overlaps the interval before it")
        previous_end = end
    return problems


def _span(start: time, end: time) -> str:
    end_text = "24:00" if end == MIDNIGHT else f"{end:%H:%M}"
    return f"{start:%H:%M}-{end_text}"


# -- reading working hours


def parse_hours(text: str) -> tuple[time, time] | None:
    """``"09:00-17:00"`` -> ``(time(9), time(17))``; ``"24:00"`` as end is ``time(0)``; else None."""
    match = HOURS_PATTERN.match(text)
    if not match:
        return None
    start_hour, start_minute, end_hour, end_minute = map(int, match.groups())
    if start_hour > 23 or start_minute > 59 or end_minute > 59 or end_hour > 24:
        return None
    if end_hour == 24:
        return (time(start_hour, start_minute), MIDNIGHT) if end_minute == 0 else None
    return time(start_hour, start_minute), time(end_hour, end_minute)
