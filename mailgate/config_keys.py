"""How configuration keys are declared and read: the one way, for every section.

A *section* is a frozen dataclass; each field is one key of its TOML table,
declared once with its type (the annotation), its default and its checks::

    @dataclass(frozen=True)
    class LimitSettings:
        max_depth: int = key(20, positive)
        allowed_types: tuple[str, ...] = key(DEFAULT_ALLOWED_TYPES)

        def problems(self):  # optional: checks across keys, once each key passed
            ...yield "max_depth", "message"

`Reader.section` reads a TOML table into a section. The annotation says how:
bool, int, float, str, Path, tuple[str, ...]; a section (a sub-table whose
missing keys keep the values it replaces); tuple[S, ...] for a section S (an
array of tables, [[imap]]); tuple[tuple[str, S], ...] (named sub-tables that
inherit the keys of the table they sit in). A `read=` function overrides it.
Text keys (str, Path) may be given as KEY_env (the name of an environment
variable) or KEY_file (a file whose stripped content is the value) instead, so
that secrets need not be written into the file.

Every problem is a (dotted key, message) pair (`limits.max_depth`, `imap[0].host`);
unknown keys are problems too. Messages speak TOML, not Python: `expected an array
of "host:port" strings, got "127.0.0.1:25"`. Nothing raises: callers decide.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

MiB = 1024 * 1024
Problem = tuple[str, str]  # (dotted key, message)
Check = Callable[[Any], "str | None"]  # a message when the value is wrong
_UNSET = object()


class Invalid(ValueError):
    """Raised by a `read=` function: messages about the key, or (subkey, message) pairs."""

    def __init__(self, *problems: str | Problem):
        self.problems = [p if isinstance(p, tuple) else ("", p) for p in problems]
        super().__init__("; ".join(message for _, message in self.problems))


def key(default: Any, *checks: Check, read: Callable[[Any], Any] | None = None,
        required: str = "", toml: bool = True) -> Any:
    """A configuration key: its default, the checks a value from the file must pass,
    optionally the function that converts it, the message when it must be given
    (`required`), and `toml=False` for a field that is not a key at all."""
    return dataclasses.field(default=default, metadata={
        "checks": checks, "read": read, "required": required, "toml": toml})


class Key(NamedTuple):
    """A section's key as `Reader` sees it: its annotation and what `key()` declared."""
    kind: Any  # the annotation
    shape: str  # scalar | section | array (tuple[S, ...]) | named (tuple[tuple[str, S], ...])
    element: Any  # S, the section class of a section, array or named key
    checks: tuple[Check, ...] = ()
    read: Callable[[Any], Any] | None = None
    required: str = ""


def join(*parts: str) -> str:
    """The dotted key of `parts`, skipping empty ones."""
    return ".".join(part for part in parts if part)


class Reader:
    """Reads TOML tables into sections and collects their problems.

    `env` is the environment behind KEY_env; None: no KEY_env / KEY_file keys."""

    def __init__(self, env: dict[str, str] | None):
        self.env = env
        self.problems: list[Problem] = []

    def section(self, cls: type, table: Any, where: str, base: Any = None) -> Any:
        """`cls` from `table`, missing keys from `base` (default: `cls()`); None on problems."""
        if not isinstance(table, dict):
            self.problems.append((where, "must be a table"))
            return None
        before = len(self.problems)
        keys = _keys(cls)
        self._unknown_keys(table, keys, where)
        plain = {name: key for name, key in keys.items() if key.shape != "named"}
        section = self._fill(cls() if base is None else base, table, plain, where)
        # then the named sub-tables, which inherit the keys just read
        named = {name: key for name, key in keys.items() if key.shape == "named"}
        section = self._fill(section, table, named, where)
        if len(self.problems) == before:
            self.problems += [(join(where, k), m) for k, m in _cross_checks(section)]
        return section if len(self.problems) == before else None

    def _fill(self, section: Any, table: dict, keys: dict[str, Key], where: str) -> Any:
        values = {}
        for name, key in keys.items():
            raw = self._raw(table, name, key.kind, join(where, name))
            if raw is _UNSET:
                if key.required and not {name, f"{name}_env", f"{name}_file"} & set(table):
                    self.problems.append((join(where, name), key.required))
                continue
            try:
                values[name] = self._value(raw, key, join(where, name), section, name)
            except Invalid as invalid:
                self.problems += [(join(where, name, sub), message)
                                  for sub, message in invalid.problems]
        return dataclasses.replace(section, **values)

    def _value(self, raw: Any, key: Key, where: str, section: Any, name: str) -> Any:
        """The value of key `name` of `section` from its TOML value `raw`, checked."""
        cls = key.element
        if key.read is not None:
            value = key.read(raw)
        elif key.shape == "section":
            value = self.section(cls, raw, where, getattr(section, name))
        elif key.shape == "array":
            value = self._array(cls, raw, where)
        elif key.shape == "named":
            inherited = cls(**{k: getattr(section, k) for k in _keys(cls)})
            value = self._named(cls, raw, where, inherited)
        else:
            value = scalar(raw, key.kind, key.checks)
        if value is None:
            raise Invalid()  # a sub-table with problems, recorded already
        messages = [check(value) for check in key.checks]
        if any(messages):
            raise Invalid(*filter(None, messages))
        return value

    def _array(self, cls: type, tables: Any, where: str) -> tuple:
        """An array of tables, [[where]]: one `cls` each."""
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise Invalid(f"must be an array of tables: [[{where}]]")
        items = [self.section(cls, table, f"{where}[{i}]") for i, table in enumerate(tables)]
        return tuple(item for item in items if item is not None)

    def _named(self, cls: type, tables: Any, where: str, inherited: Any) -> tuple:
        """A table of named sub-tables, [where.NAME]: (NAME, `cls`) pairs inheriting keys."""
        if not isinstance(tables, dict):
            raise Invalid("must be a table")
        items = [(name, self.section(cls, table, join(where, name), inherited))
                 for name, table in tables.items()]
        return tuple((name, item) for name, item in items if item is not None)

    def _raw(self, table: dict, name: str, kind: Any, where: str) -> Any:
        """The TOML value of `name`, or of the variable NAME_env names, or in the file NAME_file."""
        if self.env is not None and kind in (str, Path):
            for suffix, fetch in (("_env", self._from_env), ("_file", _from_file)):
                if name + suffix in table:
                    try:
                        return fetch(table[name + suffix])
                    except Invalid as invalid:
                        self.problems.append((where + suffix, str(invalid)))
                        return _UNSET
        return table.get(name, _UNSET)

    def _from_env(self, variable: Any) -> str:
        if scalar(variable, str) not in self.env:
            raise Invalid(f"environment variable {variable} is not set")
        return self.env[variable]

    def _unknown_keys(self, table: dict, keys: dict, where: str) -> None:
        indirect = {name + suffix for name, key in keys.items() if key.kind in (str, Path)
                    for suffix in ("_env", "_file")} if self.env is not None else set()
        for name, value in table.items():
            if name not in keys and name not in indirect:
                kind = "section" if isinstance(value, dict) else "key"
                self.problems.append((join(where, name), unknown(kind, name, list(keys))))


