"""Phone numbers in E.164, validated by `phonenumbers` (Google's libphonenumber data).

A number written without its country code (`0912 345 6789`, as people write
their own) is read in a region: the one a locale names (`fa_AF`: AF), else where
the language of our templates is spoken (`fa`: IR, `ka`: GE), else `[sms]
default_region`. Which locale: the contact's, else their department's.
"""
from __future__ import annotations

import phonenumbers

LANGUAGE_REGIONS = {"fa": "IR", "ka": "GE"}  # English is spoken in too many to choose one


def normalize_phone(value: str, default_region: str | None = None) -> str | None:
    """`+98 912 345 6789` -> `+989123456789`, `0912 345 6789` in region IR too; None when
    it is not a valid number (or a local one with no region to read it in)."""
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(*locales: str | None, default: str = "") -> str | None:
    """The region of the first of `locales` that names one ("fa" -> "IR", "en_GB" ->
    "GB"), else `default`; None when there is none."""
    for locale in locales:
        language, _, territory = (locale or "").replace("-", "_").partition("_")
        territory = territory.rpartition("_")[2].upper()  # zh_Hant_TW -> TW
        if len(territory) == 2 and territory.isalpha():
            return territory
        if language.lower() in LANGUAGE_REGIONS:
            return LANGUAGE_REGIONS[language.lower()]
    return default or None


def region_problem(region: str) -> str | None:
    """What is wrong with `region` as `[sms] default_region` (the format is checked when
    settings load; here, whether libphonenumber knows it: "UK" is "GB")."""
    if not region or region in phonenumbers.SUPPORTED_REGIONS:
        return None
    return f'not a region libphonenumber knows: "{region}"' + (
        ' (the United Kingdom is "GB")' if region == "UK" else "")
