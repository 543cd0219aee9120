"""Postfix in front of mailgate, as deployed (issue 18): a private Postfix from Debian
hands the support domain to `mailgate run` over LMTP, or pipes it into
`mailgate ingest`, and each test talks SMTP to Postfix as the Internet would.

One `mailgate run` serves the whole module (its start is the slow part); each test
starts its own Postfix and tells its messages apart by Message-ID. PostgreSQL is
reached through a proxy whose link a test can cut: a database outage is how
mailgate comes to answer 451, and `mailgate ingest` to exit 75."""
from __future__ import annotations

import contextlib
import shutil
import smtplib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mailgate.db import Database
from mailgate.models import Address, Agent, Department, Inbound
from tests.conftest import _truncate_all
from tests.mails import make_mail
from tests.servers.daemon import DaemonProcess
from tests.servers.postfix import (HOSTNAME, PIPE_USER, Deployment,  # noqa: F401 (postfix)
                                   lmtp_deployment, pipe_command, pipe_deployment, postfix,
                                   strip_forged_results, verify_recipients)
from tests.servers.relay import RecordingRelay, free_port
from tests.servers.tcpproxy import TcpProxy

DOMAIN = "example.com"
SIZE_LIMIT = 200_000  # mailgate's [smtp] max_message_size, and Postfix's message_size_limit
CUSTOMER = "customer@example.org"
AGENT = "agent@example.com"

# mailgate.toml lines for mail from the Postfix in front (README "Deploying behind
# Postfix"): its LMTP client may carry proof, and the results it writes count
TRUSTED_RELAYS = 'trusted_relays = ["127.0.0.1/32"]'
TRUSTED_AUTHSERV_IDS = 'trusted_authserv_ids = ["{authserv_id}"]'


def proxied(pg_url: str) -> tuple[TcpProxy, str]:
    """A proxy in front of PostgreSQL whose link a test can cut, and the URL through it."""
    real = make_url(pg_url)
    link = TcpProxy(real.host, real.port)
    return link, real.set(port=link.port).render_as_string(hide_password=False)


class Site:
    """What the module shares: PostgreSQL behind a proxy (`link`), the support
    department at support@ and help@example.com with an agent, and `mailgate run`
    with an LMTP listener on a port fixed in advance (Postfix finds it again after a
    restart), configured as behind Postfix: Postfix's LMTP client is a trusted relay
    and its host name the authserv-id of the results it writes."""

    def __init__(self, pg_url: str, folder: Path):
        self.database = Database(pg_url)
        _truncate_all(self.database)
        with self.database.unit_of_work() as session:
            support = Department(key="support", name="Support")
            session.add_all([Address(address="support@example.com", department=support),
                             Address(address="help@example.com", department=support),
                             Agent(email=AGENT, name="Agent", departments=[support])])
        self.link, self.db_url = proxied(pg_url)
        self.folder = folder
        self.lmtp_port = free_port()
        self.config = folder / "mailgate.toml"
        self.config.write_text(
            f'[database]\nurl = "{self.db_url}"\n'
            f'[storage]\ndir = "{folder / "var"}"\nfsync = false\n'
            f'[smtp]\nlisten = ["127.0.0.1:0"]\nmax_message_size = {SIZE_LIMIT}\n'
            f'{TRUSTED_RELAYS}\n'
            f'[lmtp]\nlisten = ["127.0.0.1:{self.lmtp_port}"]\n'
            f'[security]\n{TRUSTED_AUTHSERV_IDS.format(authserv_id=HOSTNAME)}\n'
            '[http]\nlisten = "127.0.0.1:0"\n[daemon]\ndelivery_workers = 1\n')
        self.mailgate: DaemonProcess | None = None

    def start_mailgate(self) -> None:
        self.mailgate = DaemonProcess(self.config).start()

    def stop_mailgate(self) -> None:
        if self.mailgate is not None:
            self.mailgate.stop()
            self.mailgate = None

    def deployment(self, size_limit: int = SIZE_LIMIT):
        return lmtp_deployment(DOMAIN, self.lmtp_port, size_limit)

    def inbound(self, message_id: str) -> list[Inbound]:
        """What mailgate recorded of the message with this Message-ID, oldest first."""
        with self.database.unit_of_work() as session:
            rows = session.scalars(select(Inbound).where(Inbound.message_id == message_id)
                                   .order_by(Inbound.id)).all()
            session.expunge_all()
            return list(rows)

    def close(self) -> None:
        self.stop_mailgate()
        self.link.close()
        self.database.dispose()


