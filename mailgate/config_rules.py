"""What mail may set on a new ticket: the fields a customer chooses (`[fields]`, per
department `[fields.departments.KEY]`: categories and products with their labels
per locale, the plus tag, field lines, the priority ceiling) and the admin's
`[[rules]]`. Declared with `config_keys.key`; `mailgate.config` gathers them.

A rule's patterns are compiled here, at load (a pattern that does not compile is a
problem of the file), with the `regex` library, whose searches take a timeout:
`mail/rules.py` bounds every search by `PATTERN_TIMEOUT`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Iterable

import regex

from .config_checks import address, each, one_of
from .config_keys import Invalid, Problem, key as setting, toml
from .vocabulary import PRIORITIES

LOCALES = ("en", "fa", "ka")  # the locales a choice has labels in
PATTERN_TIMEOUT = 0.05  # seconds one search of one pattern may take (regex stops it)
# Arabic letters Persian writers' keyboards give for Persian ones: the same word
ARABIC_TO_PERSIAN = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه"})


@functools.lru_cache(maxsize=512)
def compile_pattern(text: str) -> regex.Pattern:
    """`text` as a case-insensitive pattern over any script (Arabic yeh and kaf read as
    Persian ones, like the text it searches); regex.error when it is not one."""
    return regex.compile(text.translate(ARABIC_TO_PERSIAN),
                         regex.IGNORECASE | regex.UNICODE | regex.V1)


def pattern(value: str) -> str | None:
    """A regular expression that compiles, or empty (not set)."""
    try:
        compile_pattern(value) if value else None
    except regex.error as error:
        return f"not a regular expression: {toml(value)}: {error}"
    return None


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    """`header = {"X-Mailer" = "Outlook", ...}`: (lower-case name, pattern) pairs."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Invalid('expected a table of header names and patterns, e.g. '
                      '{ "X-Mailer" = "^Outlook" }, got ' + toml(value))
    problems = [(name, message) for name, text in value.items()
                if (message := pattern(text))]
    if problems:
        raise Invalid(*problems)
    return tuple((name.lower(), text) for name, text in value.items())


