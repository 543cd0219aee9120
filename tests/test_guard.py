"""The guard as a table: headers in, category out (no database)."""
import pytest

from mailgate.mail.guard import judge
from mailgate.mail.parse import parse_message
from tests.mails import make_mail

OWN = {"support@example.com"}


def verdict(raw=None, envelope_from=None, sender="Customer <c@x.org>", **headers):
    msg = parse_message(raw or make_mail(sender=sender, **headers))
    return judge(msg, envelope_from, OWN, "mg-test", max_received=100)


@pytest.mark.parametrize("headers,category,opens,answers", [
    ({}, "normal", True, True),
    ({"auto_submitted": "no"}, "normal", True, True),
    ({"auto_submitted": "auto-replied"}, "auto_reply", False, False),
    ({"auto_submitted": "auto-generated; owner-email=x@y"}, "auto_reply", False, False),
    ({"x_autoreply": "yes"}, "auto_reply", False, False),
    ({"x_autorespond": "vacation"}, "auto_reply", False, False),
    ({"precedence": "bulk"}, "list", True, False),
    ({"precedence": "junk"}, "list", True, False),
    ({"precedence": "list"}, "list", True, False),
    ({"list_id": "<x.lists.example>"}, "list", True, False),
    ({"list_unsubscribe": "<mailto:u@x>"}, "list", True, False),
    ({"x_auto_response_suppress": "All"}, "normal", True, False),
    ({"sender": "MAILER-DAEMON@mx.example"}, "bounce", False, False),
    ({"sender": "postmaster@mx.example"}, "bounce", False, False),
    ({"sender": "users-request@lists.example"}, "auto_reply", False, False),
    ({"sender": "owner-users@lists.example"}, "auto_reply", False, False),
    ({"sender": "LISTSERV@lists.example"}, "auto_reply", False, False),
    ({"sender": "majordomo@lists.example"}, "auto_reply", False, False),
    ({"sender": "noreply@shop.example"}, "normal", True, False),
    ({"sender": "support@example.com"}, "loop", False, False),
    ({"x_mailgate_loop": "mg-test"}, "loop", False, False),
    ({"x_mailgate_loop": "another-installation"}, "normal", True, True),
])
def test_categories(headers, category, opens, answers):
    v = verdict(**headers)
    assert (v.category, v.may_open_ticket, v.may_autorespond) == (category, opens, answers)


def test_null_reverse_path_is_automatic():
    v = verdict(envelope_from="")
    assert v.category == "auto_reply" and not v.may_autorespond


def test_too_many_received_headers_is_a_loop():
    raw = b"".join(b"Received: from h%d\r\n" % i for i in range(101)) + make_mail()
    assert verdict(raw).category == "loop"
    raw = b"".join(b"Received: from h%d\r\n" % i for i in range(100)) + make_mail()
    assert verdict(raw).category == "normal"


def test_read_receipt_and_dsn():
    mdn = (b"From: c@x.org\r\nTo: support@example.com\r\nSubject: Read: x\r\n"
           b"Content-Type: multipart/report; report-type=disposition-notification; "
           b"boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nread\r\n"
           b"--B\r\nContent-Type: message/disposition-notification\r\n\r\n"
           b"Original-Message-ID: <ack@x>\r\nDisposition: manual-action/MDN-sent-manually; "
           b"displayed\r\n--B--\r\n")
    v = verdict(mdn)
    assert v.category == "mdn" and not v.may_open_ticket
    assert parse_message(mdn).mdn_original_id == "<ack@x>"


@pytest.mark.parametrize("name", [
    "enmime__simple_dsn.raw", "enmime__delayed_dsn.raw", "enmime__multi_recipient_dsn.raw",
    "flanker__mailbox-full.eml", "flanker__no-mx.eml", "flanker__office365.eml",
    "nodemailer-mailparser__delivery-status.eml", "ruby-mail__multi_address_bounce1.eml",
])
def test_real_world_dsns_are_bounces(name):
    from tests.conftest import CORPUS

    raw = (CORPUS / name).read_bytes()
    assert verdict(raw).category == "bounce", name
    report = parse_message(raw).report
    assert report is not None and report.recipients, name
