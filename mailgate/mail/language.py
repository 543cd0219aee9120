"""Which of our mail languages a customer writes in, from the letters they use.

A contact without a locale gets the one their first message is written in, so
that the acknowledgement already answers a Persian or Georgian writer in their
language (an admin can still set it: `mailgate contact add EMAIL --locale en`).
Only a clear majority of one script counts; anything else (Latin script, mixed,
too little text, Arabic rather than Persian) returns None and the usual rule
applies: the department's locale, else the installation default.
"""
from __future__ import annotations

import re

SAMPLE = 2000  # characters looked at
MIN_LETTERS = 8  # fewer letters than this say nothing
MAJORITY = 0.6

# Letters Persian has and Arabic does not (پ چ ژ گ, Persian ye and kaf), and the
# Arabic forms Persian text does not use (Arabic ye, kaf, teh marbuta).
PERSIAN_ONLY = set("پچژگیک")
ARABIC_ONLY = set("يكة")
# any character `_script` calls Georgian or Arabic: without one, nothing can be a majority
_OURS = re.compile("[\u10A0-\u10FF\u1C90-\u1CBF\u2D00-\u2D2F\u0620-\u064A\u066E-\u06D3"
                   "\u06FA-\u06FF\uFB50-\uFDFF\uFE70-\uFEFC]")


def _script(char: str) -> str | None:
    code = ord(char)
    if 0x10A0 <= code <= 0x10FF or 0x1C90 <= code <= 0x1CBF or 0x2D00 <= code <= 0x2D2F:
        return "georgian"
    if 0x0620 <= code <= 0x064A or 0x066E <= code <= 0x06D3 or 0x06FA <= code <= 0x06FF \
            or 0xFB50 <= code <= 0xFDFF or 0xFE70 <= code <= 0xFEFC:
        return "arabic"
    return "other" if char.isalpha() else None


def guess_locale(subject: str, text: str) -> str | None:
    """"fa", "ka" or None for the language of a message's subject and text."""
    sample = f"{subject}\n{text[:SAMPLE]}"
    if _OURS.search(sample) is None:  # most mail: answered without a look at every letter
        return None
    counts = {"georgian": 0, "arabic": 0, "other": 0}
    for char in sample:
        script = _script(char)
        if script is not None:
            counts[script] += 1
    letters = sum(counts.values())
    if letters < MIN_LETTERS:
        return None
    if counts["georgian"] >= MAJORITY * letters:
        return "ka"
    if counts["arabic"] >= MAJORITY * letters:
        persian = sum(1 for char in sample if char in PERSIAN_ONLY)
        arabic = sum(1 for char in sample if char in ARABIC_ONLY)
        return "fa" if persian > arabic else None
    return None