@pytest.fixture(scope="module")
def site(pg_url, tmp_path_factory):
    site = Site(pg_url, tmp_path_factory.mktemp("mailgate"))
    try:
        site.start_mailgate()
        yield site
    finally:
        site.close()


@pytest.fixture
def running(site):
    """The module's `mailgate run`, started again if a test left it stopped."""
    if site.mailgate is None:
        site.start_mailgate()
    return site


@pytest.fixture
def relay():
    """Where Postfix sends everything not for the support domain: the senders' side."""
    relay = RecordingRelay().start()
    yield relay
    relay.stop()


def send(server, message_id: str, recipients=("support@example.com",), **mail) -> str:
    """Submit a message to Postfix's smtpd as a sender's server would; its queue id."""
    with smtplib.SMTP(server.host, server.port, timeout=30) as client:
        client.sendmail(CUSTOMER, list(recipients), make_mail(message_id=message_id, **mail))
    return server.queue_id(message_id)


def waits_in_queue(server, queue_id: str) -> None:
    """The message is Postfix's only one, in its deferred queue (where qmgr moves it
    just after the failed attempt is logged)."""
    server.wait(lambda: [(q["queue_id"], q["queue_name"]) for q in server.queue()]
                == [(queue_id, "deferred")], 10, f"{queue_id} in the deferred queue")


def bounce_to_customer(server, relay):
    """The delivery status notice Postfix sent back to the customer (via the relay)."""
    [notice] = server.wait(lambda: relay.to(CUSTOMER), 20, "bounce at the relay")
    assert notice.mail_from == "<>"  # the null sender (aiosmtpd keeps it as written)
    assert notice.message.get_content_type() == "multipart/report"
    return next(part for part in notice.message.walk()
                if part.get_content_type() == "message/delivery-status").as_string()


# -- LMTP: `mailgate run` behind Postfix ------------------------------------------

def test_mail_submitted_to_postfix_becomes_a_ticket(postfix, running, relay):
    server = postfix.start(running.deployment(), relay.port)
    queue_id = send(server, "<via-postfix@client.example.org>")
    [delivery] = server.delivered(queue_id, "sent")
    assert delivery.relay == f"127.0.0.1[127.0.0.1]:{running.lmtp_port}"
    assert "250 2.0.0 OK: new #" in delivery.detail
    [record] = running.inbound("<via-postfix@client.example.org>")
    assert (record.source, record.outcome, record.envelope_from, record.envelope_to) == \
        ("lmtp", "new", CUSTOMER, ["support@example.com"])
    assert record.ticket_id is not None
    server.wait_until_empty()
    assert relay.received == []


def test_unknown_recipient_is_refused_by_mailgate_and_bounced_by_postfix(postfix, running, relay):
    server = postfix.start(running.deployment(), relay.port)
    queue_id = send(server, "<two-rcpts@client.example.org>",
                    recipients=("support@example.com", "nobody@example.com"))
    [bounced] = server.delivered(queue_id, "bounced")
    assert bounced.recipient == "nobody@example.com"
    assert "550 5.1.1 <nobody@example.com>: Recipient address rejected: no such mailbox" \
        in bounced.detail and "(in reply to RCPT TO command)" in bounced.detail
    server.delivered(queue_id, "sent")  # the other recipient
    status = bounce_to_customer(server, relay)
    assert "Final-Recipient: rfc822; nobody@example.com" in status and "Status: 5.1.1" in status
    # one ticket, for the recipient mailgate knows, and nothing kept for the other
    [record] = running.inbound("<two-rcpts@client.example.org>")
    assert record.envelope_to == ["support@example.com"] and record.outcome == "new"


