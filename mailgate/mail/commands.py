"""Commands at the top of a reply, one per line: `#status resolved`, `#note`, … Pure.

Only the leading lines that start with `#` are commands; the first other
non-blank line ends them, and the rest is the message. Whether a command may be
used (agents only, except a customer's close word) is the caller's decision.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .headers import normalize_address
from .tokens import is_valid_number
from ..vocabulary import PRIORITIES, STATUSES

_COMMAND = re.compile(r"^\s*#([A-Za-z_]+)\b[ \t]*(.*?)\s*$")


@dataclass(frozen=True)
class Command:
    line: str  # as written
    name: str  # lower-case, without '#'
    arg: str
    error: str | None = None  # why it cannot be applied; None when it looks valid


def _check(name: str, arg: str) -> str | None:
    if name == "note" or name == "close":
        return None if not arg else f"#{name} takes no value"
    if name == "status":
        return None if arg.lower() in STATUSES else \
            f"unknown status {arg!r}; one of {', '.join(STATUSES)}"
    if name == "priority":
        return None if arg.lower() in PRIORITIES else \
            f"unknown priority {arg!r}; one of {', '.join(PRIORITIES)}"
    if name == "assign":
        return None if arg.lower() == "me" or normalize_address(arg) else \
            "#assign takes an agent's address or 'me'"
    if name in ("cc", "uncc", "new"):
        return None if normalize_address(arg) else f"#{name} takes an email address"
    if name == "department":
        return None if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", arg) else \
            "#department takes a department key"
    if name == "merge":
        return None if is_valid_number(merge_number(arg)) else \
            "#merge takes the number of the ticket to merge into, e.g. #merge 100023"
    if name == "category":
        return None if 0 < len(arg) <= 100 else "#category takes a text of 1 to 100 characters"
    return f"unknown command #{name}"


def merge_number(arg: str) -> str:
    """The ticket number of `#merge 100023` (or `#merge #100023`)."""
    return arg.strip().lstrip("#")


def split_commands(text: str, close_words: tuple[str, ...] = ()) -> tuple[list[Command], str]:
    """(commands at the top, the remaining text). Close words count as `#close`."""
    lines = text.splitlines()
    commands: list[Command] = []
    closing = {w.strip().lower() for w in close_words}
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if not stripped:
            index += 1
            continue
        if stripped.lower() in closing:
            commands.append(Command(stripped, "close", ""))
            index += 1
            continue
        match = _COMMAND.match(line)
        if not match:
            break
        name, arg = match.group(1).lower(), match.group(2)
        commands.append(Command(stripped, name, arg, _check(name, arg)))
        index += 1
    return commands, "\n".join(lines[index:]).strip("\n")