def _from_file(path: Any) -> str:
    try:
        return Path(scalar(path, str)).read_text().strip()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from exc


def unknown(kind: str, name: str, known: list[str]) -> str:
    """'unknown key', with the likely meant one, or all of them when there are few."""
    import difflib  # only when there is a typo to name: keeps loading settings cheap

    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown {kind}; did you mean {close[0]!r}?"
    if len(known) <= 5:
        return f"unknown {kind}; one of {', '.join(known)}"
    return f"unknown {kind}"


@functools.cache
def _keys(cls: type) -> dict[str, Key]:
    """A section's keys by name, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {field.name: Key(hints[field.name], *_shape(hints[field.name]),
                            **{k: v for k, v in field.metadata.items() if k != "toml"})
            for field in dataclasses.fields(cls) if field.metadata.get("toml", True)}


def _shape(kind: Any) -> tuple[str, Any]:
    """How a key of type `kind` is read, and the section class in it, if any."""
    if _is_section(kind):
        return "section", kind
    args = typing.get_args(kind) if typing.get_origin(kind) is tuple else ()
    if len(args) == 2 and args[1] is ...:
        if _is_section(args[0]):
            return "array", args[0]
        pair = typing.get_args(args[0]) if typing.get_origin(args[0]) is tuple else ()
        if len(pair) == 2 and pair[0] is str and _is_section(pair[1]):
            return "named", pair[1]
    return "scalar", None


def _is_section(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def _cross_checks(section: Any) -> Iterable[Problem]:
    check = getattr(section, "problems", None)
    return check() if callable(check) else ()


def toml(value: Any) -> str:
    """`value` as it is written in TOML: "7" (a string), 7, true, [1, "a"], a table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return f"[{', '.join(map(toml, value))}]"
    if isinstance(value, dict):
        return "a table"
    return value.isoformat() if isinstance(value, (dt.date, dt.time)) else repr(value)


def expected(kind: Any, checks: Iterable[Check] = ()) -> str:
    """What a key of type `kind` takes, in TOML terms: 'an array of "host:port" strings'.
    A check of each text may name it more closely (its `noun`, see `describes`)."""
    noun = next((c.noun for c in checks if hasattr(c, "noun")), "string")
    if kind in (str, Path):
        return f"{article(noun)} {noun}" if kind is str else "a path (a string)"
    if typing.get_args(kind) == (str, ...):
        return f"an array of {noun}s"
    return {bool: "true or false", int: "an integer", float: "a number"}[kind]


def article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def scalar(value: Any, kind: Any, checks: Iterable[Check] = ()) -> Any:
    """`value` from TOML as `kind` (bool, int, float, str, Path, tuple[str, ...])."""
    if isinstance(value, bool):
        if kind is bool:
            return value
    elif kind is int and isinstance(value, int):
        return value
    elif kind is float and isinstance(value, (int, float)):
        return float(value)
    elif kind in (str, Path) and isinstance(value, str):
        return kind(value)
    elif typing.get_args(kind) == (str, ...) and isinstance(value, list) \
            and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise Invalid(f"expected {expected(kind, checks)}, got {toml(value)}")
