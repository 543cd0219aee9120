"""The bytes of outgoing mail (`outbound/compose.py` over `mime.py`), read back by the
stdlib's strict parser: every header and part comes back as it was meant."""
from __future__ import annotations

import email
import email.policy
import re

import pytest

from mailgate.outbound import mime
from mailgate.outbound.compose import Headers, build_email, header_text
from mailgate.outbound.render import Rendered

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40
REFERENCES = " ".join(f"<mg.ack.{n}.{'a' * 40}@support.example.com>" for n in range(25))
CASES = {
    "plain ASCII": ("Support", "Your ticket [MG#10007] printer broken", "Hello,\nthanks.\n",
                    None, []),
    "Persian name and subject, HTML": (
        "پشتیبانی شرکت", "تیکت شما [BILL#10015] ثبت شد: چاپگر کار نمی‌کند " * 3,
        "سلام،\nپیام شما رسید.\n", "<p dir=\"rtl\">سلام</p>", []),
    "Georgian, a file with a Georgian name": (
        "მხარდაჭერა", "თქვენი მოთხოვნა მიღებულია", "გამარჯობა\n", None,
        [("ანგარიში.pdf", "application/pdf", PDF)]),
    "quotes, a literal encoded word, long words": (
        'Team "Ops", Inc.', "=?UTF-8?Q?not_decoded?= " + "x" * 300,
        "a" * 2000 + "\n", "<b>x</b>", [('a "b".txt', "text/plain", b"hi\n"),
                                       ("x.bin", "not a type", b"\0\1")]),
}


def compose(name: str, subject: str, text: str, html: str | None, files: list) -> bytes:
    headers = Headers(sender="support@example.com", sender_name=name,
                      recipients=["customer@example.org"], message_id="<m1@example.com>",
                      in_reply_to="<c1@example.org>", references=REFERENCES,
                      auto_submitted="auto-replied", loop_marker="mailgate-test",
                      extra={"X-Mailgate-Ticket": "10007"})
    stored = {f"sha{i}": data for i, (_, _, data) in enumerate(files)}
    items = [{"sha256": f"sha{i}", "filename": fname, "content_type": ctype}
             for i, (fname, ctype, _) in enumerate(files)]
    return build_email(headers, Rendered(subject, text, html), items, stored.__getitem__)


def content(part) -> str:
    return part.get_content().replace("\r\n", "\n")  # 7bit and 8bit parts keep the CRLF


@pytest.mark.parametrize("case", CASES)
def test_headers_and_parts_read_back_as_written(case):
    name, subject, text, html, files = CASES[case]
    raw = compose(name, subject, text, html, files)
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()  # names and subjects as encoded words
    msg = email.message_from_bytes(raw, policy=email.policy.strict)
    assert not msg.defects
    assert msg["Subject"] == header_text(subject)
    assert msg["From"].addresses[0].display_name == name
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert [a.addr_spec for a in msg["To"].addresses] == ["customer@example.org"]
    assert msg["References"].split() == REFERENCES.split()[-20:]  # ids literal, the last 20
    assert (msg["Message-ID"], msg["In-Reply-To"]) == ("<m1@example.com>", "<c1@example.org>")
    assert msg["X-Mailgate-Ticket"] == "10007" and msg["Auto-Submitted"] == "auto-replied"
    assert content(msg.get_body(("plain",))) == text
    if html is not None:
        assert content(msg.get_body(("html",))) == html + "\n"
    attached = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
                for p in msg.iter_attachments()]
    assert attached == [(fname, ctype if "/" in ctype and " " not in ctype
                         else "application/octet-stream", data)
                        for fname, ctype, data in files]


def test_long_header_values_fold_at_spaces_and_keep_every_word():
    value = " ".join(f"word{n}" for n in range(60))
    line = mime.header_line("Subject", value)
    assert all(len(part) <= mime.FOLD_AT for part in line.split(b"\r\n"))
    assert re.sub(rb"\r\n ", b" ", line) == b"Subject: " + value.encode() + b"\r\n"


def test_encoded_words_never_split_a_character():
    text = "ა" * 100 + "😀" * 30
    words = mime.encoded_words(text).split(" ")
    assert all(len(w) <= 70 for w in words)
    assert str(email.header.make_header(email.header.decode_header(" ".join(words)))) == text