def test_with_recipient_verification_postfix_refuses_unknown_recipients_itself(
        postfix, running, relay):
    """Recipient verification: Postfix asks mailgate before it answers RCPT, so the
    sender's own server is told, and nobody gets a bounce."""
    server = postfix.start(running.deployment(), relay.port,
                           extra_main=verify_recipients(DOMAIN))
    with smtplib.SMTP(server.host, server.port, timeout=30) as client:
        refused = client.sendmail(CUSTOMER, ["support@example.com", "nobody@example.com"],
                                  make_mail(message_id="<verified@client.example.org>"))
    [(code, text)] = refused.values()
    assert list(refused) == ["nobody@example.com"] and code == 550
    assert b"undeliverable address" in text and b"no such mailbox" in text
    server.delivered(server.queue_id("<verified@client.example.org>"), "sent")
    [record] = running.inbound("<verified@client.example.org>")
    assert record.envelope_to == ["support@example.com"]
    assert relay.received == []


def test_mail_waits_in_postfix_while_mailgate_is_down_and_lands_once(postfix, running, relay):
    running.stop_mailgate()
    server = postfix.start(running.deployment(), relay.port)
    queue_id = send(server, "<while-down@client.example.org>")
    [deferred] = server.delivered(queue_id, "deferred")
    assert "Connection refused" in deferred.detail
    waits_in_queue(server, queue_id)
    running.start_mailgate()
    assert server.queue() != []  # not retried before it is due…
    server.flush()  # …or flushed
    server.delivered(queue_id, "sent")
    server.flush()  # nothing is left to deliver twice
    server.wait_until_empty()
    assert [r.outcome for r in running.inbound("<while-down@client.example.org>")] == ["new"]


def test_mailgate_answering_451_leaves_the_mail_in_postfix_until_it_lands_once(
        postfix, running, relay):
    server = postfix.start(running.deployment(), relay.port)
    running.link.cut()  # the database is gone: mailgate answers 451 4.3.0
    try:
        queue_id = send(server, "<db-down@client.example.org>")
        [deferred] = server.delivered(queue_id, "deferred")
        assert "451 4.3.0" in deferred.detail
        waits_in_queue(server, queue_id)
    finally:
        running.link.restore()
    server.flush()
    server.delivered(queue_id, "sent")
    server.wait_until_empty()
    assert [r.outcome for r in running.inbound("<db-down@client.example.org>")] == ["new"]
    assert relay.received == []  # no bounce, no delay notice


# -- sizes ----------------------------------------------------------------------

def test_a_message_over_the_size_limit_is_refused_while_the_sender_is_connected(
        postfix, running, relay):
    """With message_size_limit at mailgate's own limit, Postfix refuses a larger message
    in the sender's SMTP session (552: the sender's server tells its user), so mailgate
    never sees it and nobody gets a bounce."""
    server = postfix.start(running.deployment(), relay.port)
    big = make_mail(message_id="<big@client.example.org>", body="x" * (SIZE_LIMIT + 1000))
    with smtplib.SMTP(server.host, server.port, timeout=30) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # by SIZE= at MAIL FROM
            client.sendmail(CUSTOMER, ["support@example.com"], big)
        assert refused.value.smtp_code == 552
        client.ehlo()
        client.esmtp_features.pop("size")  # a client that does not say the size first
        with pytest.raises(smtplib.SMTPDataError) as refused:  # at the end of DATA
            client.sendmail(CUSTOMER, ["support@example.com"], big)
        assert refused.value.smtp_code == 552
    # the log is written by postfix's own daemon, a moment after the 552 went out
    server.wait(lambda: "queue file size limit exceeded" in server.log(), 10,
                "size-limit log line")
    assert "postfix/lmtp[" not in server.log()  # mailgate was never asked
    assert server.queue() == [] and relay.received == []
    assert running.inbound("<big@client.example.org>") == []


