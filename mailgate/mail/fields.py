"""Fields a customer sets by mail on a new ticket, as on a portal's form. Pure.

What they may ask for (`asked_*`): field lines at the top of the body (`Priority:
high`, `اولویت: فوری`, `პრიორიტეტი: მაღალი`, `Type:`/`نوع درخواست:`/`ტიპი:`,
`Product:`/`محصول:`/`პროდუქტი:`, or `#priority high`), the mail client's
X-Priority/Importance, and the plus tag of the address they wrote to
(`support+billing@`). What is understood (`understand`) is what the department
knows: its categories and products (`config_rules.Choice`, by key, label or word),
and a priority up to its ceiling; anything else is kept as written, to be noted.

The text is left as written: the lines are read, not cut.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ..config_rules import ARABIC_TO_PERSIAN, DepartmentFields
from ..vocabulary import PRIORITIES

MAX_FIELD_LINES = 8  # lines at the top of a body read as fields
MAX_FIELD_TEXT = 2000  # characters of a body's top those lines are looked for in
# the names a field line may start with, by field (normalized: see `plain`)
NAMES = {
    "priority": ("priority", "prio", "urgency", "اولویت", "الویت", "اهمیت", "فوریت",
                 "პრიორიტეტი", "პრიორიტეტულობა"),
    "category": ("type", "category", "topic", "request type", "issue type", "نوع درخواست",
                 "نوع", "دسته", "دسته بندی", "نوع مشکل", "ტიპი", "კატეგორია", "თემა",
                 "მოთხოვნის ტიპი"),
    "product": ("product", "service", "محصول", "سرویس", "خدمت", "პროდუქტი", "სერვისი"),
}
# what a customer may write for each priority, in en, fa and ka
PRIORITY_WORDS = {
    "low": ("low", "minor", "کم", "پایین", "کم اهمیت", "დაბალი"),
    "normal": ("normal", "medium", "عادی", "معمولی", "متوسط", "ჩვეულებრივი", "საშუალო",
               "ნორმალური"),
    "high": ("high", "important", "بالا", "زیاد", "مهم", "مهم و فوری", "მაღალი",
             "მნიშვნელოვანი"),
    "urgent": ("urgent", "critical", "emergency", "فوری", "خیلی فوری", "بحرانی", "اضطراری",
               "სასწრაფო", "გადაუდებელი", "კრიტიკული"),
}
# X-Priority 1-2 and Importance: high say "important", never "urgent"
HEADER_PRIORITY = {
    "x-priority": {"1": "high", "2": "high", "3": "normal", "4": "low", "5": "low"},
    "importance": {"high": "high", "normal": "normal", "low": "low"},
    "x-msmail-priority": {"high": "high", "normal": "normal", "low": "low"},
}


def plain(text: str) -> str:
    """`text` as compared: NFKC, Persian letters for Arabic ones, zero-width
    non-joiners as spaces, case folded, one space between words."""
    text = unicodedata.normalize("NFKC", text).translate(ARABIC_TO_PERSIAN)
    return " ".join(text.replace("\u200c", " ").casefold().split())


_BY_NAME = {name: fld for fld, names in NAMES.items() for name in names}
_NAME = "|".join(re.escape(name) for name in sorted(_BY_NAME, key=len, reverse=True))
_LINE = re.compile(rf"(?:#\s?(?P<tag>{_NAME})\s+|(?P<name>{_NAME})\s?:\s?)(?P<value>\S.*)")
_PRIORITY_BY_WORD = {plain(w): p for p, words in PRIORITY_WORDS.items() for w in words}


@dataclass(frozen=True)
class Asked:
    """One field as the customer asked for it."""
    field: str  # priority | category | product
    value: str  # as written
    source: str  # where: "Priority: line", "#priority", "X-Priority", "plus tag"


@dataclass(frozen=True)
class Understood:
    field: str
    value: str  # the priority, or the choice's key
    source: str
    labels: dict[str, str] = field(default_factory=dict)  # per locale (choices)
    note: str = ""  # e.g. capped at the ceiling


def asked_in_text(text: str) -> list[Asked]:
    """The field lines at the top of `text`: from its first line that is not blank,
    while each line is one, up to MAX_FIELD_LINES."""
    found = []
    for line in text.lstrip()[:MAX_FIELD_TEXT].splitlines()[:MAX_FIELD_LINES]:
        match = _LINE.fullmatch(plain(line)) if line.strip() else None
        if match is None:
            break
        name = match["tag"] or match["name"]
        written, value = _as_written(line, name, bool(match["tag"]))
        source = f"#{written}" if match["tag"] else f"{written}: line"
        found.append(Asked(_BY_NAME[name], value, source))
    return found


def _as_written(line: str, name: str, tagged: bool) -> tuple[str, str]:
    """The field's name and value in a field line as the customer wrote them."""
    line = unicodedata.normalize("NFKC", line).replace("\u200c", " ").strip()
    if not tagged:
        written, _, value = line.partition(":")
        return written.strip(), value.strip()
    words = line.lstrip("#").split()
    return " ".join(words[:len(name.split())]), " ".join(words[len(name.split()):])


def asked_in_headers(headers: dict[str, list[str]]) -> list[Asked]:
    """The priority the mail client set (X-Priority, Importance, X-MSMail-Priority)."""
    for name, values in HEADER_PRIORITY.items():
        for raw in headers.get(name, ()):
            word = raw.strip()[:1] if name == "x-priority" else raw.strip().casefold()
            if word in values:
                return [Asked("priority", values[word], f"{name}: {raw.strip()[:40]}")]
    return []


def asked_by_tag(tag: str | None, fields: DepartmentFields) -> list[Asked]:
    """What the plus tag of the address written to asks for (`plus_tag` says which field)."""
    if not tag or fields.plus_tag == "none":
        return []
    return [Asked(fields.plus_tag, tag, "plus tag")]


def understand(asked: list[Asked], fields: DepartmentFields
               ) -> tuple[dict[str, Understood], list[Asked]]:
    """({field: what is set}, what is not understood). A later ask of a field wins over an
    earlier one: pass them plus tag, headers, then lines."""
    known: dict[str, Understood] = {}
    unknown: list[Asked] = []
    for item in asked:
        found = _priority(item, fields) if item.field == "priority" else \
            _choice(item, fields.choices(item.field))
        if found is None:
            unknown.append(item)
        else:
            known[item.field] = found
    return known, unknown


def _priority(item: Asked, fields: DepartmentFields) -> Understood | None:
    value = _PRIORITY_BY_WORD.get(plain(item.value).rstrip(".!،"))
    if value is None:
        return None
    ceiling = fields.priority_ceiling
    if PRIORITIES.index(value) > PRIORITIES.index(ceiling):
        return Understood("priority", ceiling, item.source,
                          note=f"asked {value}, the most a customer may ask is {ceiling}")
    return Understood("priority", value, item.source)


def _choice(item: Asked, choices) -> Understood | None:
    wanted = plain(item.value).rstrip(".!،")
    for choice in choices:
        if any(wanted == plain(name) for name in choice.names() if name):
            return Understood(item.field, choice.key, item.source, choice.labels())
    return None
