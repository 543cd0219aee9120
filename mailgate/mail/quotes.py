"""Quotes: the new text a writer typed into a reply, without the history. Pure.

`new_text` runs the reply's lines through `STEPS`, a plain ordered list, and
says "" when the writer typed nothing of their own (a reply that only quotes);
`strip_quoted` gives the original back then. The clients' lines per language
are in `attribution.py`. Each step either leaves the lines alone or keeps what
lies above its cut:

1. our own separator, `##- Please type your reply above this line -##` in any
   language, quoted or not;
2. a mailing-list footer (a line of underscores, then "... mailing list");
3. a signature: a line that is exactly `-- ` or `--`, and a mobile footer
   ("Sent from my iPhone", "Get Outlook for Android") with nothing typed below
   it (checked again at the end, once any Outlook history is gone);
4. an attribution line, possibly wrapped over three lines: "On ... wrote:" and
   its German, French, Spanish, Russian, Persian and Georgian forms, plus the
   verb-less Gmail form "<date> <time>, Name <a@b>:";
5. "-----Original Message-----" and its translations;
6. an Outlook header block (From/Sent/To/Subject, also de, fr, es, ru, fa, ka),
   with the `______` or `------` line above it;
7. a trailing block of `>` lines;
8. bottom posting: one leading quote block with the answer below it.

A cut is taken only where some of the writer's own text stays above it. Our
separator (1) wins when present; the other steps still run on the text above
it, because Outlook puts its header block between the answer and our line;
right above our line, any last line ending in ':' with an address or a time
is taken for the client's attribution, even in a language we do not know.
Inline answers (the writer types between `>` lines) keep their quotes: an
attribution followed by a quote and then more of the writer's text is not a
cut, and only a trailing quote block is removed. Attribution lines must look
like one — lead word or date first, the verb and a colon last, a digit or an
address in between — so "my colleague wrote:" in a sentence survives, and a
header block needs From and Subject among at least three header lines, so a
"From: Berlin / To: Paris / Date: ..." booking request survives. A forwarded
message ("---------- Forwarded message ---------") is content, not history.

Why not mail-parser-reply (1.36)? Run over the 94 replies in
tests/test_quotes.py it gave the expected text for 51. Besides knowing no
Persian, Georgian or Russian, it strips every line (indented code and lists
lose their indentation), cuts hyphen lists and everything after "Best,",
"Thanks," or "Best regards" as a signature, drops inline answers and knows
nothing of our separator. Wrapping it would mean undoing most of what it
does; these rules are about as long as that wrapper would be, and pass.
"""
from __future__ import annotations

import functools
import re
from typing import Callable, Iterable, Iterator

from .attribution import (ATTRIBUTIONS, BIDI, FORWARD, HEADER, LOOSE_ATTRIBUTION, MOBILE_FOOTER,
                          ORIGINAL, RULE)

# Our outgoing mail carries this line; the writer's text is above it.
SEPARATOR = re.compile(r"^\s*>*\s*##-.*-##\s*$")


def strip_quoted(text: str) -> str:
    """The writer's new text: no quoted history, no signature, no blank lines around.

    When nothing of the writer's own would remain, the original text, stripped.
    """
    return new_text(text) or text.strip()


def new_text(text: str) -> str:
    """What the writer typed above or between the quotes; "" when nothing (a reply
    that only quotes, or an empty body)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for step in STEPS:
        lines = step(lines)
    if _first_text(lines) is None:
        return ""
    return "\n".join(lines[_next_text(lines, 0):]).rstrip()


# -- the steps ---------------------------------------------------------------

def _cut_at(candidates: Callable[[list[str]], Iterable[int]]) -> Callable[[list[str]], list[str]]:
    """A step keeping the lines above the first candidate with writer's text above it."""
    def step(lines: list[str]) -> list[str]:
        first = _first_text(lines)
        for i in candidates(lines):
            if first is not None and i > first:
                return lines[:i]
        return lines
    step.__name__ = candidates.__name__
    return step


def _separators(lines: list[str]) -> Iterator[int]:
    return (i for i, line in enumerate(lines) if SEPARATOR.match(BIDI.sub("", line)))


def _without_attribution(lines: list[str]) -> list[str]:
    """Above our separator, drop the client's attribution line(s) that end the text.

    Any last line ending in ':' with an address or a time counts there, so a
    client whose language we do not know loses its attribution too.
    """
    last = _previous_text(lines, len(lines))
    if last is None or _is_quoted(lines[last]):
        return lines
    for start in range(max(last - 2, 0), last + 1):
        if start + _attribution_at(lines, start) == last + 1:
            return lines[:start]
    return lines[:last] if LOOSE_ATTRIBUTION.match(_plain(lines[last])) else lines


def _after_separator(lines: list[str]) -> list[str]:
    kept = _cut_at(_separators)(lines)
    return lines if kept is lines else _without_attribution(kept)


def _list_footers(lines: list[str]) -> Iterator[int]:
    for i, line in enumerate(lines[:-1]):
        if RULE.match(_plain(line)) and _plain(lines[i + 1]).lower().endswith("mailing list"):
            yield i


def _signatures(lines: list[str]) -> Iterator[int]:
    return (i for i, line in enumerate(lines) if line in ("--", "-- "))


def _attributions(lines: list[str]) -> Iterator[int]:
    for i in range(len(lines)):
        span = _attribution_at(lines, i)
        if span and not _answered_below(lines, i + span):
            yield i