def test_the_largest_message_postfix_takes_lands_in_mailgate(postfix, running, relay):
    """Nothing Postfix accepts is refused later for its size, even with short lines
    (CRLF on the wire) and the Received: line Postfix adds: its limit counts the
    queue file, which is larger still."""
    server = postfix.start(running.deployment(), relay.port)
    line = "y" * 30 + "\n"
    with smtplib.SMTP(server.host, server.port, timeout=30) as client:
        for lines in range(SIZE_LIMIT // 32, 0, -32):  # a kilobyte smaller each time
            raw = make_mail(message_id="<largest@client.example.org>", body=line * lines)
            try:
                client.sendmail(CUSTOMER, ["support@example.com"], raw)
                break
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as refused:
                assert refused.smtp_code == 552
    assert len(raw) > SIZE_LIMIT - 10_000
    server.delivered(server.queue_id("<largest@client.example.org>"), "sent")
    assert [r.outcome for r in running.inbound("<largest@client.example.org>")] == ["new"]


def test_a_postfix_limit_above_mailgates_bounces_instead(postfix, running, relay):
    """The wrong stage: Postfix takes a message that mailgate's LMTP listener will not
    (its SIZE is smaller), and must bounce it afterwards, to a sender who may be forged."""
    server = postfix.start(running.deployment(size_limit=4 * SIZE_LIMIT), relay.port)
    queue_id = send(server, "<too-big@client.example.org>", body="x" * (SIZE_LIMIT + 1000))
    [bounced] = server.delivered(queue_id, "bounced")
    assert f"exceeds size limit {SIZE_LIMIT} of server 127.0.0.1" in bounced.detail
    assert "Final-Recipient: rfc822; support@example.com" in bounce_to_customer(server, relay)
    assert running.inbound("<too-big@client.example.org>") == []


# -- the pipe: `mailgate ingest` run by Postfix -----------------------------------

@dataclass
class Pipe:
    command: str  # `mailgate` as the pipe's user can run it
    config: Path
    link: TcpProxy  # `mailgate ingest`'s own way to the database

    def deployment(self, config: Path | None = None) -> Deployment:
        return pipe_deployment(DOMAIN, self.command, str(config or self.config), PIPE_USER,
                               SIZE_LIMIT)


@pytest.fixture(scope="module")
def pipe(pg_url):
    """The pipe's `mailgate` command, with a configuration and storage folder that the
    pipe's user can read and write (pytest's own temp folders are private to root)."""
    with contextlib.ExitStack() as cleanup:
        folder = Path(tempfile.mkdtemp(prefix="mailgate-pipe-"))
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        folder.chmod(0o755)
        storage = folder / "var"
        storage.mkdir()
        shutil.chown(storage, PIPE_USER)
        link, db_url = proxied(pg_url)
        cleanup.callback(link.close)
        config = folder / "mailgate.toml"
        config.write_text(f'[database]\nurl = "{db_url}"\n'
                          f'[storage]\ndir = "{storage}"\nfsync = false\n')
        yield Pipe(pipe_command(folder), config, link)


def test_mail_piped_into_mailgate_ingest_becomes_one_ticket(postfix, site, pipe, relay):
    """One delivery per recipient (the recipient limit of 1 the README sets): two
    addresses of one department give one ticket and a duplicate."""
    server = postfix.start(pipe.deployment(), relay.port)
    queue_id = send(server, "<piped@client.example.org>",
                    recipients=("support@example.com", "help@example.com"))
    deliveries = server.delivered(queue_id, "sent", count=2)
    assert {d.relay for d in deliveries} == {"mailgate"}
    records = site.inbound("<piped@client.example.org>")
    assert sorted(r.outcome for r in records) == ["duplicate", "new"]
    assert all(r.source == "pipe" and r.envelope_from == CUSTOMER for r in records)
    assert sorted(r.envelope_to[0] for r in records) == ["help@example.com",
                                                         "support@example.com"]


def test_ingest_exit_75_defers_in_postfix_until_it_lands_once(postfix, site, pipe, relay):
    server = postfix.start(pipe.deployment(), relay.port)
    pipe.link.cut()  # `mailgate ingest` cannot reach the database: exit 75
    try:
        queue_id = send(server, "<piped-db-down@client.example.org>")
        [deferred] = server.delivered(queue_id, "deferred", timeout=60)
        assert deferred.relay == "mailgate" and "temporary failure" in deferred.detail
        waits_in_queue(server, queue_id)
    finally:
        pipe.link.restore()
    server.flush()
    server.delivered(queue_id, "sent", timeout=60)
    server.wait_until_empty()
    assert [r.outcome for r in site.inbound("<piped-db-down@client.example.org>")] == ["new"]
    assert relay.received == []


def test_a_configuration_problem_keeps_piped_mail_in_postfix(postfix, pipe, relay):
    """An admin's slip in mailgate.toml (or a code upgrade before `mailgate db
    upgrade`) is ours to fix, not the sender's: the mail must wait, not bounce."""
    broken = pipe.config.with_name("broken.toml")
    broken.write_text(pipe.config.read_text().replace("fsync = false", "fsync = flase"))
    broken.chmod(0o644)
    server = postfix.start(pipe.deployment(broken), relay.port)
    queue_id = send(server, "<piped-misconfigured@client.example.org>")
    [delivery] = server.wait(lambda: server.deliveries(queue_id), 60, "a delivery attempt")
    assert (delivery.status, relay.received) == ("deferred", []), delivery.detail


# -- Authentication-Results ---------------------------------------------------------

def test_forged_authentication_results_are_dropped_by_postfix(postfix, running, relay):
    """Mail sent straight to our MX with our own authserv-id in an
    Authentication-Results header (DMARC pass for the agents' domain) is believed by
    mailgate, as if our boundary had written it, unless Postfix drops such headers on
    arrival: the README's header_checks rule does (a DMARC milter's own header is not
    subject to it)."""
    forged = f"{HOSTNAME}; dmarc=pass header.from=example.com"
    main, checks = strip_forged_results(HOSTNAME)
    guarded = postfix.start(running.deployment(), relay.port, extra_main=main,
                            extra_files={"header_checks": checks})
    unguarded = postfix.start(running.deployment(), relay.port)
    for server, message_id in ((guarded, "<forged-1@attacker.example>"),
                               (unguarded, "<forged-2@attacker.example>")):
        with smtplib.SMTP(server.host, server.port, timeout=30) as client:
            client.sendmail(AGENT, ["support@example.com"], make_mail(
                sender=f"Agent <{AGENT}>", message_id=message_id,
                body="#new victim@customer.example\nPlease call them.\n",
                authentication_results=forged))
        server.delivered(server.queue_id(message_id), "sent")
    [dropped] = running.inbound("<forged-1@attacker.example>")
    assert any("nothing proves it" in line for line in dropped.trace), dropped.trace
    [believed] = running.inbound("<forged-2@attacker.example>")
    assert any(f"agent: {AGENT} verified by" in line for line in believed.trace), believed.trace


# -- the README -------------------------------------------------------------------

def test_the_readme_gives_the_lines_these_tests_use():
    """README's "Deploying behind Postfix" shows the lines above, for a deployment at
    support.example.com with mailgate's default size limit."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Deploying behind Postfix\n", 1)[1].split("\n## ", 1)[0]
    shown = {" ".join(line.split()) for line in section.splitlines()}
    domain, size = "support.example.com", 26214400
    lmtp = lmtp_deployment(domain, 2424, size)
    piped = pipe_deployment(domain, "/opt/mailgate/.venv/bin/mailgate",
                            "/etc/mailgate/mailgate.toml", "mailgate", size)
    wanted = "".join([lmtp.main, lmtp.transport, piped.main, piped.transport, piped.master,
                      verify_recipients(domain), *strip_forged_results("mx.example.com"),
                      'listen = ["127.0.0.1:2424"]\n', TRUSTED_RELAYS + "\n",
                      TRUSTED_AUTHSERV_IDS.format(authserv_id="mx.example.com")])
    missing = [line for line in wanted.splitlines() if " ".join(line.split()) not in shown]
    assert missing == []
