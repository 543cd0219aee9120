"""The tracking token in subjects, e.g. `[MG#100042]`: format, find and strip. Pure.

A ticket number is a sequence number followed by a Damm check digit, which
catches every single-digit typo and every swap of two adjacent digits, so a
mistyped number never lands on somebody else's ticket.
"""
from __future__ import annotations

import re
import unicodedata

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)
FIRST_SEQUENCE = 10000
# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits, which a customer's
# keyboard may produce when retyping a subject.
_DIGITS = {ord(c): str(i) for i, c in enumerate("۰۱۲۳۴۵۶۷۸۹")}
_DIGITS.update({ord(c): str(i) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩")})


def damm(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][int(ch)]
    return interim


def ticket_number(ticket_id: int) -> str:
    """The public number of the ticket with database id `ticket_id`."""
    sequence = str(FIRST_SEQUENCE + ticket_id)
    return f"{sequence}{damm(sequence)}"


def is_valid_number(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and damm(number) == 0


def format_token(prefix: str, number: str) -> str:
    return f"[{prefix}#{number}]"


def _normalize(subject: str) -> tuple[str, list[int]]:
    """`subject` with full-width brackets, '#' and digits folded to ASCII (NFKC) and
    Persian digits to ASCII, and where each of its characters came from in `subject`
    (one more entry for the end)."""
    folded, origin = [], []
    for index, ch in enumerate(subject):
        normal = unicodedata.normalize("NFKC", ch).translate(_DIGITS)
        folded.append(normal)
        origin.extend([index] * len(normal))
    origin.append(len(subject))
    return "".join(folded), origin


# Reply and forward markers that mail clients put before a subject they answer.
_REPLY = r"\b(?:re|aw|sv|vs|antw|wg|fw|fwd|tr|رد|پاسخ|ответ|რე)\s*:\s*"


def _token_pattern(prefixes: list[str] | set[str], around: bool = False) -> re.Pattern:
    """A token of `prefixes` (group 1: its number); `around`: with the brackets around
    it and the reply markers before it."""
    names = "|".join(sorted((re.escape(p) for p in prefixes), key=len, reverse=True))
    token = rf"(?<![A-Za-z0-9])(?:{names})\s*#\s*(\d{{2,18}})(?!\d)"
    if around:
        token = rf"(?:{_REPLY})*[\[(]?\s*{token}\s*[\])]?"
    return re.compile(token, re.IGNORECASE)


def find_tokens(subject: str, prefixes: list[str] | set[str]) -> list[tuple[str, bool]]:
    """(number, check digit valid) for every token of ours in `subject`, left to right."""
    if not subject or not prefixes:
        return []
    return [(m.group(1), is_valid_number(m.group(1)))
            for m in _token_pattern(prefixes).finditer(_normalize(subject)[0])]


def strip_tokens(subject: str, prefixes: list[str] | set[str]) -> str:
    """`subject` without the tokens of `prefixes` it carries, the `Re:`/`Fwd:` before
    them and their brackets: a new ticket's subject, which gets its own token, keeps
    none of another ticket's (a mistyped one, or the one a linked ticket follows)."""
    if not subject or not prefixes:
        return subject
    folded, origin = _normalize(subject)
    kept, start = [], 0
    for match in _token_pattern(prefixes, around=True).finditer(folded):
        kept.append(subject[start:origin[match.start()]])
        start = origin[match.end()]
    if start == 0:
        return subject
    kept.append(subject[start:])
    return " ".join("".join(kept).split())
