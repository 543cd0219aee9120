"""Authentication-Results (RFC 8601) written by our own mail boundary: which checks
passed or failed, and for which domain. Pure.

Every header is the sender's unless our own MTA wrote it. Reading the header
block top-down, the headers above the first `Received:` added by a host outside
our boundary (its `by` is not one of `internal_hosts`) are the ones our hosts
added; an Authentication-Results header counts only there, and only with an
authserv-id we trust (RFC 8601 §5, §7.1). Our MTA in turn removes copies that
claim its own authserv-id from incoming mail (OpenDMARC, rspamd and Postfix's
header checks do). Whether the headers are looked at at all is the caller's
decision: mail that reached our SMTP port from a client that is not a trusted
relay has no boundary in front of it, so nothing in it counts. The other headers
found there are handed on as well: the verdict of our spam filter counts by the
same rule (`mail/guard.py`).

The headers are parsed by the `authres` package (an RFC 8601 parser: comments,
quoting and property types are its job, so `header.d=` inside a comment never
counts), and alignment uses organizational domains from the Public Suffix List
(`publicsuffixlist`): a pass for `co.uk` never verifies `alice@corp.co.uk`.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import authres
from publicsuffixlist import PublicSuffixList

_BY = re.compile(r"\bby\s+\[?([A-Za-z0-9.\-:]+)", re.IGNORECASE)
_FROM_HOST = re.compile(r"^from\s+\[?([A-Za-z0-9.\-:]+)", re.IGNORECASE)
_FROM_IP = re.compile(r"^from\s.*?\[(?:IPv6:)?([0-9A-Fa-f.:]+)\]", re.IGNORECASE)
_PROPERTIES = {"dmarc": ("header.from",), "dkim": ("header.d", "header.i"),
               "spf": ("smtp.mailfrom", "smtp.helo")}


@dataclass(frozen=True)
class Check:
    method: str  # dmarc | dkim | spf
    result: str  # pass | fail | none | ...
    domain: str  # the domain the check was about, lowercased


@functools.lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str | None:
    """`corp.example` for `a.b.corp.example`; None for a public suffix itself."""
    return _psl().privatesuffix(domain.lower().strip(".")) if domain else None


def aligned(checked: str, author_domain: str, strict: bool = False) -> bool:
    """DMARC identifier alignment (RFC 7489 §3.1) of a checked domain with the From domain."""
    checked, author_domain = checked.lower().strip("."), author_domain.lower().strip(".")
    if not checked or not author_domain:
        return False
    if checked == author_domain:
        return organizational_domain(checked) is not None
    if strict:
        return False
    org = organizational_domain(checked)
    return org is not None and org == organizational_domain(author_domain)


def _received_by(value: str) -> str:
    match = _BY.search(" ".join(value.split()))
    return match.group(1).lower().rstrip(".") if match else ""


def _checks(value: str) -> tuple[str, list[Check]]:
    """(authserv-id, checks) of one header value; ("", []) when it cannot be parsed."""
    try:
        header = authres.AuthenticationResultsHeader.parse_value(" ".join(value.split()))
    except Exception:  # the parser raises its own error classes on any syntax problem
        return "", []
    checks = []
    for result in header.results:
        method = (result.method or "").lower()
        wanted = _PROPERTIES.get(method, ())
        props = {f"{p.type}.{p.name}".lower(): p.value for p in result.properties}
        domain = next((props[w] for w in wanted if props.get(w)), "")
        checks.append(Check(method, (result.result or "").lower(),
                            domain.rsplit("@", 1)[-1].lower().strip('"')))
    return (header.authserv_id or "").lower(), checks


@dataclass(frozen=True)
class Boundary:
    checks: tuple[Check, ...] = ()  # what our boundary checked, with a trusted authserv-id
    client: str = ""  # the address our boundary received the message from, if it said
    # every header our boundary wrote (name, value), in order: a spam filter's verdict
    headers: tuple[tuple[str, str], ...] = ()


def read_boundary(headers: list[tuple[str, str]], trusted_ids: tuple[str, ...] | list[str],
                  internal_hosts: tuple[str, ...] | list[str] = ()) -> Boundary:
    """What our boundary recorded, from the header block in order (name, value)."""
    internal = {h.lower().rstrip(".") for h in (internal_hosts or trusted_ids)}
    trusted = {t.lower() for t in trusted_ids}
    found: list[Check] = []
    client = ""
    ours = []
    for name, value in headers:
        if name.lower() == "received":
            if _received_by(value) not in internal:
                break  # below this line, everything was written before our boundary saw it
            client = _received_from(value) or client
            if not _from_inside(value, internal):
                break  # where the mail came in from outside: below it, the sender wrote all
            continue
        ours.append((name, value))
        if name.lower() == "authentication-results" and trusted:
            authserv, checks = _checks(value)
            if authserv in trusted:
                found.extend(checks)
    return Boundary(tuple(found), client, tuple(ours))


def _from_inside(value: str, internal: set[str]) -> bool:
    """Is this Received: a hop between our own hosts (the client is one of them, or
    the host itself over loopback, as a content filter reinjects), not the hop where
    the message entered from outside?"""
    match = _FROM_HOST.search(" ".join(value.split()))
    host = match.group(1).lower().rstrip(".") if match else ""
    address = _received_from(value)
    return host in internal or host == "localhost" or address in ("127.0.0.1", "::1")


def _received_from(value: str) -> str:
    match = _FROM_IP.search(" ".join(value.split()))
    return match.group(1) if match else ""


def proves(checks: list[Check], author: str, strict: bool = False) -> str | None:
    """The method that proves the author address's domain (e.g. "dmarc"), or None."""
    if "@" not in (author or ""):
        return None
    domain = author.rsplit("@", 1)[1]
    for check in checks:
        if check.result == "pass" and check.method in _PROPERTIES and \
                aligned(check.domain, domain, strict):
            return check.method
    return None


def dmarc_failed(checks: list[Check], author: str) -> bool:
    """Did our boundary's DMARC check fail for the author's domain?"""
    domain = (author or "").rsplit("@", 1)[-1].lower()
    return any(c.method == "dmarc" and c.result == "fail" and c.domain == domain
               for c in checks)
