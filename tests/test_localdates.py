"""Dates in the customer's locale: exact strings, and the Jalali calendar checked independently."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from mailgate.localdates import format_date, format_datetime, jalali, language, to_persian_digits

UTC = timezone.utc
SATURDAY_NOON_UTC = datetime(2026, 11, 14, 12, 0, tzinfo=UTC)  # 15:30 in Tehran, 16:00 in Tbilisi

# 1 Farvardin (Nowruz) of each Solar Hijri year: the day whose Tehran noon (UTC+03:30)
# follows the March equinox. Equinox instants are the published astronomical ones
# (e.g. 2025-03-20 09:01 UTC = 12:31 in Tehran, after noon, so 1404 began on 21 March).
NOWRUZ = {
    1395: date(2016, 3, 20), 1396: date(2017, 3, 21), 1397: date(2018, 3, 21),
    1398: date(2019, 3, 21), 1399: date(2020, 3, 20), 1400: date(2021, 3, 21),
    1401: date(2022, 3, 21), 1402: date(2023, 3, 21), 1403: date(2024, 3, 20),
    1404: date(2025, 3, 21), 1405: date(2026, 3, 21), 1406: date(2027, 3, 21),
    1407: date(2028, 3, 20), 1408: date(2029, 3, 20), 1409: date(2030, 3, 21),
    1410: date(2031, 3, 21), 1411: date(2032, 3, 20),
}


def jalali_by_counting(day: date) -> tuple[int, int, int]:
    """An independent conversion: days since the last Nowruz, months of 31 x 6, 30 x 5, then Esfand."""
    year = max(year for year, start in NOWRUZ.items() if start <= day)
    offset = (day - NOWRUZ[year]).days
    for month, length in enumerate([31] * 6 + [30] * 6, start=1):
        if offset < length:
            return year, month, offset + 1
        offset -= length
    raise AssertionError(f"{day} is past Esfand {year}")


def test_jalali_agrees_with_counting_from_nowruz_for_every_day_1395_to_1410():
    day, end = NOWRUZ[1395], NOWRUZ[1411]
    while day < end:
        assert jalali(day) == jalali_by_counting(day), day
        day += timedelta(days=1)


@pytest.mark.parametrize("gregorian, expected", [
    (date(2026, 3, 21), (1405, 1, 1)),
    (date(2025, 3, 21), (1404, 1, 1)),
    (date(2025, 3, 20), (1403, 12, 30)),  # 1403 is a leap year: Esfand has 30 days
    (date(2026, 3, 20), (1404, 12, 29)),
    (date(2024, 3, 20), (1403, 1, 1)),
    (date(2026, 11, 14), (1405, 8, 23)),
    (date(1979, 2, 11), (1357, 11, 22)),  # 22 Bahman, anniversary of the revolution
    (date(2000, 1, 1), (1378, 10, 11)),
])
def test_known_jalali_dates(gregorian, expected):
    assert jalali(gregorian) == expected


FORMAT_DATETIME_CASES = [
    # moment, locale, tz, expected
    (SATURDAY_NOON_UTC, "en", "Asia/Tehran", "Saturday, 14 November 2026, 15:30 (Asia/Tehran)"),
    (SATURDAY_NOON_UTC, "fa", "Asia/Tehran", "شنبه ۲۳ آبان ۱۴۰۵، ساعت ۱۵:۳۰"),
    (SATURDAY_NOON_UTC, "ka", "Asia/Tbilisi", "შაბათი, 14 ნოემბერი 2026, 16:00"),
    (SATURDAY_NOON_UTC, "fa_IR", "Asia/Tehran", "شنبه ۲۳ آبان ۱۴۰۵، ساعت ۱۵:۳۰"),
    (SATURDAY_NOON_UTC, "ka-GE", "Asia/Tbilisi", "შაბათი, 14 ნოემბერი 2026, 16:00"),
    (SATURDAY_NOON_UTC, "de", "Europe/Berlin", "Saturday, 14 November 2026, 13:00 (Europe/Berlin)"),
    (SATURDAY_NOON_UTC, "", "UTC", "Saturday, 14 November 2026, 12:00 (UTC)"),
    # the date is the one on the customer's wall clock, here already Nowruz in Tehran
    (datetime(2026, 3, 20, 21, 0, tzinfo=UTC), "fa", "Asia/Tehran", "شنبه ۱ فروردین ۱۴۰۵، ساعت ۰۰:۳۰"),
    (datetime(2026, 3, 20, 21, 0, tzinfo=UTC), "en", "Asia/Tehran",
     "Saturday, 21 March 2026, 00:30 (Asia/Tehran)"),
    (datetime(2026, 3, 20, 21, 0, tzinfo=UTC), "en", "America/New_York",
     "Friday, 20 March 2026, 17:00 (America/New_York)"),
    (datetime(2025, 3, 20, 9, 5, tzinfo=UTC), "fa", "Asia/Tehran", "پنجشنبه ۳۰ اسفند ۱۴۰۳، ساعت ۱۲:۳۵"),
    (datetime(2021, 6, 1, 5, 0, tzinfo=UTC), "fa", "Asia/Tehran", "سه\u200cشنبه ۱۱ خرداد ۱۴۰۰، ساعت ۰۹:۳۰"),
    (datetime(2026, 1, 4, 5, 7, tzinfo=UTC), "ka", "Asia/Tbilisi", "კვირა, 4 იანვარი 2026, 09:07"),
    (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "ka", "Asia/Tbilisi", "პარასკევი, 1 იანვარი 2027, 03:30"),
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "en", "Europe/Berlin",
     "Sunday, 29 March 2026, 03:00 (Europe/Berlin)"),
]


@pytest.mark.parametrize("moment, locale, tz, expected", FORMAT_DATETIME_CASES)
def test_format_datetime(moment, locale, tz, expected):
    assert format_datetime(moment, locale, tz) == expected


WEEK = [date(2026, 11, 16) + timedelta(days=n) for n in range(7)]  # Monday to Sunday


@pytest.mark.parametrize("day, en, fa, ka", [
    (WEEK[0], "Monday, 16 November 2026", "دوشنبه ۲۵ آبان ۱۴۰۵", "ორშაბათი, 16 ნოემბერი 2026"),
    (WEEK[1], "Tuesday, 17 November 2026", "سه\u200cشنبه ۲۶ آبان ۱۴۰۵", "სამშაბათი, 17 ნოემბერი 2026"),
    (WEEK[2], "Wednesday, 18 November 2026", "چهارشنبه ۲۷ آبان ۱۴۰۵", "ოთხშაბათი, 18 ნოემბერი 2026"),
    (WEEK[3], "Thursday, 19 November 2026", "پنجشنبه ۲۸ آبان ۱۴۰۵", "ხუთშაბათი, 19 ნოემბერი 2026"),
    (WEEK[4], "Friday, 20 November 2026", "جمعه ۲۹ آبان ۱۴۰۵", "პარასკევი, 20 ნოემბერი 2026"),
    (WEEK[5], "Saturday, 21 November 2026", "شنبه ۳۰ آبان ۱۴۰۵", "შაბათი, 21 ნოემბერი 2026"),
    (WEEK[6], "Sunday, 22 November 2026", "یکشنبه ۱ آذر ۱۴۰۵", "კვირა, 22 ნოემბერი 2026"),
])
def test_format_date_names_every_weekday(day, en, fa, ka):
    assert (format_date(day, "en"), format_date(day, "fa"), format_date(day, "ka")) == (en, fa, ka)


@pytest.mark.parametrize("gregorian, fa, ka", [
    (date(2026, 3, 21), "شنبه ۱ فروردین ۱۴۰۵", "შაბათი, 21 მარტი 2026"),
    (date(2026, 4, 21), "سه\u200cشنبه ۱ اردیبهشت ۱۴۰۵", "სამშაბათი, 21 აპრილი 2026"),
    (date(2026, 5, 22), "جمعه ۱ خرداد ۱۴۰۵", "პარასკევი, 22 მაისი 2026"),
    (date(2026, 6, 22), "دوشنبه ۱ تیر ۱۴۰۵", "ორშაბათი, 22 ივნისი 2026"),
    (date(2026, 7, 23), "پنجشنبه ۱ مرداد ۱۴۰۵", "ხუთშაბათი, 23 ივლისი 2026"),
    (date(2026, 8, 23), "یکشنبه ۱ شهریور ۱۴۰۵", "კვირა, 23 აგვისტო 2026"),
    (date(2026, 9, 23), "چهارشنبه ۱ مهر ۱۴۰۵", "ოთხშაბათი, 23 სექტემბერი 2026"),
    (date(2026, 10, 23), "جمعه ۱ آبان ۱۴۰۵", "პარასკევი, 23 ოქტომბერი 2026"),
    (date(2026, 11, 22), "یکشنبه ۱ آذر ۱۴۰۵", "კვირა, 22 ნოემბერი 2026"),
    (date(2026, 12, 22), "سه\u200cشنبه ۱ دی ۱۴۰۵", "სამშაბათი, 22 დეკემბერი 2026"),
    (date(2027, 1, 21), "پنجشنبه ۱ بهمن ۱۴۰۵", "ხუთშაბათი, 21 იანვარი 2027"),
    (date(2027, 2, 20), "شنبه ۱ اسفند ۱۴۰۵", "შაბათი, 20 თებერვალი 2027"),
])
def test_format_date_names_every_month(gregorian, fa, ka):
    assert (format_date(gregorian, "fa"), format_date(gregorian, "ka")) == (fa, ka)


def test_format_date_of_a_datetime_uses_the_customers_date():
    late_friday_in_new_york = datetime(2026, 11, 14, 1, 0, tzinfo=UTC)
    assert format_date(late_friday_in_new_york, "en", "America/New_York") == "Friday, 13 November 2026"
    assert format_date(late_friday_in_new_york, "fa", "Asia/Tehran") == "شنبه ۲۳ آبان ۱۴۰۵"


@pytest.mark.parametrize("call, message", [
    (lambda: format_datetime(datetime(2026, 11, 14, 12, 0), "en", "UTC"), "naive"),
    (lambda: format_datetime(SATURDAY_NOON_UTC, "en", "Asia/Teheran"), "unknown timezone"),
    (lambda: format_date(datetime(2026, 11, 14, 12, 0), "fa", "Asia/Tehran"), "naive"),
    (lambda: format_date(SATURDAY_NOON_UTC, "fa"), "timezone is required"),
])
def test_refusals(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("text, expected", [
    ("0123456789", "۰۱۲۳۴۵۶۷۸۹"),
    ("Ticket #42, 15:30", "Ticket #۴۲, ۱۵:۳۰"),
    ("١٢٣ ۱۲۳ no digits", "١٢٣ ۱۲۳ no digits"),  # Arabic-Indic and Persian digits stay
    ("", ""),
])
def test_to_persian_digits(text, expected):
    assert to_persian_digits(text) == expected


@pytest.mark.parametrize("locale, expected", [
    ("en", "en"), ("en_GB", "en"), ("fa", "fa"), ("fa_IR", "fa"), ("FA-ir", "fa"),
    ("ka", "ka"), ("ka_GE", "ka"), ("de_DE", "en"), ("", "en"), (None, "en"),
])
def test_language(locale, expected):
    assert language(locale) == expected
