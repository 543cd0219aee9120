"""SMTP and LMTP over loopback with Python's smtplib as the real client."""
from __future__ import annotations

import smtplib
import threading
import urllib.request

import pytest
from sqlalchemy import func, select

from mailgate.gateway import Gateway
from mailgate.models import Inbound, Ticket
from tests.mails import make_mail
from tests.servers.daemon import DaemonThread


@pytest.fixture
def daemon_settings(settings):
    return settings.replace(smtp={"listen": ("127.0.0.1:0",), "max_message_size": 200_000},
                            lmtp={"listen": ("127.0.0.1:0",)}, http={"listen": "127.0.0.1:0"},
                            daemon={"delivery_workers": 2})


@pytest.fixture
def running(daemon_settings, parser_pool, departments, gw):
    gateway = Gateway(daemon_settings, parser=parser_pool)
    with DaemonThread(daemon_settings, gateway) as daemon:
        yield daemon


def tickets(gw) -> int:
    with gw.db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(Ticket))


def test_accepted_mail_becomes_a_ticket_and_unknown_recipient_is_refused(running, gw):
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
        code, features = client.ehlo("client.example.org")
        assert b"SIZE 200000" in features
        refused = client.sendmail("customer@example.org",
                                  ["support@example.com", "nobody@example.com"], make_mail())
        assert refused == {"nobody@example.com": (
            550, b"5.1.1 <nobody@example.com>: Recipient address rejected: no such mailbox")}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("customer@example.org", ["nobody@example.com"], make_mail())
    assert tickets(gw) == 1
    with gw.db.unit_of_work() as session:
        record = session.scalar(select(Inbound))
        assert (record.source, record.envelope_from, record.envelope_to) == \
            ("smtp", "customer@example.org", ["support@example.com"])


def test_received_header_is_added(running, gw):
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
        client.sendmail("customer@example.org", ["support@example.com"], make_mail())
    with gw.db.unit_of_work() as session:
        digest = session.scalar(select(Inbound.sha256))
    raw = gw.storage.raw.get(digest)
    assert raw.startswith(b"Received: from ") and b"(mailgate) with ESMTP" in raw


def test_oversize_message_is_refused_with_552(running, gw):
    big = make_mail(body="x" * 300_000)
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail("customer@example.org", ["support@example.com"], big)
        assert info.value.smtp_code == 552
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
        client.ehlo()
        client.esmtp_features.pop("size")  # a client that ignores SIZE still gets 552
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("customer@example.org", ["support@example.com"], big)
        assert info.value.smtp_code == 552
    assert tickets(gw) == 0


def test_lmtp_answers_per_recipient(running, gw):
    # smtplib.LMTP reads a single reply after DATA, so read RFC 2033's replies by hand
    client = smtplib.LMTP("127.0.0.1", running.port("lmtp"), timeout=30)
    try:
        assert client.ehlo("mx.example.org")[0] == 250  # smtplib.LMTP sends LHLO
        assert client.mail("customer@example.org")[0] == 250
        replies = [client.rcpt(r) for r in ("support@example.com", "nobody@example.com",
                                            "billing@example.com")]
        assert [code for code, _ in replies] == [250, 550, 250]
        assert client.docmd("DATA")[0] == 354
        client.send(smtplib.quotedata(make_mail().decode()).encode() + b"\r\n.\r\n")
        per_recipient = [client.getreply() for _ in range(2)]
        assert [code for code, _ in per_recipient] == [250, 250]
        assert per_recipient[0][1].startswith(b"2.0.0 OK: new #")
        assert client.docmd("QUIT")[0] == 221
    finally:
        client.close()
    assert tickets(gw) == 1


