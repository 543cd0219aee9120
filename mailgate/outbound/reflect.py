"""What automatic mail may repeat of a sender's words. Pure.

An acknowledgement goes to whatever address a message claims to be from, so it
must not turn us into a relay for someone else's text: it repeats no body, and
the subject and file names it does repeat are cut to a short length, stripped
of control and bidi characters, and defanged, so no client turns
`http://evil.example/verify` or `evil.example` into a link; a display name is
greeted only when it reads as a person's name.
"""
from __future__ import annotations

import functools
import re
import unicodedata

from publicsuffixlist import PublicSuffixList

LIMIT = 80  # characters of a subject or name repeated in automatic mail
_URL = re.compile(r"\b([a-z][a-z0-9+.\-]{1,15})://", re.IGNORECASE)
_HOST = re.compile(r"(?<![\w@.])((?:[\w\-]+\.)+([a-z\u00a1-\uffff]{2,63}))\b", re.IGNORECASE)
_INVISIBLE = {"Cc", "Cf"}  # control, format (zero-width, bidi overrides)


@functools.lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)


def _defang_host(match: re.Match) -> str:
    host = match.group(1)
    if _suffixes().publicsuffix(host.lower()) is None:
        return host  # "invoice.pdf", "v2.1": not a domain anyone can register
    return host.replace(".", "[.]")


def safe_text(text: str | None, limit: int = LIMIT) -> str:
    """`text` as automatic mail may repeat it: one line, no invisible characters,
    no clickable links or domains, at most `limit` characters."""
    text = "".join(" " if unicodedata.category(c) in _INVISIBLE else c for c in text or "")
    text = " ".join(text.split())
    text = _URL.sub(lambda m: m.group(1).replace("t", "x", 2) + "[:]//", text)
    text = _HOST.sub(_defang_host, text)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def safe_name(name: str | None) -> str:
    """A display name automatic mail may greet: one that reads as a person's name
    (letters, spaces, dots, hyphens, apostrophes; at most five words and 40
    characters), else "" and the greeting goes without it."""
    name = " ".join((name or "").split())
    if len(name) > 40 or len(name.split()) > 5:
        return ""
    for char in name:
        if not (unicodedata.category(char)[0] in "LM" or char in " .-'’‌"):
            return ""
    return name


def reflected(context: dict) -> dict:
    """A ticket context (`contexts.ticket_context`) with the sender's words made safe."""
    ticket = {**context["ticket"], "subject": safe_text(context["ticket"]["subject"])}
    requester = {**context["requester"], "name": safe_name(context["requester"]["name"])}
    return {**context, "ticket": ticket, "requester": requester}
