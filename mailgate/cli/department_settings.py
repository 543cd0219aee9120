"""What an admin sets on a department, checked the same way from the command line
(`department add|set`) and from a file (`department import`) before anything is written.

The file is read with the configuration's own reader (`config_keys`): an unknown
key (`addresess`, `promise` in the wrong table) or a wrong type is an error that
names the key and its line, and nothing is imported.

    [[department]]
    key = "billing"                      # required
    name = "Billing"
    prefix = "BILL"                      # subject token prefix; "" for [threading] prefix
    locale = "fa"                        # en, fa or ka; "" for [outbound] default_locale
    sms = true                           # SMS to requesters with a phone number
    promise = "We answer within a day."  # in acknowledgements; "" for response_promise
    team_address = "team@example.com"    # agent mail goes here instead of to each agent
    addresses = ["billing@example.com"]
    agents = ["reza@example.com"]
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..config_keys import Problem, Reader, key as setting, toml
from ..localdates import language
from ..mail.headers import normalize_address

# the settings an admin gives -> the Department column each one sets
COLUMNS = {"name": "name", "prefix": "prefix", "locale": "locale", "sms": "sms_enabled",
           "promise": "promise", "team_address": "team_address"}


@dataclass(frozen=True)
class DepartmentEntry:
    """One [[department]] table of an import file."""
    key: str = setting("", required="is required")
    name: str = setting("")
    prefix: str = setting("")
    locale: str = setting("")
    sms: bool = setting(False)
    promise: str = setting("")
    team_address: str = setting("")
    addresses: tuple[str, ...] = setting(())
    agents: tuple[str, ...] = setting(())


@dataclass(frozen=True)
class DepartmentFile:
    department: tuple[DepartmentEntry, ...] = setting(())


class Entry(NamedTuple):
    """A department to import: its key, the columns to set, where its mail goes, its agents."""
    key: str
    columns: dict[str, Any]
    addresses: list[str]
    agents: list[str]


class BadFile(ValueError):
    """An import file with problems; `.lines` says each with its file, line and key."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def changes(given: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The Department columns that the settings `given` set ("" clears a text setting
    back to its default), and the problems with them, by setting name."""
    columns, problems = {}, []
    for name, value in given.items():
        if name not in COLUMNS:
            continue
        problem = CHECKS[name](value) if name in CHECKS else None
        if problem:
            problems.append((name, problem))
        elif name == "team_address" and value:
            columns[COLUMNS[name]] = normalize_address(value)
        else:
            columns[COLUMNS[name]] = None if value == "" and name != "name" else value
    return columns, problems


def prefix_problem(value: str) -> str | None:
    if not value or (value.isascii() and value.isalnum()):
        return None
    return f"must be ASCII letters and digits, got {toml(value)}"


def locale_problem(value: str) -> str | None:
    """A locale mail can be written in (en, fa, ka, with or without a region), or ""."""
    primary = value.replace("-", "_").split("_")[0].lower()
    if not value or language(value) == primary:
        return None
    return f"no templates for {toml(value)}: mail would be in English; use en, fa or ka"


def address_problem(value: str) -> str | None:
    if not value or normalize_address(value):
        return None
    return f"not an email address: {toml(value)}"


CHECKS = {"name": lambda value: None if value else "must not be empty",
          "prefix": prefix_problem, "locale": locale_problem, "team_address": address_problem}


def read_file(path: str) -> list[Entry]:
    """The departments of an import file; BadFile names every problem, with its line."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise BadFile([f"{path}: {error}"]) from error
    reader = Reader(env=None)
    reader.section(DepartmentFile, data, "")
    problems = list(reader.problems)
    tables = data.get("department", [])
    tables = tables if isinstance(tables, list) and all(isinstance(t, dict) for t in tables) \
        else []
    wrong = {where.split(".")[0] for where, _ in problems}  # values checked once typed right
    entries = [_entry(table, f"department[{i}]", problems) for i, table in enumerate(tables)
               if f"department[{i}]" not in wrong]
    if not problems and not entries:
        problems.append(("department", "no [[department]] tables"))
    seen: dict[Any, int] = {}
    for i, table in enumerate(tables):
        if "key" in table and seen.setdefault(table["key"], i) != i:
            problems.append((f"department[{i}].key",
                             f"{toml(table['key'])} again (department[{seen[table['key']]}])"))
    if problems:
        located = sorted(((line_of(text, where) or 0, where, message)
                          for where, message in problems), key=lambda item: item[0])
        raise BadFile([f"{path}{f':{line}' if line else ''}: {where}: {message}"
                       for line, where, message in located])
    return entries


def _entry(table: dict, where: str, problems: list[Problem]) -> Entry:
    columns, wrong = changes(table)
    problems += [(f"{where}.{name}", message) for name, message in wrong]
    lists = {}
    for name in ("addresses", "agents"):
        lists[name] = [normalize_address(value) for value in table.get(name, ())]
        problems += [(f"{where}.{name}", address_problem(value))
                     for value, address in zip(table.get(name, ()), lists[name])
                     if address is None]
    return Entry(table.get("key", ""), columns, lists["addresses"], lists["agents"])


HEADER = re.compile(r"\s*\[\[?\s*[\"']?([\w-]+)[\"']?\s*\]")  # [table] or [[table]]


def line_of(text: str, where: str) -> int | None:
    """The line (from 1) of the key that `where` names: "department[2].agents", the table
    "department[2]", a top-level "departmnt". tomllib gives no positions, so the text
    is searched: the table's header, then `name =` below it, before the next header.
    None when it is not written that way (an inline table, a dotted key)."""
    table, index, name = re.fullmatch(r"([\w-]+)(?:\[(\d+)\])?(?:\.([\w-]+))?", where).groups()
    lines = text.splitlines()
    headers = [n for n, line in enumerate(lines) if HEADER.match(line)]
    if index is None:
        top = _key_line(lines, 0, headers[0] if headers else len(lines), table)
        own = [n for n in headers if HEADER.match(lines[n]).group(1) == table]
        found = top if top is not None else own[0] if own else None
        return None if found is None else found + 1
    own = [n for n in headers if HEADER.match(lines[n]).group(1) == table]
    if int(index) >= len(own):
        return None
    start = own[int(index)]
    end = next((n for n in headers if n > start), len(lines))
    found = _key_line(lines, start + 1, end, name) if name else None
    return (start if found is None else found) + 1


def _key_line(lines: list[str], start: int, end: int, name: str) -> int | None:
    pattern = re.compile(rf"\s*(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')"
                         r"\s*=")
    return next((n for n in range(start, end) if pattern.match(lines[n])), None)
