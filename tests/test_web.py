"""The customers' status pages over HTTP (issue 12, section 3), in-process with
Starlette's TestClient, on SQLite and PostgreSQL; and the page served by a running
daemon. What a link opens, what it never shows, and what an expired or tampered
link gets."""
from __future__ import annotations

import datetime as dt
import re
import urllib.request

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from mailgate.config import ConfigError, load_settings
from mailgate.gateway import Gateway
from mailgate.models import Contact, Message, Outbox, Ticket
from mailgate.pipeline import Envelope, ingest
from mailgate.signing import signer_for
from mailgate.status_labels import StatusLabels
from mailgate.web.app import create_app
from mailgate.web.links import Scope, make, status_url
from tests.mails import make_mail
from tests.servers.daemon import DaemonThread

PIPE = Envelope("pipe")
BASE = "http://testserver/status"
SECRET = "web-secret-" + "w" * 32
NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def wgw(settings, parser_pool, departments):
    gateway = Gateway(settings.replace(web={"base_url": BASE}, security={"secret": SECRET}),
                      parser=parser_pool)
    yield gateway
    gateway.close()


@pytest.fixture
def client(wgw):
    woken = []
    with TestClient(create_app(wgw, lambda: woken.append(1))) as test_client:
        test_client.woken = woken
        yield test_client


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


def new_ticket(gw, sender="Maryam <maryam@example.ir>", to="support@example.com",
               subject="Printer on fire", **mail) -> Ticket:
    result = ingest(gw, make_mail(sender=sender, to=to, subject=subject, **mail), PIPE)
    with gw.db.unit_of_work() as session:
        ticket = next(t for t in session.scalars(select(Ticket)) if t.number == result.ticket)
        session.expunge(ticket)
        return ticket


def ack_link(gw, ticket: Ticket) -> str:
    with gw.db.unit_of_work() as session:
        row = session.scalar(select(Outbox).where(Outbox.ticket_id == ticket.id,
                                                  Outbox.kind == "ack"))
        return row.context["status_url"]


def add_message(gw, ticket: Ticket, kind: str, text: str, direction: str = "out") -> None:
    with gw.db.unit_of_work() as session:
        session.add(Message(ticket_id=ticket.id, direction=direction, kind=kind,
                            author_email="agent@example.com", author_name="Agent Smith",
                            text_body=text, received_at=dt.datetime.now(dt.timezone.utc)))


