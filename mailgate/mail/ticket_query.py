""""My tickets" by mail: is this message a customer asking for their list, and with
which filters? Pure: text in, a `TicketQuery` (or None) out.

The request is the subject, or else the first non-blank line of the text, that
starts with one of the request words (`#tickets`, `my tickets`, `تیکت‌های من`,
`ჩემი ბილეთები`, or those configured) and holds nothing but filters after it:

    #tickets open                  open, closed, all, or a status (its name or label)
    #tickets since 1405-09-01      Solar Hijri (a year before 1700), or Gregorian;
    #tickets از ۱۴۰۵/۰۹/۰۱         Persian and Arabic-Indic digits too
    #tickets billing               a category

A plain-language request word ("my tickets") may be followed only by words it
knows (filters, known categories): "My tickets are gone" is a ticket, not a
request. After a `#` word, anything left is the category asked for.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field, replace

import jdatetime

DEFAULT_WORDS = ("#tickets", "my tickets", "تیکت‌های من", "ჩემი ბილეთები")
OPEN = frozenset({"new", "open", "in_progress", "answered"})
CLOSED = frozenset({"resolved", "closed"})
# the words of each filter, in en, fa and ka (compared after `normalize`)
STATE_WORDS = {
    "open": OPEN, "باز": OPEN, "ღია": OPEN,
    "closed": CLOSED, "بسته": CLOSED, "بسته شده": CLOSED, "დახურული": CLOSED,
    "all": frozenset(), "همه": frozenset(), "ყველა": frozenset(),
}
SINCE_WORDS = {"since", "from", "after", "از", "بعد از", "დან", "შემდეგ"}
# Arabic letters Persian writers' keyboards produce, and invisible direction marks
_LETTERS = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "\u200c": " ",
                          "\u200d": "", "\u200e": "", "\u200f": "", "\u061c": "",
                          "\u202a": "", "\u202b": "", "\u202c": "", "\u202d": "",
                          "\u202e": "", "\u2066": "", "\u2067": "", "\u2068": "",
                          "\u2069": "", "\ufeff": ""})
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:-?დან)?$")
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv)\s*:\s*)+", re.IGNORECASE)
_SPLIT = re.compile(r"[\s,;:،؛]+")


@dataclass(frozen=True)
class TicketQuery:
    """What the customer asked for. `statuses` empty: any; `since` None: any date;
    `category` "": any. `notes`: what looked like a date but is none (the answer says so)."""
    where: str  # "subject" | "first line"
    statuses: frozenset[str] = frozenset()
    since: dt.date | None = None
    category: str = ""
    notes: tuple[str, ...] = field(default=())
    language: str = ""  # that of the request word ("" for #tickets): the answer's, failing others

    def describe(self) -> str:
        """One line for the decision trace."""
        parts = [f"in the {self.where}"]
        if self.statuses:
            parts.append("status " + "/".join(sorted(self.statuses)))
        if self.since:
            parts.append(f"since {self.since.isoformat()}")
        if self.category:
            parts.append(f"category {self.category!r}")
        parts += [f"not a date: {note}" for note in self.notes]
        return ", ".join(parts)


def normalize(text: str) -> str:
    """Compare-ready: NFKC, case-folded, Persian letters and digits unified, direction
    marks dropped, a zero-width non-joiner read as a space, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).translate(_LETTERS).translate(_DIGITS)
    return " ".join(text.casefold().split())


def asks(subject: str, text: str, words: tuple[str, ...]) -> bool:
    """Does the subject or the first line start with a request word? (Cheap: the
    filters are read by `find_request` only when it does.)"""
    first = next((line for line in (text or "").splitlines() if line.strip()), "")
    lines = (normalize(_REPLY_PREFIX.sub("", subject or "")), normalize(first))
    return any(line.startswith(normalize(word)) for line in lines for word in words
               if word.strip())


