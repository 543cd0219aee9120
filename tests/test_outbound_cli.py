"""Outbox and template commands, SMS through the outbox, `mailgate check` on templates."""
from __future__ import annotations

import email
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from mailgate.cli import main
from mailgate.gateway import Gateway
from mailgate.models import Contact, Department, Outbox
from mailgate.outbound.sender import OutboxSender
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail


class Recorder(BaseHTTPRequestHandler):
    requests: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.requests.append((self.path, dict(self.headers), body))
        self.send_response(Recorder.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "sms-1"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def sms_endpoint():
    Recorder.requests, Recorder.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()


def test_sms_goes_through_the_outbox_when_phone_and_department_allow(settings, parser_pool,
                                                                     departments, sms_endpoint):
    settings = settings.replace(sms={"backend": "webhook", "webhook_url": sms_endpoint})
    gw = Gateway(settings, parser=parser_pool)
    with gw.db.unit_of_work() as session:
        session.add(Contact(email="ali@example.ir", phone="+989123456789", locale="fa"))
        session.add(Contact(email="nophone@example.org"))
        for dept in session.scalars(select(Department)):
            dept.sms_enabled = True
    ingest(gw, make_mail(sender="ali@example.ir"), Envelope("pipe"))
    ingest(gw, make_mail(sender="nophone@example.org"), Envelope("pipe"))
    OutboxSender(gw).run_once()
    [(path, headers, body)] = Recorder.requests
    sent = json.loads(body)
    assert path == "/sms" and sent["to"] == "+989123456789"
    assert any("\u0600" <= ch <= "\u06ff" for ch in sent["text"])  # Persian template
    with gw.db.unit_of_work() as session:
        rows = list(session.scalars(select(Outbox).where(Outbox.channel == "sms")))
        assert [(r.status, r.recipients) for r in rows] == [("sent", ["+989123456789"])]
    gw.close()


def test_sms_provider_error_is_retried(settings, parser_pool, departments, sms_endpoint):
    settings = settings.replace(sms={"backend": "webhook", "webhook_url": sms_endpoint})
    gw = Gateway(settings, parser=parser_pool)
    with gw.db.unit_of_work() as session:
        session.add(Contact(email="ali@example.ir", phone="+989123456789"))
        for dept in session.scalars(select(Department)):
            dept.sms_enabled = True
    Recorder.status = 503
    ingest(gw, make_mail(sender="ali@example.ir"), Envelope("pipe"))
    OutboxSender(gw).run_once()
    with gw.db.unit_of_work() as session:
        row = session.scalar(select(Outbox).where(Outbox.channel == "sms"))
        assert (row.status, row.attempts) == ("pending", 1) and "503" in row.last_error
    gw.close()


@pytest.fixture
def cli(db_url, tmp_path, capfd):
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[storage]\ndir = "{tmp_path / "var"}"\n'
                      'fsync = false\n')

    def run(*args):
        capfd.readouterr()
        code = main(["--config", str(config), *args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


def test_outbox_list_retry_and_send(cli, tmp_path):
    cli("department", "add", "support")
    cli("address", "add", "support@example.com", "--department", "support")
    (tmp_path / "mail.eml").write_bytes(make_mail())
    cli("ingest", str(tmp_path / "mail.eml"))
    code, out, _ = cli("outbox", "list", "--json")
    [row] = json.loads(out)
    assert (row["kind"], row["status"], row["channel"]) == ("ack", "pending", "email")
    assert cli("outbox", "send")[1].strip() == "1 handled"
    assert (tmp_path / "var" / "outbox" / f"{row['id']}.eml").exists()
    assert json.loads(cli("outbox", "list", "--json")[1]) == []
    assert json.loads(cli("outbox", "list", "--all", "--json")[1])[0]["status"] == "sent"
    code, _, err = cli("outbox", "retry", "999")
    assert code == 65 and "no outbox message 999" in err
    assert cli("outbox", "retry", str(row["id"]))[1].strip() == f"outbox {row['id']}: queued again"


def test_our_mail_on_the_embedded_default_names_our_host_and_a_known_zone(cli, tmp_path):
    """No hostname configured: Message-IDs end in the machine's FQDN (as `[smtp]
    hostname` defaults to), never @localhost; dates are +0000, not -0000 (unknown)."""
    import socket
    from types import SimpleNamespace

    from mailgate.inbound.smtp import received_header
    from mailgate.signing import machine_name

    cli("department", "add", "support")
    cli("address", "add", "support@example.com", "--department", "support")
    (tmp_path / "mail.eml").write_bytes(make_mail())
    cli("ingest", str(tmp_path / "mail.eml"))
    [row] = json.loads(cli("outbox", "list", "--json")[1])
    assert row["message_id"].endswith(f"@{machine_name()}>")
    if socket.gethostname() != "localhost":  # this machine has a name of its own
        assert not row["message_id"].endswith("@localhost>")
    cli("outbox", "send")
    sent = email.message_from_bytes((tmp_path / "var" / "outbox" / f"{row['id']}.eml")
                                    .read_bytes())
    assert sent["Message-ID"] == row["message_id"] and sent["Date"].endswith(" +0000")
    session = SimpleNamespace(peer=("192.0.2.1", 25), host_name="client.example.org")
    received = received_header(session, SimpleNamespace(rcpt_tos=["a@example.com"]),
                               "mx.example.com", "ESMTP", "q1").decode()
    assert received.rstrip().endswith(" +0000")


def test_template_render_for_a_ticket_and_in_persian(cli, tmp_path):
    cli("department", "add", "support", "--name", "Support")
    cli("address", "add", "support@example.com", "--department", "support")
    (tmp_path / "mail.eml").write_bytes(make_mail(subject="Printer"))
    out = cli("ingest", "--json", str(tmp_path / "mail.eml"))[1]
    number = json.loads(out)[0]["ticket"]
    code, out, _ = cli("template", "render", "ack", "--ticket", number)
    assert code == 0 and f"Subject: " in out and f"[MG#{number}]" in out
    code, out, _ = cli("template", "render", "ack", "--ticket", number, "--locale", "fa",
                       "--html")
    assert 'dir="rtl"' in out
    code, out, _ = cli("template", "render", "sms/ack", "--locale", "ka")
    assert code == 0 and out.strip()


def test_template_render_uses_the_tickets_data_and_samples_only_without_one(cli, tmp_path):
    cli("department", "add", "support", "--name", "Support")
    cli("address", "add", "support@example.com", "--department", "support")
    (tmp_path / "mail.eml").write_bytes(make_mail(sender="Shirin Rahimi <shirin@example.ir>",
                                                  subject="Printer jam",
                                                  body="Paper stuck in tray 2.\n"))
    number = json.loads(cli("ingest", "--json", str(tmp_path / "mail.eml"))[1])[0]["ticket"]
    code, out, err = cli("template", "render", "ack", "--ticket", number, "--locale", "en")
    assert code == 0 and "Hello Shirin Rahimi," in out and "Support team" in out
    assert f"Subject: Re: [MG#{number}] Printer jam" in out and err == ""
    code, out, _ = cli("template", "render", "new_ticket", "--ticket", number, "--locale", "en")
    assert "shirin@example.ir" in out and "Paper stuck in tray 2." in out
    assert "مریم" not in out and "Billing" not in out  # nothing of the sample
    cli("ticket", "set", number, "--status", "resolved", "--reason", "cleared the tray")
    code, out, err = cli("template", "render", "status_change", "--ticket", number,
                         "--locale", "en")
    assert '"New" to "Resolved"' in out and "cleared the tray" in out and err == ""
    # no agent has answered yet: the answer is a sample, and the command says so
    code, out, err = cli("template", "render", "agent_reply", "--ticket", number)
    assert code == 0 and "sample values, not this ticket's: agent, message" in err
    # without --ticket: the sample
    code, out, _ = cli("template", "render", "new_ticket", "--locale", "en")
    assert "مریم احمدی" in out and "Billing" in out


def test_check_reports_a_broken_override_template(cli, tmp_path):
    assert cli("check")[0] == 0
    overrides = tmp_path / "overrides" / "en"
    overrides.mkdir(parents=True)
    (overrides / "ack.txt").write_text("{{ ticket.nosuchfield }} {% if %}")
    config = tmp_path / "mailgate.toml"
    config.write_text(config.read_text() +
                      f'[outbound]\ntemplates_dir = "{tmp_path / "overrides"}"\n')
    code, out, _ = cli("check")
    assert code == 78 and "templates:en/ack" in out
