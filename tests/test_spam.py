"""Spam (issue 13): mail our own spam filter flagged is held, never a ticket, never
answered; a sender's own spam headers count for nothing.

The messages are real spam (a 419 scam from the `mail` gem's fixtures, MIT, see
../shared/corpus/MANIFEST.tsv) or written as mail clients write them, delivered as
our MX would hand them over: its filter's headers above the `Received:` line it
added when it took the message from outside. They come in through `ingest` (the
MTA pipe), over SMTP to the real daemon, and through the `mailgate` command.
"""
from __future__ import annotations

import json
import smtplib

import pytest
from sqlalchemy import func, select

from mailgate.config import ConfigError, load_settings
from mailgate.gateway import Gateway
from mailgate.models import Outbox, Quarantine, Ticket
from mailgate.pipeline import Envelope, ingest, retry_quarantined
from tests.conftest import CORPUS
from tests.mails import make_mail
from tests.servers.daemon import DaemonThread
from tests.test_cli import mailgate  # noqa: F401 (fixture)

PIPE = Envelope("pipe", rcpt_to=("support@example.com",))
MX = "mx.example.com"
OUR_RECEIVED = ("Received: from mail.sender.example (mail.sender.example [198.51.100.23])\r\n"
                f"\tby {MX} (Postfix) with ESMTPS id 4Fq2; Sun, 22 Nov 2026 10:00:01 +0000\r\n")
SCAM = "ruby-mail__empty_group_lists.eml"  # a 419 scam; its own X-Spam-Status: Yes is at the bottom


def delivered(raw: bytes, *ours: str) -> bytes:
    """`raw` as our MX delivers it: the filter's headers `ours`, then the MX's Received:."""
    return "".join(f"{header}\r\n" for header in ours).encode() + OUR_RECEIVED.encode() + raw


def scam() -> bytes:
    return (CORPUS / SCAM).read_bytes()


def counts(gw) -> dict:
    with gw.db.unit_of_work() as session:
        return {"tickets": session.scalar(select(func.count()).select_from(Ticket)),
                "outbox": sorted(session.scalars(select(Outbox.kind))),
                "held": [(q.error_class, q.resolved_at is None)
                         for q in session.scalars(select(Quarantine).order_by(Quarantine.id))]}


@pytest.fixture
def sgw(settings, parser_pool, departments):
    """A gateway behind our MX: its Received: lines are by mx.example.com."""
    gateway = Gateway(settings.replace(security={"internal_hosts": (MX,)}), parser=parser_pool)
    yield gateway
    gateway.close()


FILTER_SAYS_SPAM = [
    ("X-Spam-Flag: YES", "X-Spam-Status: Yes, score=14.2 required=5.0 tests=ADVANCE_FEE_4_NEW,"
                         "FREEMAIL_FORGED_REPLYTO autolearn=no"),  # SpamAssassin
    ("X-Spam-Status: Yes, score=6.1 required=5.0",),
    ("X-Spamd-Result: default: True [16.20 / 15.00]; R_SPF_FAIL(1.00)[-all]; BAYES_SPAM(5.10)",
     "X-Spam: Yes"),  # rspamd
    ("X-Spam: yes",),
]


@pytest.mark.parametrize("headers", FILTER_SAYS_SPAM, ids=["spamassassin", "status", "rspamd",
                                                           "x-spam"])
def test_what_our_filter_flags_is_held_as_spam_and_never_answered(sgw, headers):
    result = ingest(sgw, delivered(scam(), *headers), PIPE)
    assert result.outcome == "quarantined" and result.ticket is None
    assert result.reason.startswith("flagged as spam by our filter: " + headers[0].split(":")[0])
    assert counts(sgw) == {"tickets": 0, "outbox": [], "held": [("spam", True)]}


def test_a_release_makes_the_ticket_and_the_same_mail_again_changes_nothing(sgw):
    raw = delivered(make_mail(subject="Quote for 40 printers"), "X-Spam-Flag: YES")
    held = ingest(sgw, raw, PIPE)
    assert held.outcome == "quarantined"
    released = retry_quarantined(sgw, held.quarantine_id)
    assert released.outcome == "new"
    assert "spam: released by an admin, the spam filter's verdict not read" in released.trace
    assert counts(sgw) == {"tickets": 1, "outbox": ["ack", "new_ticket"], "held": [("spam", False)]}
    assert ingest(sgw, raw, PIPE).outcome == "duplicate"  # redelivered by the MTA
    # the release was for that message: another one flagged the same way is held
    assert ingest(sgw, delivered(make_mail(), "X-Spam-Flag: YES"), PIPE).outcome == "quarantined"


def test_the_senders_own_spam_headers_count_for_nothing(sgw):
    # the scam carries `X-Spam-Status: Yes` from someone else's filter, below the
    # Received: lines of the hosts it passed before ours: not our verdict
    result = ingest(sgw, delivered(scam(), "X-Spam-Status: No, score=2.1 required=5.0"), PIPE)
    assert result.outcome == "new"
    # a spammer's "NO" under their own relay's Received: changes nothing either
    forged = (b"Received: from [203.0.113.9] by smtp.spammer.example; Sun, 22 Nov 2026 09:59\r\n"
              b"X-Spam-Flag: NO\r\nX-Spam-Status: No, score=-100.0\r\nX-Spam: no\r\n"
              + make_mail(sender="Prize Office <prize@lottery.example>"))
    assert ingest(sgw, delivered(forged, "X-Spam-Flag: YES"), PIPE).outcome == "quarantined"
    # nor does it help a spammer to write "NO" next to our filter's "YES"
    assert ingest(sgw, delivered(make_mail(), "X-Spam-Flag: NO", "X-Spam-Flag: YES"),
                  PIPE).outcome == "quarantined"