def test_concurrent_clients_all_land_exactly_once(running, gw):
    connections, per_connection = 20, 20
    ids, errors = [], []

    def client(n: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", running.port(), timeout=60) as smtp:
                for i in range(per_connection):
                    mid = f"<c{n}-m{i}@load.example>"
                    smtp.sendmail("customer@example.org", ["support@example.com"],
                                  make_mail(message_id=mid, subject=f"load {n}/{i}"))
                    ids.append(mid)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == connections * per_connection
    with gw.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == len(ids)
        stored = session.scalars(select(Inbound.message_id)).all()
    assert sorted(stored) == sorted(ids)


def test_health_and_metrics(running):
    base = f"http://127.0.0.1:{running.port('http')}"
    assert urllib.request.urlopen(f"{base}/healthz", timeout=10).read() == b"ok\n"
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as client:
        client.sendmail("customer@example.org", ["support@example.com"], make_mail())
    metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    assert 'mailgate_messages_total{outcome="new",source="smtp"} 1.0' in metrics
    assert "mailgate_tickets_created_total 1.0" in metrics
    assert 'mailgate_pipeline_seconds_count{source="smtp"} 1.0' in metrics


def test_client_network_allow_list(daemon_settings, parser_pool, departments):
    settings = daemon_settings.replace(smtp={"allow_networks": ("10.0.0.0/8",)})
    with DaemonThread(settings, Gateway(settings, parser=parser_pool)) as daemon:
        with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as info:
                client.sendmail("c@x.org", ["support@example.com"], make_mail())
            assert info.value.smtp_code == 550


def test_database_outage_answers_451_and_the_resend_lands_once(pg_url, tmp_path, parser_pool):
    """PostgreSQL behind a proxy whose link is cut mid-run, as when the database host dies."""
    from sqlalchemy.engine import make_url

    from tests.servers.tcpproxy import TcpProxy

    real = make_url(pg_url)
    proxy = TcpProxy(real.host, real.port)
    url = real.set(port=proxy.port).render_as_string(hide_password=False)
    from mailgate.config import Settings

    settings = Settings().replace(database={"url": url, "pool_size": 2},
                                  storage={"dir": tmp_path / "var", "fsync": False},
                                smtp={"listen": ("127.0.0.1:0",)}, http={"listen": "127.0.0.1:0"})
    gateway = Gateway(settings, parser=parser_pool)
    from tests.conftest import _truncate_all

    _truncate_all(gateway.db)
    with gateway.db.unit_of_work() as session:
        from mailgate.models import Address, Department

        session.add(Address(address="support@example.com",
                            department=Department(key="support", name="Support")))
    try:
        with DaemonThread(settings, gateway) as daemon:
            raw = make_mail(message_id="<outage-1@client.example.org>")
            with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
                client.sendmail("c@x.org", ["support@example.com"], make_mail())
                # the link dies between RCPT and DATA: DATA is answered 451
                assert client.mail("c@x.org")[0] == 250
                assert client.rcpt("support@example.com")[0] == 250
                proxy.cut()
                code, _ = client.data(raw)
                assert code == 451
                client.rset()
                # while it is down, a new delivery gets 451 too (at RCPT when the address
                # is not in the listener's cache of routed addresses, else at DATA)
                with pytest.raises((smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)) as info:
                    client.sendmail("c@x.org", ["support@example.com"], raw)
                error = info.value
                code = (error.recipients["support@example.com"][0]
                        if isinstance(error, smtplib.SMTPRecipientsRefused) else error.smtp_code)
                assert code == 451
            proxy.restore()
            with smtplib.SMTP("127.0.0.1", daemon.port(), timeout=30) as client:
                assert client.sendmail("c@x.org", ["support@example.com"], raw) == {}
                assert client.sendmail("c@x.org", ["support@example.com"], raw) == {}
        with gateway.db.unit_of_work() as session:
            outcomes = sorted(session.scalars(
                select(Inbound.outcome).where(
                    Inbound.message_id == "<outage-1@client.example.org>")).all())
            assert outcomes == ["duplicate", "new"]
            assert session.scalar(select(func.count()).select_from(Ticket)) == 2
    finally:
        gateway.db.dispose()
        proxy.close()
