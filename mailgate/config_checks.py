"""The checks the settings sections share: each takes a value read from TOML and
returns a message when it is wrong, else None (config_keys.py runs them)."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Callable

from .config_keys import Check, toml


def describes(noun: str) -> Callable[[Check], Check]:
    """Names what a check of a text accepts, for messages about the key's type:
    `describes('"host:port" string')` -> expected an array of "host:port" strings."""
    def name(check: Check) -> Check:
        check.noun = noun
        return check
    return name


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be positive, got {value}"


def at_least(low: int) -> Check:
    return lambda value: None if value >= low else f"must be at least {low}, got {value}"


def one_of(*choices: str) -> Check:
    return lambda value: None if value in choices else (
        f"must be one of {', '.join(choices)}; got {toml(value)}")


def each(check: Check) -> Check:
    """A check of every item of a list."""
    return describes(getattr(check, "noun", "string"))(
        lambda values: next(filter(None, map(check, values)), None))


def split_hostport(value: str) -> tuple[str, int] | None:
    """("::1", 25) for "[::1]:25"; None when `value` is not host:port."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        return None
    return host, int(port)


@describes('"host:port" string')
def host_port(value: str) -> str | None:
    return None if split_hostport(value) else f"not host:port: {toml(value)}"


@describes('"address/prefix" string')
def network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"not a network: {toml(value)}"
    return None


@describes("e-mail address string")
def address(value: str) -> str | None:
    """An e-mail address, or empty (not set)."""
    if value and ("@" not in value or any(c in value for c in " <>\r\n")):
        return f"not an address: {toml(value)}"
    return None


def region_code(value: str) -> str | None:
    """A two-letter ISO 3166 region ("IR", "GE"), or empty (not set)."""
    if value and not (len(value) == 2 and value.isascii() and value.isupper()):
        return f'must be a two-letter region code like "IR" or "GE", got {toml(value)}'
    return None


def existing_file(value: str) -> str | None:
    """The path of a file, or empty (not set)."""
    return f"no such file: {value}" if value and not Path(value).is_file() else None
