"""The admin's `[[rules]]` against one message. Pure: plain values in, a `Ruling` out.

Rules are tried in order. A rule fires when all its conditions hold (`match =
"all"`), or any one (`"any"`), and none of its exceptions (`unless`); once a rule
with `stop = true` fired, the rules after it are not tried (first match), else
every rule that fires acts (all match): a later rule's department, category, product, priority or assignee replaces an
earlier one's, tags and Cc's add up, and `acknowledge = false` stays.

Text is compared as `fields.plain` reads it (case folded in any script, Persian
letters for Arabic ones); a pattern searches at most MAX_TEXT characters and
for at most `PATTERN_TIMEOUT` seconds: a search that runs out is a condition that
does not hold, and the trace says so.
"""
from __future__ import annotations

import fnmatch
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from email.parser import BytesHeaderParser
from email.policy import compat32

import regex

from ..config_rules import (ARABIC_TO_PERSIAN, PATTERN_TIMEOUT, Conditions, Rule,
                            compile_pattern)
from . import words
from .headers import normalize_address, one_line, raw_headers, split_plus
from .parsed import ParsedMessage

MAX_TEXT = 100_000  # characters of a body a rule's pattern or words search
# what continues a word (not \w: it counts the zero-width non-joiner inside a
# Persian word, after which a suffix like ‌ها starts)
LETTER = r"[\p{L}\p{M}\p{N}_]"
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")  # the end of the header block
_ARABIC = re.compile("[" + "".join(map(chr, ARABIC_TO_PERSIAN)) + "]")


@dataclass(frozen=True)
class Facts:
    """What rules match on, read once from the message; its text is normalized (and
    case folded, for the quick test of words) when a rule first reads it."""
    recipients: tuple[str, ...]  # lower-case, with their +tags
    sender: str  # From
    subject_text: str
    text: str  # at most MAX_TEXT characters
    headers: dict[str, list[str]]  # lower-case names
    attachments: tuple[tuple[str, str, str], ...]  # (filename, declared, sniffed type)

    @cached_property
    def subject(self) -> str:
        return _text(self.subject_text)

    @cached_property
    def body(self) -> str:
        return _text(self.text)

    @cached_property
    def folded_subject(self) -> str:
        return self.subject.casefold()

    @cached_property
    def folded_body(self) -> str:
        return self.body.casefold()


@dataclass
class Ruling:
    """What the rules that fired decided."""
    fired: list[str] = field(default_factory=list)  # rule names, in order
    notes: list[str] = field(default_factory=list)  # for the trace
    action: str = ""  # "" | spam | ignore
    by: dict[str, str] = field(default_factory=dict)  # action -> the rule that set it
    department: str = ""
    category: str = ""
    product: str = ""
    priority: str = ""
    assignee: str = ""
    tags: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    acknowledge: bool = True


def facts_of(msg: ParsedMessage, recipients: list[str], headers: dict[str, list[str]]
             ) -> Facts:
    """`recipients`: every address the message was sent to, in routing order;
    `headers`: the values of the headers rules name (`read_headers`)."""
    return Facts(recipients=tuple(recipients), sender=normalize_address(msg.from_addr) or "",
                 subject_text=msg.subject, text=msg.text[:MAX_TEXT], headers=headers,
                 attachments=tuple((a.filename, a.content_type, a.sniffed_type)
                                   for a in msg.attachments if not a.inline))


def header_names(rules: tuple[Rule, ...]) -> set[str]:
    """The headers `rules` look at (lower case)."""
    return {name for rule in rules for part in (rule, rule.unless) for name, _ in part.header}


def read_headers(raw: bytes, names: set[str]) -> dict[str, list[str]]:
    """The values of headers `names` (lower case) in `raw`'s header block, decoded as a
    mail client shows them, one line each. The parsed message keeps only the headers
    the guard reads; precheck has bounded the header block."""
    if not names:
        return {}
    end = _BLANK_LINE.search(raw)
    msg = BytesHeaderParser(policy=compat32).parsebytes(raw[:end.end()] if end else raw)
    found = {name: [one_line(words.decode(v), 2000) for v in raw_headers(msg, name)]
             for name in names}
    return {name: values for name, values in found.items() if values}


def _text(text: str) -> str:
    """`text` as rules compare it: NFKC, Persian letters for Arabic ones (each done only
    when the text needs it: most mail is NFKC already and has no Arabic letters)."""
    text = text or ""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return text.translate(ARABIC_TO_PERSIAN) if _ARABIC.search(text) else text


def evaluate(rules: tuple[Rule, ...], facts: Facts) -> Ruling:
    ruling = Ruling()
    for rule in rules:
        if not fires(rule, facts, ruling.notes):
            continue
        ruling.fired.append(rule.name)
        _act(rule, ruling)
        if rule.stop or rule.action:
            break
    return ruling


