"""Which of our mail languages a customer writes in, from the letters they use. Pure.

A contact without a locale gets the one their first message is written in, so
that the acknowledgement already answers a Persian, Georgian or English writer
in their language (an admin can still set it: `mailgate contact add EMAIL
--locale en`). Only a clear majority of one script counts:

- Georgian letters → "ka";
- Arabic-script letters → "fa" when Persian's own letters (پ چ ژ گ, Persian ye
  and kaf) outnumber Arabic's (ي ك ة), else None (Arabic: we have no templates);
- Latin letters → `latin`: "en", or the department's own locale when that is
  written in Latin script (a "de" department answers Latin text in German);
- anything else (Cyrillic, CJK, mixed, Latin-1 mojibake, fewer than `MIN_LETTERS`
  letters once the subject's "Re:" and [tags] are left out) → None,
  and the usual rule applies: the department's locale, else the installation's.

Measured on the 408 messages of ../shared/corpus (tests/test_language.py has the
labelled table): see `tests/language_truth.tsv`.
"""
from __future__ import annotations

import re

SAMPLE = 2000  # characters looked at
MIN_LETTERS = 4  # fewer letters than this say nothing ("ok", "Sup?")
MAJORITY = 0.6

_LETTER = re.compile(r"[^\W\d_]")
_ENOUGH_ASCII_LETTERS = re.compile(r"(?:[A-Za-z][^A-Za-z]*){%d}" % MIN_LETTERS)
_GEORGIAN = re.compile("[\u10A0-\u10FF\u1C90-\u1CBF\u2D00-\u2D2F]")
_ARABIC = re.compile("[\u0620-\u064A\u066E-\u06D3\u06FA-\u06FF\uFB50-\uFDFF\uFE70-\uFEFC]")
_LATIN = re.compile("[A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u1E00-\u1EFF]")
_ASCII_LETTER = re.compile("[A-Za-z]")
# A subject's tags and reply prefixes are not the writer's words: "Re: [MG#100014]".
_SUBJECT_NOISE = re.compile(r"\[[^\]]*\]|^\s*(?:[^\W\d_]{1,3}\s*:\s*)+")
# Letters Persian has and Arabic does not, and the Arabic forms Persian text does not use.
_PERSIAN_ONLY = re.compile("[پچژگیک]")
_ARABIC_ONLY = re.compile("[يكة]")
# Languages not written in Latin script: a department in one of them answers Latin
# text in English.
NOT_LATIN = frozenset({"fa", "ka", "ar", "ur", "ps", "he", "yi", "ru", "uk", "be", "bg",
                       "sr", "mk", "kk", "ky", "tg", "mn", "hy", "el", "zh", "ja", "ko",
                       "th", "hi", "bn", "ta", "te", "am"})


def latin_locale(department_locale: str | None) -> str:
    """The locale for Latin-script text: the department's when written in Latin, else en."""
    primary = (department_locale or "").replace("-", "_").split("_")[0].lower()
    return primary if primary and primary not in NOT_LATIN else "en"


def guess_locale(subject: str, text: str, latin: str = "en") -> str | None:
    """"ka", "fa", `latin` or None for the language of a message's subject and text."""
    sample = f"{_SUBJECT_NOISE.sub(' ', subject)}\n{text[:SAMPLE]}"
    if sample.isascii():  # most mail: Latin, without counting every letter
        return latin if _ENOUGH_ASCII_LETTERS.search(sample) else None
    letters = len(_LETTER.findall(sample))
    if letters < MIN_LETTERS:
        return None
    latin_letters = len(_LATIN.findall(sample))
    if latin_letters >= MAJORITY * letters:
        # written languages use mostly a-z; mostly accented letters is binary read as Latin-1
        return latin if len(_ASCII_LETTER.findall(sample)) >= latin_letters / 2 else None
    if len(_GEORGIAN.findall(sample)) >= MAJORITY * letters:
        return "ka"
    if len(_ARABIC.findall(sample)) >= MAJORITY * letters:
        persian, arabic = len(_PERSIAN_ONLY.findall(sample)), len(_ARABIC_ONLY.findall(sample))
        return "fa" if persian > arabic else None
    return None
