"""Guard: is this mail automatic, a bounce, a loop, spam? Pure: message in, verdict out.

The verdict decides two things: whether the message may open a ticket, and
whether the gateway may ever answer it automatically. Automatic mail is never
answered automatically — that is what keeps two robots from mailing each other
forever (RFC 3834) — but RFC 3834 forbids answering it, not reading it: a
monitoring or ITSM notification (`Auto-Submitted: auto-generated`) still opens a
ticket, while an automatic *reply* (out of office) only joins the ticket it
answers. Spam is what the spam filter of our own boundary says it is, read only
from the headers that boundary wrote (`authres.read_boundary`): a sender's own
`X-Spam-Flag: NO` is never among them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from ..config import SpamSettings
from .parsed import ParsedMessage

AUTOMATED_LOCALPARTS = re.compile(
    r"^(listserv|majordomo|.*-request|owner-.*|.*-owner|bounces?|.*-bounces?)(\+.*)?$")
BOUNCE_LOCALPARTS = {"mailer-daemon", "postmaster"}
# Web forms and notification systems send from these; their mail may open a
# ticket (a contact form with Reply-To), but is never answered automatically.
NOREPLY_LOCALPARTS = re.compile(r"^(no-?reply|do-?not-?reply)([+.-].*)?$")
# Auto-Submitted values of notifications a program sends on its own, not in answer
# to a message (RFC 3834 §5, RFC 5436 §2.7); every other value but "no" is a reply
GENERATED = {"auto-generated", "auto-notified"}
_KEYWORD = re.compile(r"\s*([A-Za-z0-9-]*)")
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SCORE = re.compile(r"\bscore=" + _NUMBER, re.IGNORECASE)  # SpamAssassin's X-Spam-Status
_RSPAMD = re.compile(r"\S+:\s*(true|false)\s*\[\s*" + _NUMBER, re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"\s*" + _NUMBER)


class Category(StrEnum):
    """What kind of mail the guard found (the trace shows the value)."""
    NORMAL = "normal"
    LIST = "list"  # list or bulk mail: a ticket, but no acknowledgement
    AUTOMATIC = "automatic"  # a notification (monitoring, ITSM): a ticket, never answered
    AUTO_REPLY = "auto_reply"  # out-of-office etc.: appended to its ticket if it threads
    BOUNCE = "bounce"
    MDN = "mdn"  # read receipt
    LOOP = "loop"  # our own mail coming back: recorded only
    SPAM = "spam"  # flagged by our own spam filter: held in quarantine until released


# category -> (may open a ticket, may be answered automatically)
CATEGORIES = {
    Category.NORMAL: (True, True),
    Category.LIST: (True, False),
    Category.AUTOMATIC: (True, False),
    Category.AUTO_REPLY: (False, False),
    Category.BOUNCE: (False, False),
    Category.MDN: (False, False),
    Category.LOOP: (False, False),
    Category.SPAM: (False, False),
}


@dataclass
class Verdict:
    category: Category
    reasons: list[str] = field(default_factory=list)
    no_autorespond: bool = False

    @property
    def may_open_ticket(self) -> bool:
        return CATEGORIES[self.category][0]

    @property
    def may_autorespond(self) -> bool:
        return CATEGORIES[self.category][1] and not self.no_autorespond

    @property
    def automatic(self) -> bool:
        """Written by a program, not by a person (list mail is people's)."""
        return self.category not in (Category.NORMAL, Category.LIST)


def _loop_reasons(msg: ParsedMessage, own_addresses: set[str], instance: str,
                  max_received: int) -> list[str]:
    reasons = []
    if msg.from_addr and msg.from_addr in own_addresses:
        reasons.append(f"From is our own address {msg.from_addr}")
    markers = msg.headers.get("x-mailgate-loop", [])
    if any(m.strip().lower() == instance.lower() for m in markers):
        reasons.append("carries our X-Mailgate-Loop marker")
    if msg.received_count > max_received:
        reasons.append(f"{msg.received_count} Received headers (more than {max_received})")
    return reasons


def _auto_submitted(msg: ParsedMessage) -> str:
    """The Auto-Submitted keyword, lower-case, without parameters or comments ("" if none)."""
    return _KEYWORD.match(msg.header("auto-submitted")).group(1).lower()


def _auto_reply_reasons(msg: ParsedMessage, envelope_from: str | None,
                        submitted: str) -> list[str]:
    reasons = []
    if submitted and submitted != "no" and submitted not in GENERATED:
        reasons.append(f"Auto-Submitted: {submitted}")
    for name in ("x-autoreply", "x-autorespond"):
        if msg.header(name):
            reasons.append(f"{name} header present")
    if envelope_from == "" and submitted not in GENERATED:
        reasons.append("null reverse-path (MAIL FROM:<>)")
    local = (msg.from_addr or "").split("@")[0]
    if AUTOMATED_LOCALPARTS.match(local):
        reasons.append(f"automated sender {msg.from_addr}")
    return reasons


def _list_reasons(msg: ParsedMessage) -> list[str]:
    reasons = []
    precedence = msg.header("precedence").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        reasons.append(f"Precedence: {precedence}")
    for name in ("list-id", "list-unsubscribe"):
        if msg.header(name):
            reasons.append(f"{name} header present")
    return reasons


def spam_reasons(ours: tuple[tuple[str, str], ...], spam: SpamSettings) -> list[str]:
    """The headers among `ours` (those our own boundary wrote) in which the spam filter
    calls the message spam: by its own yes, or by a score at `spam.threshold` or above."""
    reasons = []
    for name, value in ours:
        value = " ".join(value.split())
        says_spam, score = _spam_header(name.lower(), value, spam.score_header.lower())
        if says_spam or (score is not None and spam.threshold and score >= spam.threshold):
            reasons.append(f"{name}: {value[:100]}")
    return reasons


def _spam_header(name: str, value: str, score_header: str) -> tuple[bool, float | None]:
    """(the filter says spam, the score it gives) in one header."""
    if name in ("x-spam-flag", "x-spam"):  # SpamAssassin, amavis: YES; rspamd: Yes
        return value.lower() in ("yes", "true"), None
    if name == "x-spam-status":  # SpamAssassin: "Yes, score=7.2 required=5.0 tests=…"
        return value.lower().startswith("yes"), _number(_SCORE.search(value))
    if name == "x-spamd-result":  # rspamd: "default: True [7.50 / 15.00]; SYMBOL(1.0) …"
        match = _RSPAMD.match(value)
        return bool(match) and match.group(1).lower() == "true", _number(match, 2)
    if name == score_header:
        return False, _number(_LEADING_NUMBER.match(value))
    return False, None


def _number(match: re.Match | None, group: int = 1) -> float | None:
    return float(match.group(group)) if match else None


def judge(msg: ParsedMessage, envelope_from: str | None, own_addresses: set[str],
          instance: str, max_received: int = 100, ours: tuple[tuple[str, str], ...] = (),
          spam: SpamSettings | None = None) -> Verdict:
    """Classify a parsed message. `envelope_from` is None when unknown (pipe, IMAP);
    `ours`: the headers our own boundary wrote, read for the verdict of its spam filter
    unless `spam` is None (a message an admin released) or says not to hold spam."""
    loop = _loop_reasons(msg, own_addresses, instance, max_received)
    if loop:
        return Verdict(Category.LOOP, loop)
    flagged = spam_reasons(ours, spam) if spam is not None and spam.hold else []
    if flagged:
        return Verdict(Category.SPAM, flagged)
    if msg.content_type == "multipart/report":
        if msg.report_type == "delivery-status" or msg.report is not None:
            return Verdict(Category.BOUNCE, ["multipart/report delivery-status (DSN)"])
        if msg.report_type == "disposition-notification":
            return Verdict(Category.MDN, ["read receipt (disposition-notification)"])
    local = (msg.from_addr or "").split("@")[0]
    if local in BOUNCE_LOCALPARTS:
        return Verdict(Category.BOUNCE, [f"sent by {msg.from_addr}"])
    submitted = _auto_submitted(msg)
    auto = _auto_reply_reasons(msg, envelope_from, submitted)
    if auto:
        return Verdict(Category.AUTO_REPLY, auto)
    if submitted in GENERATED:
        return Verdict(Category.AUTOMATIC, [f"Auto-Submitted: {submitted}"])
    listed = _list_reasons(msg)
    if listed:
        return Verdict(Category.LIST, listed, no_autorespond=True)
    if msg.header("x-auto-response-suppress"):
        return Verdict(Category.NORMAL, ["X-Auto-Response-Suppress: no acknowledgement"],
                       no_autorespond=True)
    if NOREPLY_LOCALPARTS.match(local):
        return Verdict(Category.NORMAL, [f"no-reply sender {msg.from_addr}: no acknowledgement"],
                       no_autorespond=True)
    return Verdict(Category.NORMAL, [])