def test_without_a_known_boundary_no_spam_header_counts(settings, parser_pool, departments):
    gw = Gateway(settings, parser=parser_pool)  # no [security] internal_hosts
    try:
        assert ingest(gw, delivered(make_mail(), "X-Spam-Flag: YES"), PIPE).outcome == "new"
    finally:
        gw.close()


@pytest.mark.parametrize("spam,header,outcome", [
    ({}, "X-Spamd-Result: default: False [7.50 / 15.00]; BAYES_SPAM(5.1)", "new"),
    ({"threshold": 6.0}, "X-Spamd-Result: default: False [7.50 / 15.00]; BAYES_SPAM(5.1)",
     "quarantined"),
    ({"threshold": 8.0}, "X-Spamd-Result: default: False [7.50 / 15.00]", "new"),
    ({"threshold": 4.0}, "X-Spam-Status: No, score=4.5 required=5.0 tests=HTML_MESSAGE", "quarantined"),
    ({"score_header": "X-Rspamd-Score", "threshold": 6.0}, "X-Rspamd-Score: 8.12", "quarantined"),
    ({"score_header": "X-Rspamd-Score", "threshold": 6.0}, "X-Rspamd-Score: -0.5", "new"),
    ({"score_header": "X-MS-Exchange-Organization-SCL", "threshold": 5.0},
     "X-MS-Exchange-Organization-SCL: 9", "quarantined"),
    ({"hold": False}, "X-Spam-Flag: YES", "new"),
], ids=["rspamd-own-verdict", "rspamd-threshold", "rspamd-under", "status-score",
        "score-header", "score-header-under", "exchange-scl", "hold-off"])
def test_a_configured_threshold_and_score_header(sgw, spam, header, outcome):
    sgw.settings = sgw.settings.replace(spam=spam)
    assert ingest(sgw, delivered(make_mail(), header), PIPE).outcome == outcome


# -- over SMTP: only mail from our own MTA carries its filter's verdict ------------------

@pytest.fixture
def smtp_daemon(settings, parser_pool, departments, request):
    configured = settings.replace(smtp={"listen": ("127.0.0.1:0",), "trusted_relays": request.param},
                                  http={"listen": "127.0.0.1:0"}, daemon={"delivery_workers": 1},
                                  security={"internal_hosts": (MX,)})
    gateway = Gateway(configured, parser=parser_pool)
    with DaemonThread(configured, gateway) as daemon:
        yield daemon, gateway
    gateway.close()


@pytest.mark.parametrize("smtp_daemon,held", [((), False), (("127.0.0.0/8",), True)],
                         indirect=["smtp_daemon"], ids=["untrusted-client", "trusted-relay"])
def test_over_smtp_only_a_trusted_relay_brings_a_verdict(smtp_daemon, held):
    daemon, gw = smtp_daemon
    with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
        client.sendmail("ceciledwards@sbcglobal.net", ["support@example.com"],
                        delivered(scam(), "X-Spam-Flag: YES"))
    state = counts(gw)
    assert state["held"] == ([("spam", True)] if held else [])
    assert state["tickets"] == (0 if held else 1)


# -- the admin's commands -------------------------------------------------------------------

def test_quarantine_list_show_retry_and_discard_work_on_spam(mailgate):  # noqa: F811
    with open(mailgate.config, "a") as config:
        config.write(f'[security]\ninternal_hosts = ["{MX}"]\n')
    mailgate("department", "add", "support", "--name", "Support")
    mailgate("address", "add", "support@example.com", "--department", "support")
    for i, raw in enumerate([delivered(scam(), "X-Spam-Flag: YES"),
                             delivered(make_mail(subject="Order 7781"), "X-Spam-Flag: YES")]):
        (mailgate.tmp_path / f"m{i}.eml").write_bytes(raw)
        out = json.loads(mailgate("ingest", str(mailgate.tmp_path / f"m{i}.eml"), "--recipient",
                                  "support@example.com", "--json").text)
        assert out[0]["outcome"] == "quarantined"
    scam_entry, order_entry = json.loads(mailgate("quarantine", "list", "--json").text)
    assert (scam_entry["error_class"], order_entry["error_class"]) == ("spam", "spam")
    assert "X-Spam-Flag: YES" in scam_entry["error"]
    assert "Subject: Western Union Swift Money Transfer" in mailgate(
        "quarantine", "show", str(scam_entry["id"])).text
    mailgate("quarantine", "retry", "--all")  # held spam is never released in bulk
    assert len(json.loads(mailgate("quarantine", "list", "--json").text)) == 2
    assert ": new #" in mailgate("quarantine", "retry", str(order_entry["id"])).text
    mailgate("quarantine", "discard", str(scam_entry["id"]), "--reason", "419 scam")
    assert json.loads(mailgate("quarantine", "list", "--json").text) == []


def test_spam_settings_are_checked(tmp_path):
    config = tmp_path / "mailgate.toml"
    config.write_text('[spam]\nscore_header = "X-Rspamd-Score"\nthreshold = -1\nhold = "yes"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert [key for key, _ in raised.value.problems] == ["spam.hold", "spam.threshold"]
    config.write_text('[spam]\nscore_header = "X-Rspamd-Score"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert raised.value.problems == [("spam.threshold", "required with score_header")]
    config.write_text('[spam]\nscore_header = "X-Rspamd-Score"\nthreshold = 6\n')
    assert load_settings(config).spam.threshold == 6.0