def word_language(word: str) -> str:
    """fa, ka or en by the script of a request word; "" for a #word."""
    if word.startswith("#"):
        return ""
    if any("\u0600" <= c <= "\u06ff" for c in word):
        return "fa"
    if any("\u10a0" <= c <= "\u10ff" for c in word):
        return "ka"
    return "en"


def find_request(subject: str, text: str, words: tuple[str, ...] = DEFAULT_WORDS,
                 status_words: dict[str, str] | None = None,
                 categories: frozenset[str] = frozenset()) -> TicketQuery | None:
    """The request in `subject`, else in the first non-blank line of `text`, or None.
    `status_words`: label or name (any case, any locale) -> internal status;
    `categories`: the categories a plain-language request may name."""
    first = next((line for line in (text or "").splitlines() if line.strip()), "")
    for where, line in (("subject", _REPLY_PREFIX.sub("", subject or "")),
                        ("first line", first)):
        query = parse_line(line, where, words, status_words or {}, categories)
        if query is not None:
            return query
    return None


def parse_line(line: str, where: str, words: tuple[str, ...], status_words: dict[str, str],
               categories: frozenset[str]) -> TicketQuery | None:
    """The request in one line, or None when it is not one."""
    line = normalize(line)
    for word in sorted((normalize(w) for w in words if w.strip()), key=len, reverse=True):
        if line == word or line.startswith(word + " ") or line.startswith(word + ":"):
            rest = _SPLIT.split(line[len(word):].strip(" :"))
            query = _filters([t for t in rest if t], where, word.startswith("#"),
                             status_words, categories)
            return query and replace(query, language=word_language(word))
    return None


def _vocabulary(status_words: dict[str, str], categories: frozenset[str]
                ) -> dict[tuple[str, ...], tuple[str, object]]:
    """Phrase (as tokens) -> (kind, value) for every filter word."""
    vocab: dict[tuple[str, ...], tuple[str, object]] = {}
    for category in categories:
        vocab[tuple(normalize(category).split())] = ("category", category)
    for label, status in status_words.items():
        vocab[tuple(normalize(label).split())] = ("status", frozenset({status}))
        for name in (status, status.replace("_", " ")):
            vocab[tuple(normalize(name).split())] = ("status", frozenset({status}))
    for word, statuses in STATE_WORDS.items():
        vocab[tuple(word.split())] = ("status", statuses)
    for word in SINCE_WORDS:
        vocab[tuple(word.split())] = ("since", None)
    return vocab


def _filters(tokens: list[str], where: str, hashed: bool, status_words: dict[str, str],
             categories: frozenset[str]) -> TicketQuery | None:
    vocab = _vocabulary(status_words, categories)
    longest = max(len(k) for k in vocab)
    statuses: set[str] = set()
    since, category, unknown, notes, i = None, "", [], [], 0
    while i < len(tokens):
        date = _date(tokens[i])
        size = 1 if date is not None else next(
            (n for n in range(min(longest, len(tokens) - i), 0, -1)
             if tuple(tokens[i:i + n]) in vocab), 0)
        kind, value = ("date", date) if date is not None else \
            vocab[tuple(tokens[i:i + size])] if size else ("unknown", tokens[i])
        i += max(size, 1)
        if kind == "date" and isinstance(value, dt.date):
            since = value
        elif kind == "date":
            notes.append(value)
        elif kind == "status":
            statuses |= value
        elif kind == "category":
            category = value
        elif kind == "unknown":
            unknown.append(value)
    if unknown:
        if not hashed:
            return None  # "my tickets are gone": a message, not a request
        category = " ".join(unknown)
    return TicketQuery(where, frozenset(statuses), since, category, tuple(notes))


def _date(token: str) -> dt.date | str | None:
    """A date token as a Gregorian date; the token itself when it looks like a date
    but is none (1405-13-01); None when it is no date at all."""
    match = _DATE.match(token)
    if match is None:
        return None
    year, month, day = (int(g) for g in match.groups())
    try:
        if year < 1700:  # Solar Hijri: 1405 is 2026
            return jdatetime.date(year, month, day).togregorian()
        return dt.date(year, month, day)
    except ValueError:
        return token
