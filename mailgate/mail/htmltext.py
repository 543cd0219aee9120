"""HTML bodies as plain text, as a browser lays them out. Pure.

inscriptis (on lxml) lays out the text the way a browser shows it: block
elements and table rows start lines, table cells stay apart in columns,
`display: block` in a style attribute is honoured, <pre> keeps its spacing. Its
"strict" CSS profile (no indentation) is used, with the block elements it does
not know (section, center, dl, form, ...) added. Measured on the 104 distinct
HTML bodies of ../shared/corpus: no word of the source glued to its neighbour
(our former HTMLParser extractor: 15 in 2 bodies; html2text writes Markdown:
31,597 tokens not in the source, in 15 bodies), 1.6 ms a body (ours 0.2 ms on
typical bodies; html2text 13.6 ms); it keeps cells apart ("Order  42  paid",
ours "Order42paid").

Bounded on hostile HTML: lxml stops reading at a nesting of 256 levels (the
text below is lost, silently) and a table costs inscriptis about 40 µs a cell.
So a body over `MAX_CHARS` or with more than `MAX_CELLS` cells goes through the
small `HTMLParser` extractor below, linear in its input, and so does a body
lxml stopped reading (its error log says so) or could not read at all.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from lxml.html import HTMLParser as LxmlParser, document_fromstring

from .sanitize import DROP_WITH_CONTENT

MAX_CHARS = 2_000_000
MAX_CELLS = 5_000
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>")  # lxml refuses one in a str
_CELL = re.compile(r"<t[dh][\s>/]", re.IGNORECASE)


def _config() -> ParserConfig:
    css = CSS_PROFILES["strict"].copy()
    for tag in ("section", "center", "dl", "dt", "dd", "hr", "form", "fieldset", "details",
                "summary", "caption", "table", "tr"):
        css.setdefault(tag, HtmlElement(display=Display.block))
    for tag in DROP_WITH_CONTENT:
        css[tag] = HtmlElement(display=Display.none)
    return ParserConfig(css=css)


_CONFIG = _config()


def html_to_text(source: str) -> str:
    """Readable plain text of an HTML body (for messages that have no text part)."""
    simple = simple_text(source)
    if len(source) > MAX_CHARS or len(_CELL.findall(source)) > MAX_CELLS or not simple:
        return simple
    parser = LxmlParser(remove_comments=True, remove_pis=True, no_network=True)
    try:
        tree = document_fromstring(_XML_DECLARATION.sub("", source), parser=parser)
        laid_out = _tidy(Inscriptis(tree, _CONFIG).get_text())
    except Exception:  # lxml or inscriptis on a body they cannot read: the simple text
        return simple
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        return simple  # lxml stopped reading (nesting too deep): the rest would be lost
    return laid_out


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n").rstrip()


class _TextExtractor(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
             "blockquote", "pre", "table", "hr", "dt", "dd", "section", "article",
             "header", "footer", "center", "address", "ul", "ol", "dl"}
    CELL = {"td", "th"}
    SKIP = DROP_WITH_CONTENT

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.in_head = False

    def handle_starttag(self, tag, attrs):
        if tag == "body" and self.in_head:
            # a body closes an unclosed head (as browsers read it), and whatever
            # was left open inside that head with it
            self.in_head, self.skipping = False, 0
        elif tag in self.SKIP:
            self.skipping += 1
            self.in_head = self.in_head or tag == "head"
        elif tag in self.BLOCK:
            self.parts.append("\n")
        elif tag in self.CELL:
            self.parts.append("  ")
        if tag == "li":
            self.parts.append("* ")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
            self.in_head = self.in_head and tag != "head"
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def simple_text(source: str) -> str:
    """The text of `source` by Python's lenient HTMLParser: blocks on lines of their
    own, cells apart; linear in the input, whatever its nesting. The same words as
    `html_to_text` at a fraction of its cost (0.2 ms a typical body, not 1.6), laid out
    less well: enough to count what an HTML body says, and the fallback for bodies
    lxml cannot read."""
    parser = _TextExtractor()
    try:
        parser.feed(source)
        parser.close()
    except Exception:  # HTMLParser is lenient, but never let a body break a message
        return html.unescape(re.sub(r"<[^>]*>", " ", source)).strip()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