def _act(rule: Rule, ruling: Ruling) -> None:
    for name in rule.actions():
        ruling.by[name] = rule.name
        if name == "tags":
            ruling.tags += [t for t in rule.tags if t not in ruling.tags]
        elif name == "cc":
            ruling.cc += [a for a in map(normalize_address, rule.cc) if a not in ruling.cc]
        else:
            setattr(ruling, name, getattr(rule, name))


def fires(rule: Rule, facts: Facts, notes: list[str]) -> bool:
    """Whether `rule`'s conditions hold for `facts` (a rule with none always does) and
    none of its exceptions (`unless`) does."""
    return _holds(rule, rule.match, facts, _Noter(rule.name, notes)) and not (
        rule.unless.conditions()
        and _holds(rule.unless, "any", facts, _Noter(f"{rule.name} unless", notes)))


def _holds(conditions: Conditions, match: str, facts: Facts, noter: _Noter) -> bool:
    names = conditions.conditions()
    held = (CHECKS[name](getattr(conditions, name), facts, noter.on(name)) for name in names)
    return all(held) if match == "all" else (not names or any(held))


class _Noter:
    """Notes, for the trace, a pattern search that ran out of time."""

    def __init__(self, rule: str, notes: list[str], condition: str = ""):
        self.rule, self.notes, self.condition = rule, notes, condition

    def on(self, condition: str) -> _Noter:
        return _Noter(self.rule, self.notes, condition)

    def search(self, pattern: str, text: str) -> bool:
        try:
            return compile_pattern(pattern).search(text, timeout=PATTERN_TIMEOUT) is not None
        except TimeoutError:
            self.notes.append(f"rule {self.rule!r}: {self.condition}: pattern {pattern!r} ran "
                              f"out of time ({PATTERN_TIMEOUT}s); taken as no match")
            return False


def _recipient(wanted, facts: Facts, _) -> bool:
    wanted = {normalize_address(a) for a in wanted}
    return any(a in wanted or split_plus(a)[0] in wanted for a in facts.recipients)


def _tag(wanted, facts: Facts, _) -> bool:
    tags = {(split_plus(a)[1] or "").casefold() for a in facts.recipients}
    return any(t.casefold() in tags for t in wanted)


def _from_address(wanted, facts: Facts, _) -> bool:
    return facts.sender in {normalize_address(a) for a in wanted}


def _from_domain(wanted, facts: Facts, _) -> bool:
    domain = facts.sender.rpartition("@")[2]
    return any(domain == d or domain.endswith("." + d)
               for d in (w.lstrip("@").lower() for w in wanted))


def _words(phrase: str) -> list[str]:
    return _text(phrase).replace("\u200c", " ").split()


def words_pattern(words: tuple[str, ...]) -> str:
    """A pattern for any of `words` (or phrases) as whole words: a space between two
    words of a phrase stands for any spacing, a zero-width non-joiner or none."""
    phrases = ("[\\s\u200c]*".join(map(regex.escape, _words(p))) for p in words)
    return rf"(?<!{LETTER})(?:" + "|".join(phrases) + rf")(?!{LETTER})"


def _pattern_check(attribute: str):
    def check(wanted, facts: Facts, noter: _Noter) -> bool:
        return noter.search(wanted, getattr(facts, attribute))
    return check


def _words_check(attribute: str):
    def check(wanted, facts: Facts, noter: _Noter) -> bool:
        # quick: a phrase can match only where each of its words stands as a substring
        folded = getattr(facts, f"folded_{attribute}")
        likely = tuple(p for p in wanted if all(w.casefold() in folded for w in _words(p)))
        return bool(likely) and noter.search(words_pattern(likely), getattr(facts, attribute))
    return check


def _header(wanted, facts: Facts, noter: _Noter) -> bool:
    return all(any(noter.search(pattern, _text(value)) for value in facts.headers.get(name, ()))
               for name, pattern in wanted)


def _attachment(wanted: bool, facts: Facts, _) -> bool:
    return bool(facts.attachments) == wanted


def _attachment_type(wanted, facts: Facts, _) -> bool:
    for filename, declared, sniffed in facts.attachments:
        for pattern in (w.lower() for w in wanted):
            if pattern.startswith("."):
                if filename.lower().endswith(pattern):
                    return True
            elif any(fnmatch.fnmatchcase(t.lower(), pattern) for t in (declared, sniffed) if t):
                return True
    return False


CHECKS = {"recipient": _recipient, "tag": _tag, "from_address": _from_address,
          "from_domain": _from_domain, "subject": _pattern_check("subject"),
          "subject_words": _words_check("subject"), "body": _pattern_check("body"),
          "body_words": _words_check("body"), "header": _header,
          "attachment": _attachment, "attachment_type": _attachment_type}
