"""Dates and times as the customer reads them: their language, calendar and digits.

Supported locales (anything else, or nothing, reads as ``en``; region
suffixes such as ``fa_IR`` or ``ka-GE`` are ignored):

* ``en``: ``Saturday, 14 November 2026, 15:30 (Asia/Tehran)`` -- day before
  month, month spelled out, 24-hour clock and the timezone name, so that no
  reader can take 04/05 for 5 April or 4 May.
* ``fa``: Solar Hijri (Jalali) calendar, Persian names and digits:
  ``شنبه ۲۳ آبان ۱۴۰۵، ساعت ۱۵:۳۰``.
* ``ka``: Gregorian calendar, Georgian names, Western digits:
  ``შაბათი, 14 ნოემბერი 2026, 15:30``.

The Gregorian-to-Jalali conversion is jdatetime's; names are ours, so the
wording does not change with a library upgrade.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jdatetime

EN_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July",
             "August", "September", "October", "November", "December"]
# Monday first, like date.weekday(); spelled as in Unicode CLDR, with a zero-width
# non-joiner (U+200C) in سه‌شنبه only.
FA_WEEKDAYS = ["دوشنبه", "سه\u200cشنبه", "چهارشنبه", "پنجشنبه", "جمعه", "شنبه", "یکشنبه"]
FA_MONTHS = ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور",
             "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند"]
KA_WEEKDAYS = ["ორშაბათი", "სამშაბათი", "ოთხშაბათი", "ხუთშაბათი", "პარასკევი", "შაბათი", "კვირა"]
KA_MONTHS = ["იანვარი", "თებერვალი", "მარტი", "აპრილი", "მაისი", "ივნისი", "ივლისი",
             "აგვისტო", "სექტემბერი", "ოქტომბერი", "ნოემბერი", "დეკემბერი"]
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def to_persian_digits(text: str) -> str:
    """Replace the Western digits 0-9 with Persian ones (۰-۹); nothing else changes."""
    return text.translate(PERSIAN_DIGITS)


def language(locale: str | None) -> str:
    """``"fa_IR"`` -> ``"fa"``; unsupported or empty -> ``"en"``."""
    primary = (locale or "").replace("-", "_").split("_")[0].lower()
    return primary if primary in ("en", "fa", "ka") else "en"


def format_datetime(moment: datetime, locale: str, tz: str) -> str:
    """``moment`` (aware) as a date and time on the wall clock of ``tz``, in ``locale``."""
    local = _local(moment, tz)
    clock = f"{local:%H:%M}"
    match language(locale):
        case "fa":
            return f"{_fa_date(local.date())}، ساعت {to_persian_digits(clock)}"
        case "ka":
            return f"{_ka_date(local.date())}, {clock}"
        case _:
            return f"{_en_date(local.date())}, {clock} ({tz})"


def format_due(moment: datetime, locale: str, tz: str) -> str:
    """A deadline: ``format_datetime`` with the time zone named in every locale (en
    names it already): ``شنبه ۲۳ آبان ۱۴۰۵، ساعت ۱۵:۳۰ (Asia/Tehran)``."""
    text = format_datetime(moment, locale, tz)
    return text if language(locale) == "en" else f"{text} ({tz})"


def format_date(moment: datetime | date, locale: str, tz: str | None = None) -> str:
    """A date in ``locale``; an aware datetime is first moved to ``tz`` (required then)."""
    if isinstance(moment, datetime):
        if tz is None:
            raise ValueError("a timezone is required to tell the date of a datetime")
        moment = _local(moment, tz).date()
    match language(locale):
        case "fa":
            return _fa_date(moment)
        case "ka":
            return _ka_date(moment)
        case _:
            return _en_date(moment)


def jalali(day: date) -> tuple[int, int, int]:
    """The Solar Hijri (year, month, day) of a Gregorian date."""
    converted = jdatetime.date.fromgregorian(date=day)
    return converted.year, converted.month, converted.day


def _en_date(day: date) -> str:
    return f"{EN_WEEKDAYS[day.weekday()]}, {day.day} {EN_MONTHS[day.month - 1]} {day.year}"


def _fa_date(day: date) -> str:
    year, month, number = jalali(day)
    return to_persian_digits(f"{FA_WEEKDAYS[day.weekday()]} {number} {FA_MONTHS[month - 1]} {year}")


def _ka_date(day: date) -> str:
    return f"{KA_WEEKDAYS[day.weekday()]}, {day.day} {KA_MONTHS[day.month - 1]} {day.year}"


def _local(moment: datetime, tz: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: a timezone is required")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise ValueError(f"unknown timezone {tz!r}") from error
    return moment.astimezone(zone)
