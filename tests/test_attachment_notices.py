"""What a customer is told about their files (issue 13, leftovers): a signed message's
signature is no refused attachment, and the rejection notice names the types that
`[limits] allowed_types` accepts, in each language.

Signed mail is real mail from other projects' fixtures (../shared/corpus: enmime and
the `mail` gem, MIT; django-helpdesk, BSD-3-Clause; mail-mime-parser, BSD-2-Clause)
or written as Thunderbird writes S/MIME, and goes through `ingest` as the MTA pipe
hands it over.
"""
from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from mailgate import tickets as ops
from mailgate.config import DEFAULT_ALLOWED_TYPES, LimitSettings
from mailgate.mail.attachments import accepted_formats
from mailgate.models import Outbox
from mailgate.outbound.render import Templates
from mailgate.outbound.samples import SAMPLES
from mailgate.pipeline import Envelope, ingest
from tests.conftest import CORPUS

PIPE = Envelope("pipe", rcpt_to=("support@example.com",))
EXE = base64.b64encode(b"MZ\x90\x00\x03" + b"\x00" * 120).decode()
SIGNATURE = base64.b64encode(b"\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02" * 8).decode()


def signed(signature_type: str = "application/pkcs7-signature", exe: bool = True) -> bytes:
    """An S/MIME signed message as Thunderbird sends it, with a file the customer attached."""
    attached = ("--mix\r\nContent-Type: application/octet-stream; name=\"tool.exe\"\r\n"
                "Content-Disposition: attachment; filename=\"tool.exe\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n{EXE}\r\n") if exe else ""
    return ("From: Customer <customer@example.org>\r\nTo: support@example.com\r\n"
            "Subject: Signed, with the tool\r\nMessage-ID: <signed-1@client.example.org>\r\n"
            "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
            'micalg=sha-256; boundary="sig"\r\n\r\n'
            "This is a cryptographically signed message in MIME format.\r\n\r\n"
            '--sig\r\nContent-Type: multipart/mixed; boundary="mix"\r\n\r\n'
            "--mix\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nSee the tool attached.\r\n"
            f"{attached}--mix--\r\n\r\n"
            f'--sig\r\nContent-Type: {signature_type}; name="smime.p7s"\r\n'
            'Content-Disposition: attachment; filename="smime.p7s"\r\n'
            "Content-Transfer-Encoding: base64\r\nContent-Description: S/MIME Cryptographic "
            f"Signature\r\n\r\n{SIGNATURE}\r\n--sig--\r\n").encode()


def stored(gw, number) -> dict:
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        return {"files": [a.filename for m in t.messages for a in m.attachments],
                "refused": [e.new_value for e in t.events if e.kind == "attachment_refused"],
                "outbox": [row.kind for row in session.scalars(
                    select(Outbox).where(Outbox.ticket_id == t.id))]}


@pytest.mark.parametrize("name,files", [
    ("enmime__mime-signed.raw", []),  # OpenPGP: signature.asc
    ("django-helpdesk__pgp.eml", []),
    ("ruby-mail__raw_email2.eml", []),  # S/MIME: smime.p7s
    ("mail-mime-parser__m4002.txt", ["blueball.png", "greenball.png", "redball.png"]),
])
def test_a_signature_is_not_a_refused_attachment(gw, departments, name, files):
    result = ingest(gw, (CORPUS / name).read_bytes(), PIPE)
    assert result.outcome == "new", result.trace
    assert stored(gw, result.ticket) == {"files": files, "refused": [],
                                         "outbox": ["ack", "new_ticket"]}
    assert not any("attachment refused" in line for line in result.trace)


@pytest.mark.parametrize("signature_type", ["application/pkcs7-signature",
                                            "application/x-pkcs7-signature",
                                            "application/octet-stream"])
def test_the_notice_about_a_signed_message_names_only_the_refused_file(gw, departments,
                                                                       signature_type):
    result = ingest(gw, signed(signature_type), PIPE)
    assert stored(gw, result.ticket) == {"files": [], "refused": ["tool.exe"],
                                         "outbox": ["ack", "rejection", "new_ticket"]}
    with gw.db.unit_of_work() as session:
        notice = session.scalar(select(Outbox).where(Outbox.kind == "rejection"))
        assert [f["filename"] for f in notice.context["refused"]] == ["tool.exe"]
        # the notice names what `[limits] allowed_types` accepts
        assert notice.context["accepted"] == accepted_formats(gw.settings.limits)
    assert ingest(gw, signed(signature_type, exe=False).replace(b"signed-1", b"signed-2"),
                  PIPE).outcome == "new"
    assert [row for row in _kinds(gw) if row == "rejection"] == ["rejection"]


def _kinds(gw) -> list[str]:
    with gw.db.unit_of_work() as session:
        return list(session.scalars(select(Outbox.kind)))


# -- the notice names what the settings allow ----------------------------------------------

def test_accepted_formats_follow_the_allowed_types():
    assert accepted_formats(LimitSettings()) == [
        {"kind": "documents", "formats": ["PDF", "Word", "Excel", "PowerPoint", "OpenDocument"]},
        {"kind": "images", "formats": ["JPEG", "PNG", "GIF", "WebP", "HEIC"]},
        {"kind": "text", "formats": ["TXT", "CSV", "JSON", "XML", "ICS"]},
        {"kind": "mail", "formats": ["EML"]},
        {"kind": "archives", "formats": ["ZIP"]},
        {"kind": "video", "formats": ["MP4", "MOV", "WebM"]}]
    assert set(DEFAULT_ALLOWED_TYPES) >= {"image/pjpeg", "image/jpg", "image/jpeg"}  # one JPEG
    narrow = LimitSettings(allowed_types=("application/pdf", "image/png",
                                          "application/x-7z-compressed", "model/stl"))
    assert accepted_formats(narrow) == [
        {"kind": "documents", "formats": ["PDF"]}, {"kind": "images", "formats": ["PNG"]},
        {"kind": "archives", "formats": ["7z"]}, {"kind": "other", "formats": ["model/stl"]}]


NARROW = LimitSettings(allowed_types=("application/pdf", "image/png", "model/stl"))


@pytest.mark.parametrize("locale,expected", [
    ("en", "We accept documents (PDF), images (PNG) and other files (model/stl), of up to "),
    ("fa", "اسناد (PDF)، تصویر (PNG) و قالب‌های دیگر (model/stl)."),
    ("ka", "ვიღებთ დოკუმენტებს (PDF), სურათებს (PNG) და სხვა ფაილებს (model/stl), "),
])
def test_the_rejection_notice_lists_what_the_settings_allow(settings, locale, expected):
    context = {**SAMPLES["rejection"], "accepted": accepted_formats(NARROW)}
    rendered = Templates(settings).render("rejection", locale, context)
    for text in (" ".join(rendered.text.split()), " ".join(rendered.html.split())):
        assert expected in text
        for old in ("JPEG", "GIF", "Word", "PowerPoint"):  # what the old text promised
            assert old not in text


@pytest.mark.parametrize("locale", ["en", "fa", "ka"])
def test_without_the_list_the_notice_promises_no_format(settings, locale):
    without = {key: value for key, value in SAMPLES["rejection"].items() if key != "accepted"}
    rendered = Templates(settings).render("rejection", locale, without)
    for old in ("JPEG", "GIF", "Word", "PowerPoint", "OpenDocument"):
        assert old not in rendered.text and old not in rendered.html
    assert "10.0 MB" in rendered.text or "۱۰.۰ MB" in rendered.text
