"""Names as they will be shown: attachment filenames and display names, cleaned once
when the message is parsed. No line breaks, no bidi controls, no invisible
characters, nothing Windows would read otherwise than shown. Pure."""
from __future__ import annotations

import re
import unicodedata

from .headers import one_line, safe_filename

# Bidi embeddings, overrides, isolates and marks reorder what is shown around them:
# "invoice\u202efdp.exe" reads as "invoiceexe.pdf".
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Invisible characters besides the format (Cf) category: combining grapheme joiner,
# Mongolian and Unicode variation selectors, Hangul fillers.
_INVISIBLE_EXTRA = re.compile("[\u034f\u115f\u1160\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
                              "\U000e0100-\U000e01ef]")
_JOINERS = "\u200c\u200d"  # ZWNJ/ZWJ: part of Persian, Arabic and Indic words
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", "conin$", "conout$",
                    *(f"{port}{n}" for port in ("com", "lpt") for n in "123456789¹²³")}


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or _INVISIBLE_EXTRA.match(ch) is not None


def _strip_invisible(text: str, keep_joiners: bool) -> str:
    """`text` without invisible characters; with `keep_joiners`, a ZWNJ/ZWJ between two
    letters stays (it shapes the word), anywhere else it goes."""
    out = []
    for i, ch in enumerate(text):
        if not _invisible(ch):
            out.append(ch)
        elif keep_joiners and ch in _JOINERS and 0 < i < len(text) - 1 \
                and text[i - 1].isalpha() and text[i + 1].isalpha():
            out.append(ch)
    return "".join(out)


def clean_filename(value: object) -> str:
    """An attachment's name as we keep and show it: one line, no path, no bidi controls
    or invisible characters, and nothing Windows would read otherwise than shown
    (trailing dots and spaces dropped, `:` and other reserved characters replaced,
    device names such as CON or LPT1 prefixed). Metadata only; never a path."""
    name = safe_filename(_strip_invisible(str(value)[:10_000], keep_joiners=True))
    name = _WINDOWS_FORBIDDEN.sub("_", name).rstrip(". ")
    if name.split(".", 1)[0].rstrip(" ").lower() in WINDOWS_RESERVED:
        name = "_" + name
    return name or "attachment"


def comparable_name(filename: str) -> str:
    """The form of a filename that extension checks compare: every invisible character
    gone, compatibility forms folded (full-width letters), lower case, no trailing
    dots or spaces."""
    name = _strip_invisible(unicodedata.normalize("NFKC", filename), keep_joiners=False)
    return name.lower().rstrip(". ")


def clean_display_name(value: object) -> str:
    """A display name as shown: decoded, one line (an encoded CR/LF starts no header),
    no bidi controls."""
    return one_line(BIDI_CONTROLS.sub("", str(value or "")), 200)
