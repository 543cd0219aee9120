"""What customers and agents read for a ticket status, per locale: one place.

The internal statuses stay fixed (`vocabulary.Status`, plus "reopened", which
status mail shows for a closed ticket opened again); what each is called is
configured here, one line each, and every template, SMS, `ticket list`, the
"my tickets" mail and the status page ask `status_label()`:

    [statuses.en]
    in_progress = "In review"
    resolved = "Finished"
    [statuses.fa]
    in_progress = "در حال بررسی"
    resolved = "پایان یافته"
    [statuses.departments.hotels.ka]   # one department's own word, where it must differ
    resolved = "დასრულებულია"

Labels are per locale because that is how the portals name them: one organisation,
one vocabulary, so the same ticket reads the same in a list of several departments'
tickets. A department may still override a label (a product team whose "resolved"
means "deployed"); a status or locale not configured keeps the built-in label.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config_keys import Invalid
from .localdates import language
from .vocabulary import STATUSES

if TYPE_CHECKING:
    from .config import Settings

SHOWN = (*STATUSES, "reopened")
BUILTIN: dict[str, dict[str, str]] = {
    "en": {"new": "New", "open": "Open", "in_progress": "In progress",
           "answered": "Answered", "resolved": "Resolved", "closed": "Closed",
           "reopened": "Reopened"},
    "fa": {"new": "جدید", "open": "باز", "in_progress": "در حال بررسی",
           "answered": "پاسخ داده‌شده", "resolved": "حل‌شده", "closed": "بسته‌شده",
           "reopened": "بازگشایی‌شده"},
    "ka": {"new": "ახალი", "open": "ღია", "in_progress": "მუშავდება",
           "answered": "პასუხი გაცემულია", "resolved": "გადაწყვეტილია",
           "closed": "დახურულია", "reopened": "ხელახლა გახსნილია"},
}
Labels = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # ((locale, ((status, label),…)),…)


@dataclass(frozen=True)
class StatusLabels:
    """`[statuses]`: labels per locale, and per department (key) per locale. Tuples,
    not dicts, so that settings stay hashable and picklable."""
    locales: Labels = ()
    departments: tuple[tuple[str, Labels], ...] = ()

    def table(self, locale: str, department: str | None = None) -> dict[str, str]:
        """Every status's label in `locale` for `department`."""
        labels = dict(BUILTIN.get(locale, BUILTIN["en"]))
        labels.update(dict(dict(self.locales).get(locale, ())))
        if department:
            labels.update(dict(dict(dict(self.departments).get(department, ())).get(locale, ())))
        return labels


def status_label(settings: "Settings", status: str, locale: str | None,
                 department: str | None = None) -> str:
    """The label of `status` in `locale` (a region suffix is ignored) for `department`
    (its key); an unknown status is shown as it is."""
    return status_labels(settings, locale, department).get(status, status)


def status_labels(settings: "Settings", locale: str | None,
                  department: str | None = None) -> dict[str, str]:
    """Every status's label: what templates receive as `statuses`."""
    return settings.statuses.table(language(locale), department)


def status_words(settings: "Settings") -> dict[str, str]:
    """Every label in every locale (and every department's) -> its status, so that a
    customer may filter by the word they read ("#tickets در حال بررسی")."""
    words: dict[str, str] = {}
    section = settings.statuses
    departments = [None] + [key for key, _ in section.departments]
    for locale in BUILTIN:
        for department in departments:
            for status, label in section.table(locale, department).items():
                if status != "reopened":
                    words.setdefault(label, status)
    return words


def read_status_labels(table) -> StatusLabels:
    """`[statuses]` from TOML: LOCALE tables of status = "label", and `departments.KEY`
    tables of LOCALE tables."""
    if not isinstance(table, dict):
        raise Invalid("must be a table of locales: [statuses.fa]")
    departments = table.get("departments", {})
    if not isinstance(departments, dict):
        raise Invalid(("departments", "must be a table of department keys"))
    problems: list = []
    locales = _locales({k: v for k, v in table.items() if k != "departments"}, "", problems)
    per_department = tuple((key, _locales(value, f"departments.{key}", problems))
                           for key, value in departments.items())
    if problems:
        raise Invalid(*problems)
    return StatusLabels(locales, per_department)


def _locales(table, where: str, problems: list) -> Labels:
    if not isinstance(table, dict):
        problems.append((where, "must be a table of locales"))
        return ()
    result = []
    for locale, labels in table.items():
        here = f"{where}.{locale}".lstrip(".")
        if locale not in BUILTIN:
            problems.append((here, f"unknown locale; one of {', '.join(BUILTIN)}"))
        elif not isinstance(labels, dict):
            problems.append((here, 'must be a table: status = "label"'))
        else:
            result.append((locale, _labels(labels, here, problems)))
    return tuple(result)


def _labels(labels: dict, where: str, problems: list) -> tuple[tuple[str, str], ...]:
    good = []
    for status, label in labels.items():
        if status not in SHOWN:
            problems.append((f"{where}.{status}", f"unknown status; one of {', '.join(SHOWN)}"))
        elif not isinstance(label, str) or not label.strip() or "\n" in label:
            problems.append((f"{where}.{status}", "must be a one-line, non-empty string"))
        else:
            good.append((status, label.strip()))
    return tuple(good)


def shown_change(settings: "Settings", old: str, new: str) -> str | None:
    """What a customer is told of a status change from `old` to `new`: "reopened" for a
    resolved or closed ticket opened again, else the new status; None when it is no
    change or `[outbound] notify_statuses` keeps it from them (as `notify.status_changed`)."""
    if old == new:
        return None
    shown = "reopened" if old in ("resolved", "closed") and new == "open" else new
    return shown if shown in settings.outbound.notify_statuses else None