def _original_messages(lines: list[str]) -> Iterator[int]:
    return (i for i, line in enumerate(lines) if ORIGINAL.match(_plain(line)))


def _header_blocks(lines: list[str]) -> Iterator[int]:
    for i in range(len(lines)):
        if not _is_header_block(lines, i):
            continue
        above = _previous_text(lines, i)
        above_line = "" if above is None else _plain(lines[above])
        if not FORWARD.match(above_line):
            yield above if RULE.match(above_line) else i


def _trailing_quote(lines: list[str]) -> Iterator[int]:
    end = _end_of_text(lines)
    if any(_is_quoted(line) for line in lines[end:]):
        yield end


def _after_leading_quote(lines: list[str]) -> list[str]:
    """Bottom posting: [attribution,] one quote block, then only the answer."""
    start = _next_text(lines, 0)
    start += _attribution_at(lines, start)
    end = start
    while end < len(lines) and (_is_blank(lines[end]) or _is_quoted(lines[end])):
        end += 1
    rest = lines[end:]
    quoted_on_top = any(_is_quoted(line) for line in lines[start:end])
    if quoted_on_top and _first_text(rest) is not None and not any(map(_is_quoted, rest)):
        return rest
    return lines


def _mobile_footers(lines: list[str]) -> Iterator[int]:
    """A footer line after which the writer typed nothing (only quotes may follow)."""
    for i, line in enumerate(lines):
        if MOBILE_FOOTER.match(_plain(line)) and _first_text(lines[i + 1:]) is None:
            yield i


STEPS: tuple[Callable[[list[str]], list[str]], ...] = (
    _after_separator,
    _cut_at(_list_footers),
    _cut_at(_signatures),
    _cut_at(_mobile_footers),
    _cut_at(_attributions),
    _cut_at(_original_messages),
    _cut_at(_header_blocks),
    _cut_at(_trailing_quote),
    _after_leading_quote,
    _cut_at(_mobile_footers),  # again: Outlook's history below hid it the first time
)


# -- line helpers --------------------------------------------------------------

@functools.lru_cache(maxsize=8192)  # the steps look at the same lines again and again
def _plain(line: str) -> str:
    """The line without direction marks, its whitespace runs made single spaces."""
    return " ".join(BIDI.sub("", line).split())


def _is_blank(line: str) -> bool:
    return not _plain(line)


def _is_quoted(line: str) -> bool:
    return _plain(line).startswith(">")


@functools.lru_cache(maxsize=4096)
def _is_attribution(text: str) -> bool:
    # every pattern of ATTRIBUTIONS ends in ":" (the text has no line break)
    return (text.endswith(":") and len(text) <= 300 and re.search(r"\d|@", text) is not None
            and any(p.match(text) for p in ATTRIBUTIONS))


def _attribution_span(lines: list[str], i: int) -> int:
    """How many lines (1-3) an attribution starting at line `i` takes, else 0."""
    joined = ""
    for span, line in enumerate(lines[i:i + 3], 1):
        plain = _plain(line)
        if not plain or plain.startswith(">"):  # blank or quoted
            break
        joined = f"{joined} {plain}".strip()
        if _is_attribution(joined):
            return span
    return 0


def _attribution_at(lines: list[str], i: int) -> int:
    """Like `_attribution_span`, but a wrapped one may not swallow the line before it."""
    span = _attribution_span(lines, i)
    return 0 if span > 1 and _attribution_span(lines, i + 1) else span


def _answered_below(lines: list[str], i: int) -> bool:
    """Is the quote that starts at line `i` followed by more of the writer's text?"""
    i = _next_text(lines, i)
    if i == len(lines) or not _is_quoted(lines[i]):
        return False
    while i < len(lines) and (_is_blank(lines[i]) or _is_quoted(lines[i])):
        i += 1
    return i < len(lines)


def _is_header_block(lines: list[str], i: int) -> bool:
    """From and Subject among three or more header lines, starting at line `i`."""
    kinds = []
    for line in lines[i:i + 8]:
        match = HEADER.match(_plain(line))
        if _is_blank(line) or (match is None and not kinds):
            break
        if match:
            kinds.append(match.lastgroup)
    return len(kinds) >= 3 and "sender" in kinds and "subject" in kinds


def _first_text(lines: list[str]) -> int | None:
    """Index of the first line the writer typed: not blank, quoted or an attribution."""
    i = 0
    while i < len(lines):
        if _is_blank(lines[i]) or _is_quoted(lines[i]):
            i += 1
        elif span := _attribution_at(lines, i):
            i += span
        else:
            return i
    return None


def _next_text(lines: list[str], i: int) -> int:
    """Index of the first non-blank line from `i` on (len(lines) if none)."""
    while i < len(lines) and _is_blank(lines[i]):
        i += 1
    return i


def _previous_text(lines: list[str], i: int) -> int | None:
    """Index of the last non-blank line before `i`."""
    i -= 1
    while i >= 0 and _is_blank(lines[i]):
        i -= 1
    return i if i >= 0 else None


def _end_of_text(lines: list[str]) -> int:
    """Index just after the last line that is neither blank nor quoted."""
    end = len(lines)
    while end and (_is_blank(lines[end - 1]) or _is_quoted(lines[end - 1])):
        end -= 1
    return end
