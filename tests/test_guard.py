"""The guard as a table: headers in, category out (no database)."""
import pytest

from mailgate.config import SpamSettings
from mailgate.mail.guard import Category, judge, spam_reasons
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


# -- issue 13: the verdict of our own spam filter ------------------------------------------

@pytest.mark.parametrize("header,threshold,spam", [
    (("X-Spam-Flag", "YES"), 0.0, True),
    (("X-Spam-Flag", "NO"), 0.0, False),
    (("X-Spam-Status", "Yes, score=5.3 required=5.0\r\n\ttests=BAYES_99"), 0.0, True),
    (("X-Spam-Status", "No, score=5.3 required=8.0"), 0.0, False),
    (("X-Spam-Status", "No, score=5.3 required=8.0"), 5.0, True),
    (("X-Spam-Status", "No, score=-1.1 required=5.0"), 5.0, False),
    (("X-Spam", "Yes"), 0.0, True),
    (("X-Spam", "undefined"), 0.0, False),  # seen in real mail (mail-parser__mail_test_6)
    (("X-Spamd-Result", "default: True [15.60 / 15.00]; DMARC_POLICY_REJECT(2.00)"), 0.0, True),
    (("X-Spamd-Result", "default: False [6.60 / 15.00]"), 0.0, False),
    (("X-Spamd-Result", "default: False [6.60 / 15.00]"), 6.0, True),
    (("X-Spamd-Result", "garbage"), 6.0, False),
    (("X-Spam-Level", "**********"), 1.0, False),  # not a verdict
])
def test_spam_headers(header, threshold, spam):
    settings = SpamSettings(threshold=threshold)
    assert bool(spam_reasons((header,), settings)) is spam
    v = judge(parse_message(make_mail()), None, OWN, "mg-test", ours=(header,), spam=settings)
    assert (v.category is Category.SPAM) is spam
    assert judge(parse_message(make_mail()), None, OWN, "mg-test", ours=(header,),
                 spam=None).category is Category.NORMAL  # released: not read at all


def test_spam_is_read_only_from_the_headers_our_boundary_wrote():
    """The sender's copy in the message is never looked at: only `ours` is."""
    raw = make_mail(x_spam_flag="YES", x_spam_status="Yes, score=99")
    assert judge(parse_message(raw), None, OWN, "mg-test", ours=(),
                 spam=SpamSettings()).category is Category.NORMAL
