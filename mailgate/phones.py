"""Phone numbers in E.164, validated by `phonenumbers` (Google's libphonenumber data)."""
from __future__ import annotations

import phonenumbers


def normalize_phone(value: str, default_region: str | None = None) -> str | None:
    """`+98 912 345 6789` -> `+989123456789`; None when it is not a valid number."""
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
