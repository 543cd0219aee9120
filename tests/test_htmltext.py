"""HTML bodies as text (#12): words and table cells kept apart as a browser shows them,
bounded on hostile HTML, and no word of a real body glued to its neighbour."""
from __future__ import annotations

import email
import email.policy
import re

import pytest
from lxml import html as lxml_html

from mailgate.mail.htmltext import MAX_CELLS, html_to_text
from tests.conftest import CORPUS


@pytest.mark.parametrize("source, text", [
    ("<p>we have one.</p><p>Click our site</p>", "we have one.\n\nClick our site"),
    ("<div><font>we have one.</font></div><div><font>Click our site</font></div>",
     "we have one.\nClick our site"),
    ("<section>we have one.</section><section>Click our site</section>",
     "we have one.\nClick our site"),
    ("<center>one.</center>Click", "one.\nClick"),
    ('<span style="display:block">one.</span><span style="display:block">Click</span>',
     "one.\nClick"),
    ("we&nbsp;have one.<br>Click our site", "we have one.\nClick our site"),
    ("<table><tr><td>Order</td><td>42</td><td>paid</td></tr>"
     "<tr><td>Total</td><td>10 EUR</td></tr></table>", "Order  42      paid\nTotal  10 EUR"),
    ('<div dir="rtl"><p>سلام،</p><p>پرداخت انجام نشد.</p>'
     "<table><tr><td>شماره</td><td>۴۲</td></tr></table></div>",
     "سلام،\n\nپرداخت انجام نشد.\n\nشماره  ۴۲"),
    ("<p>გამარჯობა</p><p>ინვოისი</p>", "გამარჯობა\n\nინვოისი"),
    ('<div class=WordSection1><p class=MsoNormal>Hi,<o:p></o:p></p>'
     "<p class=MsoNormal>It still fails.<o:p></o:p></p></div>", "Hi,\n\nIt still fails."),
    ("<pre>a  b\n  c</pre>", "a  b\n  c"),
    ("<html><head><title>t</title><style>p{}</style><body><p>Hello</p>", "Hello"),
    ("<p>x</p><script>alert(1)</script><noscript>n</noscript><svg><text>s</text></svg>", "x"),
    ("<?xml version='1.0' encoding='utf-8'?><p>XHTML</p>", "XHTML"),
    ("", ""),
], ids=["paragraphs", "divs", "section", "center", "css-block", "br-nbsp", "table-cells",
        "fa-rtl", "ka", "outlook-word", "pre", "head", "scripts", "xml-declaration", "empty"])
def test_html_to_text(source, text):
    assert html_to_text(source) == text


def test_nesting_deeper_than_lxml_reads_keeps_the_text_below():
    source = "<p>Hello</p>" + "<div>" * 400 + "deep" + "</div>" * 400 + "<p>after</p>"
    assert html_to_text(source).split() == ["Hello", "deep", "after"]


def test_more_cells_than_the_bound_still_keeps_them_apart():
    cells = MAX_CELLS + 10
    text = html_to_text("<table><tr>" + "<td>cell</td>" * cells + "</tr></table>")
    assert text.split() == ["cell"] * cells


def _corpus_html() -> dict[str, str]:
    """Each distinct text/html part of ../shared/corpus, by the first file holding it."""
    found: dict[str, str] = {}
    for path in sorted(CORPUS.iterdir()):
        if path.name in ("README.md", "MANIFEST.tsv"):
            continue
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        for part in msg.walk():
            data = part.get_payload(decode=True) if part.get_content_type() == "text/html" \
                else None
            if data:
                text = data.decode("utf-8", "replace")
                found.setdefault(text, path.name)
    return {name: text for text, name in found.items()}


def _words_of_nodes(source: str) -> set[str]:
    doc = lxml_html.document_fromstring(source)
    for hidden in doc.xpath("//script|//style|//head"):
        hidden.drop_tree()
    return {word for node in doc.itertext() for word in re.findall(r"\w+", node)}


def test_no_word_of_a_real_html_body_is_glued_to_its_neighbour():
    bodies = _corpus_html()
    assert len(bodies) >= 90
    glued = {name: set(re.findall(r"\w+", html_to_text(source))) - _words_of_nodes(source)
             for name, source in bodies.items() if source.strip()}
    assert {name: words for name, words in glued.items() if words} == {}
