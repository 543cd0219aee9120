"""Authentication-Results (RFC 8601) from our own MTA: did DMARC, or aligned DKIM/SPF,
pass for the sender's domain? Pure.

Only the topmost Authentication-Results header counts, and only if its
authserv-id is one we trust: the receiving MTA adds its header on top and must
remove any copies claiming its own id (Postfix with OpenDMARC or rspamd do), so
a header written by the sender further down is never believed.
"""
from __future__ import annotations

import re

_METHOD = re.compile(r"\b(dmarc|dkim|spf)\s*=\s*([a-z]+)\b([^;]*)", re.IGNORECASE)
_PROPERTY = re.compile(r"\b(header\.from|header\.d|header\.i|smtp\.mailfrom)\s*=\s*"
                       r"\"?([^\s;\"]+)", re.IGNORECASE)


def _aligned(domain: str, sender_domain: str) -> bool:
    domain, sender_domain = domain.lower().lstrip("@"), sender_domain.lower()
    if "@" in domain:
        domain = domain.rsplit("@", 1)[1]
    # relaxed alignment: one may be a subdomain of the other (never a bare TLD)
    return domain == sender_domain or domain.endswith("." + sender_domain) \
        or ("." in domain and sender_domain.endswith("." + domain))


def authenticated(headers: list[str], trusted: tuple[str, ...] | list[str],
                  sender: str) -> str | None:
    """The method that proves `sender`'s domain (e.g. "dmarc"), or None."""
    if not headers or not trusted or "@" not in sender:
        return None
    top = headers[0]
    authserv = top.split(";", 1)[0].strip().split()[0].lower() if top.strip() else ""
    if authserv not in {t.lower() for t in trusted}:
        return None
    domain = sender.rsplit("@", 1)[1]
    for method, result, rest in _METHOD.findall(top):
        if result.lower() != "pass":
            continue
        props = dict((k.lower(), v) for k, v in _PROPERTY.findall(rest))
        method = method.lower()
        if method == "dmarc" and _aligned(props.get("header.from", ""), domain):
            return "dmarc"
        if method == "dkim" and _aligned(props.get("header.d", props.get("header.i", "")),
                                         domain):
            return "dkim"
        if method == "spf" and _aligned(props.get("smtp.mailfrom", ""), domain):
            return "spf"
    return None
