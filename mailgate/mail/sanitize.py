"""HTML bodies: sanitized with nh3 (ammonia) before they are stored, and turned into text.

bleach, named in the design card, declared itself unmaintained in June 2026;
nh3 is maintained and a Rust library underneath. Only formatting tags are
kept; scripts, styles, forms, embedded objects and event handlers are dropped,
and images load only from the message itself (`cid:`), so viewing a stored
ticket never fetches a URL chosen by the sender.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nh3

TAGS = {
    "a", "b", "i", "u", "em", "strong", "p", "br", "div", "span", "blockquote", "pre",
    "code", "ul", "ol", "li", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "col", "colgroup",
    "img", "hr", "sub", "sup", "small", "s", "strike", "del", "ins", "q", "cite",
}
# Tags whose content goes too, not just the tag.
DROP_WITH_CONTENT = {"script", "style", "template", "title", "head", "svg", "math",
                     "iframe", "object", "embed", "noscript", "xmp", "noembed", "noframes"}
ATTRIBUTES = {
    "*": {"dir", "lang", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto", "cid"}


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if tag == "img" and attr == "src":
        # Only images carried in the message itself; a remote image would
        # tell the sender when (and from where) the ticket was read.
        return value if value.lower().startswith("cid:") else None
    if tag == "img" and attr == "alt":
        return value
    if attr == "href" and value.lower().startswith("cid:"):
        return None
    return value


def sanitize_html(source: str) -> str:
    return nh3.clean(
        source,
        tags=TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes=URL_SCHEMES,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
    )


class _TextExtractor(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
             "blockquote", "pre", "table", "hr", "dt", "dd"}
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
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
            self.in_head = self.in_head and tag != "head"
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(source: str) -> str:
    """Readable plain text of an HTML body (for messages that have no text part)."""
    parser = _TextExtractor()
    try:
        parser.feed(source)
        parser.close()
    except Exception:  # HTMLParser is lenient, but never let a body break a message
        return html.unescape(re.sub(r"<[^>]*>", " ", source))
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
