"""HTML bodies: sanitized with nh3 (ammonia) before they are stored (their text: htmltext.py).

bleach, named in the design card, declared itself unmaintained in June 2026;
nh3 is maintained and a Rust library underneath. Only formatting tags are
kept; scripts, styles, forms, embedded objects and event handlers are dropped,
and images load only from the message itself (`cid:`), so viewing a stored
ticket never fetches a URL chosen by the sender.
"""
from __future__ import annotations

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

