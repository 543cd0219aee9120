"""Route: which department does this message belong to? Pure: addresses in, decision out."""
from __future__ import annotations

from dataclasses import dataclass

from .headers import normalize_address, split_plus
from .parsed import ParsedMessage


@dataclass(frozen=True)
class Route:
    department: str  # department key
    address: str  # the address that matched (as written, lower-case)
    tag: str | None  # plus-address tag, recorded
    via: str  # envelope | delivered-to | to | cc | catch-all | mailbox default


def candidates(msg: ParsedMessage, envelope_to: list[str] | None) -> list[tuple[str, str]]:
    """(address, where it came from) in routing order, without repeats.

    The envelope is authoritative when known (SMTP/LMTP); otherwise the headers an
    MTA adds (Delivered-To, X-Original-To) come before the ones the sender wrote.
    """
    if envelope_to:
        ordered = [("envelope", a) for a in envelope_to]
    else:
        ordered = [("delivered-to", a) for a in msg.delivered_to]
        ordered += [("to", a) for a in msg.to] + [("cc", a) for a in msg.cc]
    seen, result = set(), []
    for via, addr in ordered:
        addr = normalize_address(addr)
        if addr and addr not in seen:
            seen.add(addr)
            result.append((addr, via))
    return result


def lookup_keys(cands: list[tuple[str, str]]) -> set[str]:
    """Every address form worth looking up: as written and without its +tag."""
    keys = set()
    for addr, _ in cands:
        keys.add(addr)
        keys.add(split_plus(addr)[0])
    return keys


def route(cands: list[tuple[str, str]], mapping: dict[str, str], catch_all: str = "",
          mailbox_default: str = "") -> Route | None:
    """First candidate found in `mapping` (address -> department key), else a fallback."""
    for addr, via in cands:
        if addr in mapping:
            return Route(mapping[addr], addr, None, via)
        base, tag = split_plus(addr)
        if base in mapping:
            return Route(mapping[base], addr, tag, via)
    if mailbox_default:
        return Route(mailbox_default, "", None, "mailbox default")
    if catch_all:
        return Route(catch_all, "", None, "catch-all")
    return None
