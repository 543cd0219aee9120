"""Every real message reads as its sender wrote it (issue 13): charsets, encoded words,
fuller bodies, uuencode, odd senders, everyday attachments.

Each class has table tests of the pure functions and pipeline tests that store the
ticket on SQLite and PostgreSQL and look at what an agent sees. Samples are written
here by hand, or taken from ../shared/corpus (licenses in its MANIFEST.tsv: the files
used here are MIT, BSD-2-Clause and Apache-2.0).
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import subprocess
import sys
import zipfile

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.cli import main
from mailgate.config import LimitSettings
from mailgate.mail.attachments import refusal
from mailgate.mail.bodies import Found, choose_alternative
from mailgate.mail.charsets import Reader, codec_for
from mailgate.mail.parse import parse_message
from mailgate.mail.parsed import ParsedAttachment
from mailgate.mail.htmltext import html_to_text
from mailgate.mail.senders import repair_headers
from mailgate.mail.sniff import examine
from mailgate.mail.uudecode import extract
from mailgate.mail.words import decode
from mailgate.models import Inbound, Message, Quarantine, TicketEvent
from mailgate.pipeline import Envelope, ingest, retry_quarantined
from mailgate.storage import sha256_hex
from tests.conftest import CORPUS, ROOT

PIPE = Envelope("pipe")
ESC = "\x1b"


def mail(body: bytes, headers: str = "", sender: str = "Customer <customer@example.org>",
         subject: str = "Question", content_type: str = "text/plain; charset=utf-8",
         extra: bytes = b"") -> bytes:
    """A single-part message; `headers` and `extra` (raw header bytes) are added."""
    head = (f"From: {sender}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
            f"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {content_type}\r\n{headers}").encode()
    return head + extra + b"\r\n" + body


def multipart(parts: list[bytes], kind: str = "mixed", sender: str = "customer@example.org",
              subject: str = "Files") -> bytes:
    out = (f"From: {sender}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
           f"MIME-Version: 1.0\r\nContent-Type: multipart/{kind}; boundary=XX\r\n\r\n").encode()
    for part in parts:
        out += b"--XX\r\n" + part + b"\r\n"
    return out + b"--XX--\r\n"


def part(content_type: str, body: bytes, headers: str = "", base64_body: bool = False) -> bytes:
    if base64_body:
        headers += "Content-Transfer-Encoding: base64\r\n"
        body = base64.encodebytes(body)
    return f"Content-Type: {content_type}\r\n{headers}\r\n".encode() + body


def stored(gw, result) -> Message:
    with gw.db.unit_of_work() as session:
        message = session.scalar(select(Message).where(Message.inbound_id == result.inbound_id))
        message.attachments  # load while the session is open
        session.expunge(message)
        return message


def events(gw, number: str, kind: str) -> list[TicketEvent]:
    with gw.db.unit_of_work() as session:
        return [e for e in ops.get_ticket(session, number).events if e.kind == kind]


# -- charsets: labels, supersets, detection -----------------------------------------

@pytest.mark.parametrize("label,codec", [
    ("GB2312", "gb18030"), ("gbk", "gb18030"), ("x-gbk", "gb18030"),
    ("Shift_JIS", "cp932"), ("x-sjis", "cp932"), ("ks_c_5601-1987", "cp949"),
    ("EUC-KR", "cp949"), ("ISO-8859-8-I", "iso8859_8"), ("iso-8859-1", "cp1252"),
    ("win-1251", "cp1251"), ("x-cp1250", "cp1250"), ("windows1252", "cp1252"),
    ('"utf-8"', "utf-8"), ("3Dutf-8", "utf-8"), ("iso-2022-jp", "iso2022_jp_2"),
    ("us-ascii", "ascii"), ("koi8-r", "koi8-r"), ("utf-7", "utf-7"),
    ("x-unknown", None), ("unknown-8bit", None), ("fakescii", None), ("rot13", None),
    ("base64", None), ("", None), (None, None),
])
def test_charset_labels(label, codec):
    assert codec_for(label) == codec


@pytest.mark.parametrize("data,declared,text", [
    ("\x1b$B$9$_$^$;$s!#\x1b(B".encode(), "iso-2022-jp", "すみません。"),
    (b"\xe9F\xbb\xf9", "gb2312", "镕基"),  # 镕 is GBK, not GB2312
    (b"\x87@\xee\xe0", "shift_jis", "①髙"),  # NEC and IBM extensions of CP932
    (b"\x81A", "ks_c_5601-1987", "갂"),  # a UHC (CP949) syllable outside KS X 1001
    ("שלום".encode("iso8859_8"), "iso-8859-8-i", "שלום"),
    ("Привет".encode("cp1251"), "win-1251", "Привет"),
    (b"caf\xe9 \x80 \x93x\x94", "iso-8859-1", "café € “x”"),  # Windows-1252 under a Latin-1 label
    (b"Fr\xf6sche", "utf-8", "Frösche"),  # mislabelled: not UTF-8 at all
    (b"r\xe1pido", None, "rápido"),  # no label
    ("naïve".encode(), "us-ascii", "naïve"),  # UTF-8 under a US-ASCII label
    (b"x\x81y", None, "x\x81y"),  # Windows-1252's holes read as C1, never U+FFFD
])
def test_text_is_read_in_the_charset_meant(data, declared, text):
    assert Reader().text(data, declared) == text


def test_text_without_a_label_goes_to_the_detector_within_a_budget():
    cyrillic = ("Здравствуйте, у меня не работает принтер в офисе, помогите пожалуйста. "
                * 3).encode("koi8_r")
    reader = Reader()
    assert reader.text(cyrillic).startswith("Здравствуйте")
    reader.calls_left = 0  # spent: Windows-1252, still no U+FFFD
    assert "\ufffd" not in reader.text(cyrillic)


# -- encoded words -------------------------------------------------------------------

@pytest.mark.parametrize("raw,shown", [
    ('"=?windows-1251?B?z/Do4uXy?=" <a@example.org>', '"Привет" <a@example.org>'),
    ("=?utf-8?q?agent?=@example.com", "agent@example.com"),
    ("=?iso-8859-1?Q?Die_Hasen_und_die_Fr\udcf6sche?=", "Die Hasen und die Frösche"),
    ("=?utf-8?B?w6k=?= =?utf-8?B?w6k?=", "éé"),
    ("=?utf-8?B?4og=?= =?utf-8?B?ig==?=", "∊"),  # one character split over two words
    ("=?gb2312?B?6Ua7+Q==?=", "镕基"),
    ("=?NONE?B?VEVTVA=?=", "TEST"),
    ("Re: =?utf-8?q?hello?=\r\n =?utf-8?q?_world?=", "Re: hello world"),
    ("plain r\udce1pido", "plain rápido"),  # raw 8-bit header bytes, no label
    ("=?utf-8?q?unfinished", "=?utf-8?q?unfinished"),
])
def test_encoded_words_as_clients_show_them(raw, shown):
    assert decode(raw) == shown


# -- bodies: the fuller alternative, never empty ------------------------------------

def _found(*pieces) -> Found:
    return Found(pieces=list(pieces))


@pytest.mark.parametrize("options,chosen", [
    ([_found(("plain", "Hello, the printer is broken.")),
      _found(("html", "<p>Hello, the printer is broken.</p>"))], "Hello, the printer is broken."),
    ([_found(("plain", "Sent from my phone")),
      _found(("html", "<p>" + "The invoice of March lists two licences we never ordered. " * 3
                      + "</p>"))], "The invoice of March"),
    ([_found(("plain", "  \n")), _found(("html", "<p>Only here</p>"))], "Only here"),
    ([_found(("html", "<p>HTML only</p>"))], "HTML only"),
    ([], None),
])
def test_choose_alternative(options, chosen):
    result = choose_alternative(options)
    assert (result is None) if chosen is None else result.startswith(chosen)


@pytest.mark.parametrize("source,text", [
    ("<html><head><title>t</title><style>p{}</style><body><p>Hello</p>", "Hello"),
    ("<html><head><meta charset=utf-8><body>Hi <b>there</b>", "Hi there"),
    ("<head><script>x()</script></head><body>ok</body>", "ok"),
])
def test_html_with_an_unclosed_head_keeps_its_text(source, text):
    assert html_to_text(source) == text


def test_uuencoded_blocks_leave_the_text():
    data = bytes(range(256)) * 4
    block = "begin 644 data.bin\n" + "".join(
        binascii.b2a_uu(data[i:i + 45]).decode() for i in range(0, len(data), 45)) + "`\nend\n"
    text, files = extract("See attached.\n\n" + block + "\nThanks\n")
    assert files == [("data.bin", data)]
    assert text == "See attached.\n\n\nThanks\n"  # the lines around the block stay


# -- through the pipeline: what the ticket says -------------------------------------

CHARSET_MAILS = [
    (mail("\x1b$B$9$_$^$;$s!#\x1b(B\r\n".encode(), content_type="text/plain; charset=iso-2022-jp",
          headers="Content-Transfer-Encoding: 7bit\r\n"), "すみません。"),
    (mail(b"\xe9F\xbb\xf9\r\n", content_type="text/plain; charset=gb2312",
          subject="=?gb2312?B?6Ua7+Q==?="), "镕基"),
    (mail(b"\x87@\xee\xe0\r\n", content_type="text/plain; charset=shift_jis"), "①髙"),
    (mail(b"\x81A\r\n", content_type="text/plain; charset=ks_c_5601-1987"), "갂"),
    (mail("שלום\r\n".encode("iso8859_8"), content_type="text/plain; charset=iso-8859-8-i"),
     "שלום"),
    (mail(b"Necesito ayuda r\xe1pido\r\n", content_type="text/plain",
          extra=b"X-Note: r\xe1pido\r\n", subject="Ayuda"), "Necesito ayuda rápido"),
]


@pytest.mark.parametrize("raw,text", CHARSET_MAILS)
def test_ticket_text_in_the_charset_the_sender_meant(gw, departments, raw, text):
    result = ingest(gw, raw, PIPE)
    assert result.outcome == "new"
    message = stored(gw, result)
    assert message.text_body.strip() == text
    assert "\ufffd" not in message.text_body + message.subject and ESC not in message.text_body


def test_eight_bit_subject_and_name_without_a_label(gw, departments):
    raw = mail(b"hola\r\n", sender="x@example.org", subject="x").replace(
        b"From: x@example.org", b"From: Jos\xe9 P\xe9rez <jose@example.org>").replace(
        b"Subject: x", b"Subject: Informaci\xf3n r\xe1pida")
    message = stored(gw, ingest(gw, raw, PIPE))
    assert (message.author_name, message.subject) == ("José Pérez", "Información rápida")


def test_encoded_words_in_quoted_names_are_shown_decoded(gw, departments):
    raw = mail(b"hi\r\n", sender='"=?windows-1251?B?z/Do4uXy?=" <ivan@example.org>',
               subject="=?iso-8859-1?Q?Die_Hasen_und_die_Fr=F6sche?=")
    message = stored(gw, ingest(gw, raw, PIPE))
    assert (message.author_name, message.author_email) == ("Привет", "ivan@example.org")
    assert message.subject == "Die Hasen und die Frösche"


def test_an_encoded_word_address_is_kept_as_written(gw, departments):
    message = stored(gw, ingest(gw, mail(b"hi\r\n", sender="=?utf-8?q?agent?=@example.com"),
                                PIPE))
    assert message.author_email == "=?utf-8?q?agent?=@example.com"  # never rewritten


def test_stub_text_part_gives_way_to_the_html_that_holds_the_message(gw, departments):
    html = ("<html><head><title>x</title><body><p>" +
            "Our order 4711 arrived with two broken monitors and no invoice. " * 3 + "</p>")
    raw = multipart([part("text/plain; charset=utf-8", b"Sent from my phone"),
                     part("text/html; charset=utf-8", html.encode())], "alternative")
    message = stored(gw, ingest(gw, raw, PIPE))
    assert message.text_body.startswith("Our order 4711 arrived")
    assert "Our order 4711" in message.html_body


def test_multipart_without_boundary_keeps_its_body(gw, departments):
    raw = mail(b"The body is still here.\r\n", content_type="multipart/mixed")
    assert stored(gw, ingest(gw, raw, PIPE)).text_body.strip() == "The body is still here."


def test_html_only_with_unclosed_head_is_not_empty(gw, departments):
    raw = mail(b"<html><head><style>p{color:red}</style><body><p>Please call me</p>",
               content_type="text/html; charset=utf-8")
    assert stored(gw, ingest(gw, raw, PIPE)).text_body == "Please call me"


def test_uuencoded_body_becomes_an_attachment(gw, departments):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    encoded = "".join(binascii.b2a_uu(png[i:i + 45]).decode() for i in range(0, len(png), 45))
    body = f"Screenshot below.\r\n\r\nbegin 644 screen.png\r\n{encoded}`\r\nend\r\n"
    message = stored(gw, ingest(gw, mail(body.encode(), content_type="text/plain"), PIPE))
    assert "begin 644" not in message.text_body and "Screenshot below." in message.text_body
    assert [(a.filename, a.sniffed_type, a.size) for a in message.attachments] == \
        [("screen.png", "image/png", len(png))]


def test_x_uuencode_parts_from_the_corpus_are_decoded(gw, departments):
    # mail-mime-parser (BSD-2-Clause): three PNGs sent as x-uuencode parts
    message = stored(gw, ingest(gw, (CORPUS / "mail-mime-parser__m1014.txt").read_bytes(),
                                Envelope("pipe", None, ("support@example.com",))))
    assert sorted((a.filename, a.sniffed_type) for a in message.attachments) == [
        ("blueball.png", "image/png"), ("greenball.png", "image/png"),
        ("redball.png", "image/png")]


@pytest.mark.parametrize("name,expected", [
    # ruby-mail (MIT): ISO-2022-JP body that used to stay escape sequences
    ("ruby-mail__japanese_iso_2022.eml", "すみません。"),
    # mail-parser (Apache-2.0): GB2312 label on GBK text, and a GB2312 subject
    ("mail-parser__mail_test_12", "我公司可代开各类"),
    # mail-mime-parser (BSD-2-Clause): labelled UTF-8, written in Latin-1
    ("mail-mime-parser__m1010.txt", "Die Hasen und die Frösche"),
])
def test_corpus_charset_messages_read_cleanly(gw, departments, name, expected):
    result = ingest(gw, (CORPUS / name).read_bytes(),
                    Envelope("pipe", None, ("support@example.com",)))
    message = stored(gw, result)
    assert expected in message.text_body
    assert "\ufffd" not in message.text_body + message.subject + message.author_name


# -- senders that are odd but real ----------------------------------------------------

@pytest.mark.parametrize("from_line,address,how", [
    ('Fax <"#FAX#*49000783135#"@fax.example>', "#fax#*49000783135#@fax.example", ""),
    ("John <john @ example.com>", "john@example.com", ""),
    ("John Doe <jdoe@machine(comment).  example>", "jdoe@machine.example", ""),
    ("Test test@example.com", "test@example.com", "without angle brackets"),
    ("tim@example.com concierge@example.com", "tim@example.com", "first of 2"),
])
def test_from_as_a_person_reads_it(from_line, address, how):
    parsed = parse_message(mail(b"hi\r\n", sender=from_line))
    assert parsed.from_addr == address and how in parsed.sender_note
    assert parsed.sender_verified


@pytest.mark.parametrize("raw,fixed", [
    (b"Begin forwarded message:\r\n\r\nFrom: Ann <ann@example.org>\r\nSubject: x\r\n\r\nbody",
     "skipped 1 line"),
    (b" From: Ann <ann@example.org>\r\nSubject: x\r\n\r\nbody", "repaired 1"),
    (b"From  : Ann <ann@example.org>\r\nTo    : b@example.org\r\n\r\nbody", "repaired 2"),
    (b"Received: x\r\nquite Delivered-To: y\r\nFrom: ann@example.org\r\n\r\nbody", "repaired 1"),
    (b"Hello,\r\nthanks for the call.\r\nFrom: me\r\n", None),  # a reply body, not headers
    (b"Subject: no from\r\n\r\nbody", None),
])
def test_repair_headers(raw, fixed):
    repaired = repair_headers(raw)
    assert (repaired is None) if fixed is None else (fixed in repaired[1])
    if repaired is not None:
        assert parse_message(repaired[0]).from_addr == "ann@example.org"


def test_forwarded_banner_before_the_headers_opens_a_ticket(gw, departments):
    raw = (b"-----Original Message-----\r\nFrom: Ann Lee <ann@example.org>\r\n"
           b"To: support@example.com\r\nSubject: VPN down\r\n\r\nThe VPN is down again.\r\n")
    result = ingest(gw, raw, PIPE)
    assert result.outcome == "new"
    assert any(line.startswith("sender: headers skipped 1 line") for line in result.trace)
    message = stored(gw, result)
    assert (message.author_email, message.subject) == ("ann@example.org", "VPN down")


@pytest.mark.parametrize("headers,address,via", [
    ("Sender: Desk <desk@example.org>\r\nReply-To: r@example.org\r\n", "desk@example.org",
     "Sender"),
    ("Return-Path: <ann.lee@example.org>\r\nReply-To: r@example.org\r\n",
     "ann.lee@example.org", "Return-Path"),
])
def test_no_address_in_from_then_sender_or_return_path(gw, departments, headers, address, via):
    result = ingest(gw, mail(b"hi\r\n", sender="Undisclosed", headers=headers), PIPE)
    assert result.outcome == "new"
    assert stored(gw, result).author_email == address
    assert any(f"comes from {via}" in line for line in result.trace)
    assert events(gw, result.ticket, "sender_unverified") == []


def test_reply_to_only_marks_the_sender_not_verified(gw, departments):
    result = ingest(gw, mail(b"hi\r\n", sender="Web form",
                             headers="Reply-To: Visitor <visitor@example.org>\r\n"), PIPE)
    assert result.outcome == "new"
    message = stored(gw, result)
    assert (message.author_email, message.author_name) == ("visitor@example.org", "Web form")
    [event] = events(gw, result.ticket, "sender_unverified")
    assert "sender not verified" in event.detail and "Reply-To" in event.detail
    assert any("sender not verified" in line for line in result.trace)


def test_quarantined_odd_sender_is_ingested_on_retry(gw, departments):
    """A message kept as "no usable From" (before senders.py) now opens its ticket."""
    from mailgate.pipeline import quarantine

    raw = mail(b"Please help\r\n", sender="Test test@example.com")
    kept = quarantine.keep(gw, raw, sha256_hex(raw), PIPE, "unusable", "no usable From address")
    result = retry_quarantined(gw, kept.quarantine_id)
    assert result.outcome == "new" and stored(gw, result).author_email == "test@example.com"
    with gw.db.unit_of_work() as session:
        assert session.get(Quarantine, kept.quarantine_id).resolution == \
            f"retried: new #{result.ticket}"


def test_no_address_anywhere_is_still_quarantined(gw, departments):
    result = ingest(gw, mail(b"hi\r\n", sender="Nobody"), PIPE)
    assert (result.outcome, result.reason) == ("quarantined", "no usable From address")


# -- attachments people send every day -----------------------------------------------

def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("logs/app.log", "line\n" * 100)
    return buffer.getvalue()


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(64)
MOV = b"\x00\x00\x00\x14ftypqt  \x20\x05\x03\x00qt  " + bytes(64)
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + bytes(64)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(64)
ICS = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Call\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

EVERYDAY = [
    ("report.csv", "text/csv", b"id,amount\n1,20\n", "text/plain"),
    ("data.json", "application/json", b'{"order": 4711}', "text/plain"),
    ("order.xml", "text/xml", b'<?xml version="1.0"?><order id="4711"/>', "application/xml"),
    ("photo.jpg", "image/pjpeg", JPEG, "image/jpeg"),
    ("shot.png", "image/x-png", PNG, "image/png"),
    ("IMG_0001.HEIC", "image/heic", HEIC, "image/heic"),
    ("sticker.webp", "image/webp", WEBP, "image/webp"),
    ("logs.zip", "application/x-zip-compressed", _zip(), "application/zip"),
    ("invite.ics", "text/calendar", ICS, "text/calendar"),
    ("screen.mp4", "video/mp4", MP4, "video/mp4"),
    ("screen.mov", "video/quicktime", MOV, "video/quicktime"),
    ("screen.webm", "video/webm", WEBM, "video/webm"),
]


@pytest.mark.parametrize("name,declared,data,sniffed", EVERYDAY)
def test_everyday_attachments_are_accepted_by_default(name, declared, data, sniffed):
    assert examine(data, declared).type == sniffed
    att = ParsedAttachment(name, declared, sniffed, data, "0" * 64)
    assert refusal(att, LimitSettings()) is None


@pytest.mark.parametrize("name,declared,data,why", [
    ("page.xml", "text/xml",
     b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="#"?><x/>', "xhtml"),
    ("ns.xml", "application/xml", b'<?xml version="1.0"?><html '
     b'xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></html>', "xhtml"),
    ("tool.rar", "application/vnd.rar", b"Rar!\x1a\x07\x00", "application/vnd.rar"),
    ("saved.mht", "message/rfc822", b"MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\nx",
     "files named .mht"),
])
def test_xml_that_runs_and_other_risky_files_stay_refused(name, declared, data, why):
    att = ParsedAttachment(name, declared, examine(data, declared).type, data, "0" * 64)
    assert why in refusal(att, LimitSettings())


def test_everyday_attachments_reach_the_ticket(gw, departments):
    parts = [part("text/plain; charset=utf-8", b"Files attached.")]
    parts += [part(f'{declared}; name="{name}"', data,
                   f'Content-Disposition: attachment; filename="{name}"\r\n', base64_body=True)
              for name, declared, data, _ in EVERYDAY]
    result = ingest(gw, multipart(parts), PIPE)
    message = stored(gw, result)
    assert sorted(a.filename for a in message.attachments) == sorted(n for n, *_ in EVERYDAY)
    assert not any(line.startswith("attachment refused") for line in result.trace)


def test_unnamed_parts_get_stable_names_and_csv_text_is_not_lost(gw, departments):
    raw = multipart([part("text/csv", b"id,amount\r\n1,20\r\n"),
                     part("image/png", PNG, base64_body=True)])
    message = stored(gw, ingest(gw, raw, PIPE))
    assert [a.filename for a in message.attachments] == ["attachment-1.csv", "attachment-2.png"]
    assert message.text_body.startswith("id,amount")  # the only text there is


def test_forwarded_message_is_kept_as_eml_and_its_text_shown(gw, departments):
    inner = (b"From: Bob Stone <bob@example.net>\r\nTo: ann@example.org\r\n"
             b"Subject: =?utf-8?q?Rechnung_f=C3=BCr_M=C3=A4rz?=\r\n"
             b"Date: Tue, 3 Nov 2026 09:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n"
             b"\r\nThe invoice is attached.\r\n")
    raw = multipart([part("text/plain; charset=utf-8", b"See the mail below."),
                     part("message/rfc822", inner)])
    result = ingest(gw, raw, PIPE)
    message = stored(gw, result)
    assert "Content-Type:" not in message.text_body
    assert "Subject: Rechnung für März" in message.text_body
    assert "From: Bob Stone <bob@example.net>" in message.text_body
    assert "The invoice is attached." in message.text_body
    [eml] = message.attachments
    assert (eml.filename, eml.content_type) == ("attachment-1.eml", "message/rfc822")
    assert gw.storage.attachments.get(eml.sha256).endswith(b"The invoice is attached.\r\n") or \
        b"The invoice is attached." in gw.storage.attachments.get(eml.sha256)


def test_refused_attachment_is_shown_to_the_agent(gw, departments, capsys):
    exe = b"MZ\x90\x00" + bytes(200)
    raw = multipart([part("text/plain", b"My receipt."),
                     part('application/pdf; name="receipt.pdf"', exe,
                          'Content-Disposition: attachment; filename="receipt.pdf"\r\n',
                          base64_body=True)])
    result = ingest(gw, raw, PIPE)
    from mailgate.outbound.sender import OutboxSender

    OutboxSender(gw).run_once()
    agent_mail = [p.read_text() for p in (gw.settings.storage.dir / "outbox").glob("*.eml")
                  if "X-Envelope-To: <agent@example.com>" in p.read_text()]
    assert len(agent_mail) == 1
    import email as stdlib_email

    body = stdlib_email.message_from_string(agent_mail[0]).get_payload(0).get_payload(
        decode=True).decode()
    assert "Not accepted, left out of the ticket:" in body
    assert "receipt.pdf (204 B; declared application/pdf, content " \
           "application/x-msdownload)" in body
    [event] = events(gw, result.ticket, "attachment_refused")
    assert event.old_value == "declared application/pdf, content application/x-msdownload, " \
                              "204 bytes"
    config = gw.settings.storage.dir.parent / "show.toml"
    config.write_text(f'[database]\nurl = "{gw.settings.database_url}"\n[storage]\n'
                      f'dir = "{gw.settings.storage.dir}"\n')
    capsys.readouterr()
    assert main(["--config", str(config), "ticket", "show", result.ticket]) == 0
    shown = capsys.readouterr().out
    assert "  [refused] receipt.pdf (declared application/pdf, content " \
           "application/x-msdownload, 204 bytes): content is application/x-msdownload" in shown


# -- measure it ------------------------------------------------------------------------

def test_fidelity_report_runs_on_a_folder(tmp_path):
    for name in ("ruby-mail__japanese_iso_2022.eml", "mail-mime-parser__m1014.txt"):
        (tmp_path / name).write_bytes((CORPUS / name).read_bytes())
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fidelity.py"),
                          str(tmp_path), "--json"], capture_output=True, text=True, cwd=ROOT,
                         timeout=300, check=True).stdout
    totals = json.loads(out)["totals"]
    assert totals["messages"] == 2 and totals["tracebacks"] == 0
    assert totals["fffd_chars"] == 0 and totals["raw_words"] == 0
    assert totals["attachments_found"] == 3


def test_many_unlabelled_parts_stay_within_the_detector_budget():
    """Every part 8-bit text with no charset: the detector runs a few times per message,
    then Windows-1252 reads the rest (bounded, and still no U+FFFD)."""
    import time

    body = ("Здравствуйте, у меня не работает принтер. " * 400).encode("koi8_r")
    raw = multipart([part("text/plain", body) for _ in range(200)])
    started = time.process_time()
    parsed = parse_message(raw)
    assert time.process_time() - started < 5
    assert parsed.text.count("Здравствуйте") >= 400 and "\ufffd" not in parsed.text


@pytest.mark.parametrize("content_type", ["multipart/alternative",
                                          'multipart/alternative; boundary="declared"'])
def test_multipart_whose_body_uses_another_boundary_is_read_by_it(gw, departments,
                                                                  content_type):
    body = (b"--used\r\nContent-Type: text/plain\r\n\r\nThe plain words.\r\n"
            b"--used\r\nContent-Type: text/html\r\n\r\n<p>The plain words.</p>\r\n--used--\r\n")
    message = stored(gw, ingest(gw, mail(body, content_type=content_type), PIPE))
    assert message.text_body.strip() == "The plain words."
    assert "Content-Type" not in message.text_body and "<p>" in message.html_body


def test_nul_never_reaches_the_database(gw, departments):
    raw = mail(b"before\x00after\r\n", content_type="text/plain; charset=utf-8")
    assert stored(gw, ingest(gw, raw, PIPE)).text_body.strip() == "beforeafter"