def _yes_no(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {toml(value)}")
    return value


def _priority(value: str) -> str | None:
    return None if not value or value in PRIORITIES else \
        f"must be one of {', '.join(PRIORITIES)}; got {toml(value)}"


@dataclass(frozen=True)
class Choice:
    """A category or product a department offers: its key, as stored on the ticket,
    and its label per locale; a customer may write any of them, or one of `words`."""
    key: str = setting("", required="is required")
    en: str = setting("")
    fa: str = setting("")
    ka: str = setting("")
    words: tuple[str, ...] = setting(())

    def labels(self) -> dict[str, str]:
        """The label in each locale; the English one, else the key, where none is given."""
        return {locale: getattr(self, locale) or self.en or self.key for locale in LOCALES}

    def names(self) -> Iterable[str]:
        """Everything a customer may write for it."""
        return (self.key, self.en, self.fa, self.ka, *self.words)


@dataclass(frozen=True)
class DepartmentFields:
    """What a customer's mail may set on a new ticket: `[fields]` for every department,
    `[fields.departments.KEY]` for one (its missing keys are those of `[fields]`)."""
    categories: tuple[Choice, ...] = setting(())  # [[fields.categories]]: request types, topics
    products: tuple[Choice, ...] = setting(())
    # what `support+TAG@` sets: the category, the product, or nothing ("none")
    plus_tag: str = setting("category", one_of("category", "product", "none"))
    # `Priority: high`, `Type: billing`, `Product: lms` (and #priority high) at the top
    field_lines: bool = setting(True)
    header_priority: bool = setting(True)  # X-Priority, Importance, X-MSMail-Priority
    priority_ceiling: str = setting("high", _priority)  # the most a customer may ask for

    def problems(self):
        for name in ("categories", "products"):
            keys = [choice.key for choice in getattr(self, name)]
            for again in sorted({k for k in keys if keys.count(k) > 1}):
                yield name, f"{toml(again)} twice"
        if not self.priority_ceiling:
            yield "priority_ceiling", "must not be empty"

    def choices(self, field: str) -> tuple[Choice, ...]:
        return self.categories if field == "category" else self.products


@dataclass(frozen=True)
class FieldSettings(DepartmentFields):
    departments: tuple[tuple[str, DepartmentFields], ...] = ()

    def department(self, department_key: str | None) -> DepartmentFields:
        """The settings of department `department_key`."""
        return next((fields for name, fields in self.departments if name == department_key),
                    self)


@dataclass(frozen=True)
class Conditions:
    """What a rule matches on (a rule with none fires on every message)."""
    recipient: tuple[str, ...] = setting((), each(address))  # with or without its +tag
    tag: tuple[str, ...] = setting(())  # a recipient's plus tag
    from_address: tuple[str, ...] = setting((), each(address))
    from_domain: tuple[str, ...] = setting(())  # and its subdomains
    subject: str = setting("", pattern)  # a regular expression, case-insensitive
    subject_words: tuple[str, ...] = setting(())  # any of these words or phrases
    body: str = setting("", pattern)
    body_words: tuple[str, ...] = setting(())
    header: tuple[tuple[str, str], ...] = setting((), read=_headers)  # name -> pattern
    attachment: bool | None = setting(None, read=_yes_no)  # true: has one; false: has none
    attachment_type: tuple[str, ...] = setting(())  # "application/pdf", "image/*", ".xlsx"

    def conditions(self) -> list[str]:
        """The names of the conditions given."""
        return [name for name in CONDITIONS if getattr(self, name) not in ("", (), None)]


@dataclass(frozen=True)
class Rule(Conditions):
    """One `[[rules]]` table: conditions, how they combine, the exceptions, and what it
    does."""
    name: str = setting("", required="is required")
    match: str = setting("all", one_of("all", "any"))  # every condition given, or any one
    stop: bool = setting(False)  # true: the rules after this one are not tried once it fired
    # the rule does not fire when any of these holds: [rules.unless], the same conditions
    unless: Conditions = setting(Conditions())
    # actions
    action: str = setting("", one_of("", "spam", "ignore"))  # kept, never a ticket
    department: str = setting("")
    category: str = setting("")
    product: str = setting("")
    priority: str = setting("", _priority)  # the admin's word: no ceiling
    assignee: str = setting("", address)  # an agent's address
    tags: tuple[str, ...] = setting(())
    cc: tuple[str, ...] = setting((), each(address))
    acknowledge: bool = setting(True)  # false: no acknowledgement for the ticket it opens

    def actions(self) -> list[str]:
        return [name for name in ACTIONS if getattr(self, name) != ACTION_DEFAULTS[name]]


CONDITIONS = ("recipient", "tag", "from_address", "from_domain", "subject", "subject_words",
              "body", "body_words", "header", "attachment", "attachment_type")
ACTIONS = ("action", "department", "category", "product", "priority", "assignee", "tags",
           "cc", "acknowledge")
ACTION_DEFAULTS = {name: Rule.__dataclass_fields__[name].default for name in ACTIONS}


def rule_problems(rules: tuple[Rule, ...], fields: FieldSettings) -> Iterable[Problem]:
    """Across the file: unique rule names, and the categories and products rules set
    known to the department they apply in (or, without one, to some department)."""
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            yield f"rules[{i}].name", f"{toml(rule.name)} again"
        seen.add(rule.name)
        if rule.action and rule.actions() != ["action"]:
            yield f"rules[{i}].action", f"{rule.action} ends the message's path: " \
                "no other action would run"
        for field, plural in (("category", "categories"), ("product", "products")):
            value = getattr(rule, field)
            if value and not _known(value, field, rule.department, fields):
                where = f"[fields.departments.{rule.department}]" if rule.department \
                    else "[fields] or any [fields.departments.*]"
                yield f"rules[{i}].{field}", f"{toml(value)} is not among the {plural} " \
                    f"of {where}"


def _known(value: str, field: str, department: str, fields: FieldSettings) -> bool:
    scopes = [fields.department(department)] if department else \
        [fields, *(d for _, d in fields.departments)]
    return any(value == choice.key for scope in scopes for choice in scope.choices(field))
