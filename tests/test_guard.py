"""The guard as a table: headers in, category out (no database)."""
import pytest

from mailgate.mail.guard import Category, judge
from mailgate.mail.parse import parse_message
from tests.mails import make_mail

OWN = {"support@example.com"}


def verdict(raw=None, envelope_from=None, sender="Customer <c@x.org>", **headers):
    msg = parse_message(raw or make_mail(sender=sender, **headers))
    return judge(msg, envelope_from, OWN, "mg-test", max_received=100)


@pytest.mark.parametrize("headers,category,opens,answers", [
    ({}, Category.NORMAL, True, True),
    ({"auto_submitted": "no"}, Category.NORMAL, True, True),
    ({"auto_submitted": "auto-replied"}, Category.AUTO_REPLY, False, False),
    ({"auto_submitted": "auto-generated; owner-email=x@y"}, Category.AUTOMATIC, True, False),
    ({"x_autoreply": "yes"}, Category.AUTO_REPLY, False, False),
    ({"x_autorespond": "vacation"}, Category.AUTO_REPLY, False, False),
    ({"precedence": "bulk"}, Category.LIST, True, False),
    ({"precedence": "junk"}, Category.LIST, True, False),
    ({"precedence": "list"}, Category.LIST, True, False),
    ({"list_id": "<x.lists.example>"}, Category.LIST, True, False),
    ({"list_unsubscribe": "<mailto:u@x>"}, Category.LIST, True, False),
    ({"x_auto_response_suppress": "All"}, Category.NORMAL, True, False),
    ({"sender": "MAILER-DAEMON@mx.example"}, Category.BOUNCE, False, False),
    ({"sender": "postmaster@mx.example"}, Category.BOUNCE, False, False),
    ({"sender": "users-request@lists.example"}, Category.AUTO_REPLY, False, False),
    ({"sender": "owner-users@lists.example"}, Category.AUTO_REPLY, False, False),
    ({"sender": "LISTSERV@lists.example"}, Category.AUTO_REPLY, False, False),
    ({"sender": "majordomo@lists.example"}, Category.AUTO_REPLY, False, False),
    ({"sender": "noreply@shop.example"}, Category.NORMAL, True, False),
    ({"sender": "support@example.com"}, Category.LOOP, False, False),
    ({"x_mailgate_loop": "mg-test"}, Category.LOOP, False, False),
    ({"x_mailgate_loop": "another-installation"}, Category.NORMAL, True, True),
])
def test_categories(headers, category, opens, answers):
    v = verdict(**headers)
    assert (v.category, v.may_open_ticket, v.may_autorespond) == (category, opens, answers)
    assert type(v.category) is Category


def test_null_reverse_path_is_automatic():
    v = verdict(envelope_from="")
    assert v.category is Category.AUTO_REPLY and not v.may_autorespond


def test_too_many_received_headers_is_a_loop():
    raw = b"".join(b"Received: from h%d\r\n" % i for i in range(101)) + make_mail()
    assert verdict(raw).category is Category.LOOP
    raw = b"".join(b"Received: from h%d\r\n" % i for i in range(100)) + make_mail()
    assert verdict(raw).category is Category.NORMAL


def test_read_receipt_and_dsn():
    mdn = (b"From: c@x.org\r\nTo: support@example.com\r\nSubject: Read: x\r\n"
           b"Content-Type: multipart/report; report-type=disposition-notification; "
           b"boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nread\r\n"
           b"--B\r\nContent-Type: message/disposition-notification\r\n\r\n"
           b"Original-Message-ID: <ack@x>\r\nDisposition: manual-action/MDN-sent-manually; "
           b"displayed\r\n--B--\r\n")
    v = verdict(mdn)
    assert v.category is Category.MDN and not v.may_open_ticket
    assert parse_message(mdn).mdn_original_id == "<ack@x>"


@pytest.mark.parametrize("name", [
    "enmime__simple_dsn.raw", "enmime__delayed_dsn.raw", "enmime__multi_recipient_dsn.raw",
    "flanker__mailbox-full.eml", "flanker__no-mx.eml", "flanker__office365.eml",
    "nodemailer-mailparser__delivery-status.eml", "ruby-mail__multi_address_bounce1.eml",
])
def test_real_world_dsns_are_bounces(name):
    from tests.conftest import CORPUS

    raw = (CORPUS / name).read_bytes()
    assert verdict(raw).category is Category.BOUNCE, name
    report = parse_message(raw).report
    assert report is not None and report.recipients, name


# -- issue 13: notifications are tickets nobody answers; replies are not -----------------

@pytest.mark.parametrize("headers,envelope_from,category", [
    ({"auto_submitted": "auto-generated"}, None, Category.AUTOMATIC),
    ({"auto_submitted": "Auto-Generated (alert)"}, None, Category.AUTOMATIC),
    ({"auto_submitted": "auto-notified; owner-email=\"sieve@x\""}, None, Category.AUTOMATIC),
    ({"auto_submitted": "auto-generated"}, "", Category.AUTOMATIC),  # says what it is
    ({"auto_submitted": "auto-generated", "list_id": "<ops.x>"}, None, Category.AUTOMATIC),
    ({"auto_submitted": "auto-generated", "x_autoreply": "yes"}, None, Category.AUTO_REPLY),
    ({"auto_submitted": "auto-generated", "sender": "owner-ops@lists.example"}, None,
     Category.AUTO_REPLY),
    ({"auto_submitted": "auto-forwarded"}, None, Category.AUTO_REPLY),  # unknown: a reply
    ({"auto_submitted": ""}, "", Category.AUTO_REPLY),
])
def test_notifications_and_replies(headers, envelope_from, category):
    v = verdict(envelope_from=envelope_from, **headers)
    assert v.category is category
    assert v.automatic and not v.may_autorespond
    assert v.may_open_ticket == (category is Category.AUTOMATIC)


@pytest.mark.parametrize("headers", [{}, {"precedence": "bulk"}, {"auto_submitted": "no"}])
def test_people_write_normal_and_list_mail(headers):
    assert not verdict(**headers).automatic