def test_the_acknowledgement_links_to_a_page_with_the_ticket(wgw, client):
    ticket = new_ticket(wgw, attachments=[("scan.pdf", "application/pdf", b"%PDF-1.4 scan")])
    url = ack_link(wgw, ticket)
    assert url.startswith(f"{BASE}/ticket/t{ticket.id}.{ticket.requester_id}.")
    answer = client.get(path_of(url))
    assert answer.status_code == 200
    html = answer.text
    assert f'<td id="number">{ticket.number}</td>' in html
    assert "Printer on fire" in html and "It is on fire." in html
    assert 'data-status="new">New<' in html and "<td>Support</td>" in html
    assert '<html lang="en" dir="ltr">' in html
    headers = answer.headers
    assert headers["content-security-policy"].startswith("default-src 'none'; style-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "<script" not in html and "http://" not in html.replace(BASE, "")
    # the ack mail's text carries the same link
    with wgw.db.unit_of_work() as session:
        row = session.scalar(select(Outbox).where(Outbox.kind == "ack"))
        assert row.context["recipient"]["email"] == "maryam@example.ir"


def test_the_page_shows_the_public_conversation_only(wgw, client):
    ticket = new_ticket(wgw)
    add_message(wgw, ticket, "agent_reply", "Please unplug it first.")
    add_message(wgw, ticket, "internal_note", "Customer broke it twice already.", "in")
    html = client.get(path_of(ack_link(wgw, ticket))).text
    assert "Please unplug it first." in html and "Agent Smith" in html
    assert "broke it twice" not in html
    assert html.index("It is on fire.") < html.index("Please unplug it first.")


def test_replies_show_what_the_customer_typed_and_statuses_their_configured_label(wgw, client):
    ticket = new_ticket(wgw)
    quoted = ("The smoke has stopped now.\n\nOn Mon, 30 Nov 2026 at 10:00, Support wrote:\n"
              "> We have opened ticket\n> It is on fire.\n")
    ingest(wgw, make_mail(sender="Maryam <maryam@example.ir>", body=quoted,
                          subject=f"Re: [MG#{ticket.number}] Printer on fire"), PIPE)
    wgw.settings = wgw.settings.replace(
        statuses=StatusLabels(locales=(("en", (("new", "Received"),)),)))
    html = client.get(path_of(ack_link(wgw, ticket))).text
    assert "The smoke has stopped now." in html and "We have opened ticket" not in html
    assert 'data-status="new">Received<' in html


def test_attachments_download_through_signed_links(wgw, client):
    data = b"%PDF-1.4 the scan"
    ticket = new_ticket(wgw, attachments=[("رسید.pdf", "application/pdf", data)])
    html = client.get(path_of(ack_link(wgw, ticket))).text
    href = re.search(r'href="\.\./(file/[^"]+)"', html).group(1)
    answer = client.get(f"/{href}")
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")
    token = href.split("/")[1]
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert client.get(f"/file/{tampered}/x.pdf").status_code == 403


def test_a_link_opens_only_its_own_contacts_ticket(wgw, client):
    first = new_ticket(wgw)
    other = new_ticket(wgw, sender="other@example.org", subject="Other's ticket")
    foreign = status_url(wgw.settings, first.id, other.requester_id, NOW)
    answer = client.get(path_of(foreign))
    assert answer.status_code == 403 and "Printer" not in answer.text
    list_token = make(wgw.settings, Scope.LIST, 0, other.requester_id, NOW)
    assert client.get(f"/ticket/{list_token}").status_code == 403  # a list link is no ticket link


def test_tampered_and_expired_links_get_a_plain_page(wgw, client):
    ticket = new_ticket(wgw)
    url = path_of(ack_link(wgw, ticket))
    tampered = client.get(url.replace(f"t{ticket.id}.", f"t{ticket.id + 1}."))
    assert tampered.status_code == 403
    old = make(wgw.settings, Scope.TICKET, ticket.id, ticket.requester_id,
               NOW - dt.timedelta(days=200))
    expired = client.get(f"/ticket/{old}")
    assert expired.status_code == 410
    for page in (tampered, expired):
        assert "Printer" not in page.text and ticket.number not in page.text
        assert 'method="post" action="../renew"' in page.text


def outbox_of(gw, kind: str) -> list[Outbox]:
    with gw.db.unit_of_work() as session:
        rows = list(session.scalars(select(Outbox).where(Outbox.kind == kind)))
        session.expunge_all()
        return rows


def test_an_expired_link_gets_a_fresh_one_by_mail_to_the_address_on_file(wgw, client):
    ticket = new_ticket(wgw)
    old = make(wgw.settings, Scope.TICKET, ticket.id, ticket.requester_id,
               NOW - dt.timedelta(days=200))
    answer = client.post("/renew", data={"token": old, "email": "attacker@evil.example",
                                         "lang": "fa"})
    assert answer.status_code == 200 and 'lang="fa"' in answer.text
    [row] = outbox_of(wgw, "status_link")
    assert row.recipients == ["maryam@example.ir"]
    assert row.auto_submitted == "auto-replied" and row.rate_key == "maryam@example.ir"
    fresh = row.context["status_url"]
    assert client.get(path_of(fresh)).status_code == 200
    assert row.context["list_url"].startswith(f"{BASE}/tickets/l0.{ticket.requester_id}.")
    assert client.woken == [1]
    # a tampered token names nobody: the same answer, no mail
    same = client.post("/renew", data={"token": old[:-2] + "00"})
    assert same.status_code == 200 and len(outbox_of(wgw, "status_link")) == 1


def test_fresh_links_are_capped_like_automatic_replies(wgw, client):
    ticket = new_ticket(wgw)  # its acknowledgement counts too
    old = make(wgw.settings, Scope.LIST, 0, ticket.requester_id, NOW - dt.timedelta(days=200))
    for _ in range(10):
        client.post("/renew", data={"token": old})
    limit = wgw.settings.outbound.ack_limit_per_hour
    assert len(outbox_of(wgw, "status_link")) == limit - 1


def test_a_rotated_key_keeps_links_working_until_the_set_moment(wgw, client):
    ticket = new_ticket(wgw)
    url = path_of(ack_link(wgw, ticket))
    new_key = "rotated-" + "r" * 32
    later = (NOW + dt.timedelta(days=1)).isoformat()
    rotated = wgw.settings.replace(security={"secret": new_key, "previous_secret": SECRET,
                                             "previous_valid_until": later})
    wgw.settings = rotated
    assert client.get(url).status_code == 200
    wgw.settings = rotated.replace(security={"previous_valid_until": NOW.isoformat()})
    assert client.get(url).status_code == 403
    assert signer_for(wgw.settings).secret == new_key


def contact_id(gw, email: str) -> int:
    with gw.db.unit_of_work() as session:
        return session.scalar(select(Contact.id).where(Contact.email == email))


def dated_ticket(gw, subject: str, created: dt.datetime, status: str, category: str | None,
                 to: str = "support@example.com") -> None:
    ticket = new_ticket(gw, subject=subject, to=to)
    with gw.db.unit_of_work() as session:
        row = session.get(Ticket, ticket.id)
        row.created_at, row.updated_at, row.status, row.category = created, created, status, category


def list_rows(client, token: str, **query) -> list[str]:
    html = client.get(f"/tickets/{token}", params=query).text
    return re.findall(r'<td dir="auto">([^<]*)</td>', html)


def test_the_list_filters_by_date_topic_and_status(wgw, client):
    utc = dt.timezone.utc
    dated_ticket(wgw, "Old invoice", dt.datetime(2026, 9, 1, 10, tzinfo=utc), "closed", "billing")
    dated_ticket(wgw, "Refund please", dt.datetime(2026, 11, 20, 10, tzinfo=utc), "open", "billing")
    dated_ticket(wgw, "Login broken", dt.datetime(2026, 11, 22, 10, tzinfo=utc), "answered", "access")
    new_ticket(wgw, sender="stranger@example.org", subject="Not hers")
    token = make(wgw.settings, Scope.LIST, 0, contact_id(wgw, "maryam@example.ir"), NOW)
    assert list_rows(client, token) == ["Login broken", "Refund please", "Old invoice"]
    assert list_rows(client, token, status="closed") == ["Old invoice"]
    assert list_rows(client, token, status="open_all") == ["Login broken", "Refund please"]
    assert list_rows(client, token, topic="billing") == ["Refund please", "Old invoice"]
    assert list_rows(client, token, **{"from": "2026-11-21"}) == ["Login broken"]
    # Solar Hijri, in Persian digits: 1405-08-29 is 20 November 2026
    assert list_rows(client, token, **{"from": "۱۴۰۵/۰۸/۲۹", "to": "1405-08-29"}) == ["Refund please"]
    page = client.get(f"/tickets/{token}", params={"from": "yesterday", "topic": "<script>"})
    assert page.status_code == 200 and 'aria-invalid="true"' in page.text
    assert "This is not a date: yesterday" in page.text and "<script>" not in page.text


def test_persian_pages_read_right_to_left_in_their_calendar(wgw, client):
    ticket = new_ticket(wgw, to="billing@example.com", subject="فاکتور دو بار کسر شد")
    html = client.get(path_of(ack_link(wgw, ticket))).text
    assert '<html lang="fa" dir="rtl">' in html
    assert ticket.number.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")) in html
    assert "تیکت" in html and "فاکتور دو بار کسر شد" in html
    assert re.search(r"(فروردین|اردیبهشت|خرداد|تیر|مرداد|شهریور|مهر|آبان|آذر|دی|بهمن|اسفند) ۱۴۰", html)
    georgian = client.get(path_of(ack_link(wgw, ticket)), params={"lang": "ka"}).text
    assert '<html lang="ka" dir="ltr">' in georgian and "ბილეთი" in georgian
    assert 'href="?lang=en"' in georgian


def test_the_stylesheet_is_ours(client):
    answer = client.get("/static/page.css")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/css")
    assert "url(" not in answer.text and "@import" not in answer.text


@pytest.mark.parametrize("web, problem", [
    ('listen = "127.0.0.1:8080"', "web.base_url"),
    ('base_url = "support.example.com/status"', "web.base_url"),
    ('base_url = "ftp://support.example.com"', "web.base_url"),
    ('base_url = "https://x.example/?a=1"', "web.base_url"),
    ('listen = "8080"\nbase_url = "https://x.example"', "web.listen"),
    ('link_days = 0', "web.link_days"),
])
def test_check_names_what_is_wrong_in_web(tmp_path, web, problem):
    config = tmp_path / "mailgate.toml"
    config.write_text(f"[web]\n{web}\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert problem in dict(error.value.problems)


def test_no_base_url_no_link(settings, parser_pool, departments):
    gateway = Gateway(settings, parser=parser_pool)
    try:
        ticket = new_ticket(gateway)
        assert ack_link(gateway, ticket) == ""
        with gateway.db.unit_of_work() as session:
            row = session.scalar(select(Outbox).where(Outbox.kind == "ack"))
        from mailgate.outbound.render import Templates  # noqa: E402  (only this test renders)
        text = Templates(settings).render("ack", "en", row.context).text
        assert "online" not in text
    finally:
        gateway.close()


@pytest.mark.slow
def test_the_running_daemon_serves_the_page(settings, parser_pool, departments, tmp_path):
    web = settings.replace(smtp={"listen": ("127.0.0.1:0",)}, http={"listen": "127.0.0.1:0"},
                           daemon={"delivery_workers": 1}, security={"secret": SECRET},
                           web={"listen": "127.0.0.1:0", "base_url": "http://127.0.0.1"})
    with DaemonThread(web) as daemon:
        port = daemon.port("web")
        ticket = new_ticket(daemon.daemon.gw)
        url = ack_link(daemon.daemon.gw, ticket).replace("http://127.0.0.1",
                                                         f"http://127.0.0.1:{port}")
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.status == 200
            assert answer.headers["Referrer-Policy"] == "no-referrer"
            assert "Printer on fire" in answer.read().decode()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
