"""The ingest pipeline end to end on a real database (SQLite and PostgreSQL)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from mailgate import tickets as ops
from mailgate.models import Attachment, Inbound, Message, Quarantine, Ticket, TicketEvent
from mailgate.pipeline import Envelope, ingest
from mailgate.mail.tokens import format_token
from tests.mails import make_mail

PIPE = Envelope("pipe")


def count(gw, model, *where) -> int:
    with gw.db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def ticket(gw, number) -> Ticket:
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, number)
        t.department, t.requester  # load while the session is open
        return t


def test_new_ticket_routed_by_address(gw, departments):
    result = ingest(gw, make_mail(to="Billing Team <BILLING@Example.com>",
                                  subject="Invoice 42 is wrong"), PIPE)
    assert result.outcome == "new"
    t = ticket(gw, result.ticket)
    assert (t.department.key, t.requester.email, t.status, t.subject) == \
        ("billing", "customer@example.org", "new", "Invoice 42 is wrong")
    assert len(t.messages) == 1 and t.messages[0].text_body == "It is on fire.\n"
    assert any("route: billing@example.com (to) -> billing" in line for line in result.trace)


def test_reply_with_token_appends_and_mangled_subjects_still_thread(gw, departments):
    first = ingest(gw, make_mail(subject="Help"), PIPE)
    token = format_token("MG", first.ticket)
    for subject in (f"Re: {token} Help", f"AW: [External] RE: {token.lower()} Help",
                    f"پاسخ: {token.replace('#', ' # ')}", f"Ответ: Fwd: {token}"):
        result = ingest(gw, make_mail(subject=subject), PIPE)
        assert (result.outcome, result.ticket) == ("appended", first.ticket), subject
    assert len(ticket(gw, first.ticket).messages) == 5


def test_department_prefix_token(gw, departments):
    first = ingest(gw, make_mail(to="billing@example.com"), PIPE)
    reply = ingest(gw, make_mail(subject=f"Re: [BILL#{first.ticket}] x", to="other@x.org"), PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first.ticket)


def test_token_with_wrong_check_digit_opens_new_ticket(gw, departments):
    first = ingest(gw, make_mail(), PIPE)
    wrong = first.ticket[:-1] + str((int(first.ticket[-1]) + 1) % 10)
    result = ingest(gw, make_mail(subject=f"Re: [MG#{wrong}]"), PIPE)
    assert result.outcome == "new" and result.ticket != first.ticket
    assert any("wrong check digit" in line for line in result.trace)


def test_in_reply_to_threads_when_subject_lost_its_token(gw, departments):
    first = ingest(gw, make_mail(message_id="<orig-1@client.example.org>"), PIPE)
    reply = ingest(gw, make_mail(subject="new subject",
                                 in_reply_to="<orig-1@client.example.org>"), PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first.ticket)
    assert any("In-Reply-To" in line for line in reply.trace)


def test_references_only_reply_threads(gw, departments):
    first = ingest(gw, make_mail(message_id="<orig-2@client.example.org>"), PIPE)
    reply = ingest(gw, make_mail(subject="x", references="<unknown@x> <orig-2@client.example.org>"),
                   PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first.ticket)
    assert any("References" in line for line in reply.trace)


def test_token_from_a_stranger_opens_a_linked_ticket(gw, departments):
    first = ingest(gw, make_mail(), PIPE)
    other = ingest(gw, make_mail(sender="mallory@evil.example",
                                 subject=f"Re: [MG#{first.ticket}]"), PIPE)
    assert other.outcome == "new" and other.ticket != first.ticket
    linked = ticket(gw, other.ticket)
    assert linked.linked_ticket_id == ticket(gw, first.ticket).id
    assert len(ticket(gw, first.ticket).messages) == 1


def test_token_from_stranger_appends_under_append_policy(gw, departments):
    gw.settings = gw.settings.replace(threading={"foreign_sender": "append"})
    first = ingest(gw, make_mail(), PIPE)
    other = ingest(gw, make_mail(sender="colleague@example.org",
                                 subject=f"Re: [MG#{first.ticket}]"), PIPE)
    assert (other.outcome, other.ticket) == ("appended", first.ticket)


def test_cc_participant_may_reply(gw, departments):
    first = ingest(gw, make_mail(cc="boss@example.org, support@example.com"), PIPE)
    reply = ingest(gw, make_mail(sender="boss@example.org", subject=f"[MG#{first.ticket}]"),
                   PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first.ticket)


def test_reply_reopens_answered_and_closed_tickets(gw, departments):
    first = ingest(gw, make_mail(), PIPE)
    with gw.db.unit_of_work() as session:
        ops.set_status(session, ops.get_ticket(session, first.ticket), "answered", "agent")
    ingest(gw, make_mail(subject=f"[MG#{first.ticket}]"), PIPE)
    assert ticket(gw, first.ticket).status == "open"
    with gw.db.unit_of_work() as session:
        ops.set_status(session, ops.get_ticket(session, first.ticket), "closed", "agent")
    result = ingest(gw, make_mail(subject=f"[MG#{first.ticket}]"), PIPE)
    assert (result.outcome, result.ticket) == ("appended", first.ticket)
    t = ticket(gw, first.ticket)
    assert t.status == "open" and t.closed_at is None
    assert [e.kind for e in t.events].count("reopened") == 1


def test_reply_to_long_closed_ticket_opens_linked_ticket(gw, departments):
    first = ingest(gw, make_mail(), PIPE)
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, first.ticket)
        ops.set_status(session, t, "closed", "agent")
        t.closed_at = gw.now() - dt.timedelta(days=30)
    result = ingest(gw, make_mail(subject=f"Re: [MG#{first.ticket}]"), PIPE)
    assert result.outcome == "new" and result.ticket != first.ticket
    assert ticket(gw, first.ticket).status == "closed"


def test_the_sender_is_woken_exactly_when_mail_was_queued(gw, departments):
    """`Result.queued` (the daemon wakes the outbox sender on it) is true when the
    message's transaction queued mail, and only then; the result names the inbound
    row written for it."""
    raw = make_mail(subject="Help")
    first = ingest(gw, raw, PIPE)
    reply = ingest(gw, make_mail(subject=f"Re: {format_token('MG', first.ticket)} Help"), PIPE)
    again = ingest(gw, raw, PIPE)
    assert [(r.outcome, r.queued) for r in (first, reply, again)] == \
        [("new", True), ("appended", True), ("duplicate", False)]
    with gw.db.unit_of_work() as session:
        rows = {row.id: (row.outcome, row.ticket_id) for row in session.scalars(select(Inbound))}
        messages = {m.inbound_id: m.ticket_id for m in session.scalars(select(Message))}
    ticket_id = ticket(gw, first.ticket).id
    assert [rows[r.inbound_id] for r in (first, reply, again)] == \
        [("new", ticket_id), ("appended", ticket_id), ("duplicate", ticket_id)]
    assert messages == {first.inbound_id: ticket_id, reply.inbound_id: ticket_id}


def test_same_message_twice_and_to_two_departments_makes_one_ticket(gw, departments):
    raw = make_mail(to="support@example.com", cc="billing@example.com")
    first = ingest(gw, raw, Envelope("smtp", "c@x", ("support@example.com",)))
    again = ingest(gw, raw, Envelope("smtp", "c@x", ("billing@example.com",)))
    third = ingest(gw, raw, PIPE)
    assert first.outcome == "new"
    assert (again.outcome, again.ticket) == ("duplicate", first.ticket)
    assert (third.outcome, third.ticket) == ("duplicate", first.ticket)
    assert count(gw, Ticket) == 1
    assert count(gw, Inbound) == 3


def test_message_without_message_id_is_deduplicated_by_content(gw, departments):
    raw = make_mail().replace(b"Message-ID:", b"X-Old-ID:")
    assert ingest(gw, raw, PIPE).outcome == "new"
    # the same mail seen through another transport gains trace headers
    assert ingest(gw, b"Received: from mx by imap; Sun, 1 Nov 2026 10:00:00 +0000\r\n" + raw,
                  PIPE).outcome == "duplicate"
    assert count(gw, Ticket) == 1


def test_envelope_recipient_wins_over_headers(gw, departments):
    raw = make_mail(to="support@example.com")
    result = ingest(gw, raw, Envelope("smtp", "c@x", ("billing@example.com",)))
    assert ticket(gw, result.ticket).department.key == "billing"


def test_delivered_to_and_plus_address(gw, departments):
    raw = b"Delivered-To: support+vip@example.com\r\n" + make_mail(to="list@lists.example")
    result = ingest(gw, raw, PIPE)
    assert ticket(gw, result.ticket).department.key == "support"
    assert any("+tag vip" in line for line in result.trace)


def test_unknown_recipient_is_quarantined_and_retry_succeeds_after_mapping(gw, departments):
    from mailgate.models import Address
    from mailgate.pipeline import retry_quarantined

    result = ingest(gw, make_mail(to="sales@example.com"), PIPE)
    assert result.outcome == "quarantined" and "no department" in result.reason
    with gw.db.unit_of_work() as session:
        session.add(Address(address="sales@example.com",
                            department=ops.department_by_key(session, "billing")))
    retried = retry_quarantined(gw, result.quarantine_id)
    assert retried.outcome == "new"
    with gw.db.unit_of_work() as session:
        entry = session.get(Quarantine, result.quarantine_id)
        assert entry.resolved_at is not None and entry.resolution.startswith("retried: new")


def test_catch_all_department(gw, departments):
    gw.settings = gw.settings.replace(routing={"catch_all": "support"})
    result = ingest(gw, make_mail(to="whoever@example.com"), PIPE)
    assert result.outcome == "new"
    assert any("catch-all" in line for line in result.trace)


@pytest.mark.parametrize("headers,category", [
    ({"auto_submitted": "auto-replied"}, "auto_reply"),
    ({"x_autoreply": "yes"}, "auto_reply"),
    ({"precedence": "bulk"}, "list"),
    ({"list_id": "<users.lists.example>"}, "list"),
])
def test_automatic_mail_never_opens_a_ticket_unless_list(gw, departments, headers, category):
    result = ingest(gw, make_mail(**headers), PIPE)
    assert any(line.startswith(f"guard: {category}") for line in result.trace)
    if category == "list":
        assert result.outcome == "new"
    else:
        assert result.outcome == "ignored" and count(gw, Ticket) == 0


def test_auto_reply_to_a_ticket_is_appended_quietly(gw, departments):
    first = ingest(gw, make_mail(), PIPE)
    with gw.db.unit_of_work() as session:
        ops.set_status(session, ops.get_ticket(session, first.ticket), "answered", "agent")
    ooo = ingest(gw, make_mail(subject=f"Out of office: Re: [MG#{first.ticket}]",
                               auto_submitted="auto-replied"), PIPE)
    assert (ooo.outcome, ooo.ticket) == ("appended", first.ticket)
    t = ticket(gw, first.ticket)
    assert t.status == "answered" and t.messages[-1].automatic


def test_mail_from_our_own_address_is_a_loop(gw, departments):
    result = ingest(gw, make_mail(sender="support@example.com"), PIPE)
    assert result.outcome == "ignored" and result.reason == "mail loop"
    marked = ingest(gw, make_mail(x_mailgate_loop="mailgate-test"), PIPE)
    assert marked.outcome == "ignored"
    many = b"".join(b"Received: from hop%d\r\n" % i for i in range(101)) + make_mail()
    assert ingest(gw, many, PIPE).outcome == "ignored"
    assert count(gw, Ticket) == 0


def _dsn(original_id: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.org\r\nTo: bounces@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; customer@example.org\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@example.com\r\nMessage-ID: {original_id}\r\nSubject: x\r\n"
        "--B--\r\n").encode()


def test_bounce_about_our_message_is_an_event_not_a_ticket(gw, departments):
    first = ingest(gw, make_mail(), PIPE)
    with gw.db.unit_of_work() as session:
        t = ops.get_ticket(session, first.ticket)
        session.add(Message(ticket=t, direction="out", kind="system",
                            message_id="<ack-1@mailgate.example.com>", subject="ack"))
    result = ingest(gw, _dsn("<ack-1@mailgate.example.com>"), Envelope("smtp", "", ()))
    assert (result.outcome, result.ticket) == ("bounce", first.ticket)
    events = [e for e in ticket(gw, first.ticket).events if e.kind == "bounce"]
    assert len(events) == 1 and "5.1.1" in events[0].detail
    assert count(gw, Ticket) == 1
    unknown = ingest(gw, _dsn("<someone-else@x>").replace(b"dsn-1", b"dsn-2"), PIPE)
    assert unknown.outcome == "ignored" and count(gw, Ticket) == 1


def test_attachments_stored_by_hash_refused_ones_recorded(gw, departments):
    pdf = b"%PDF-1.4\n" + b"x" * 1000
    exe = b"MZ\x90\x00" + b"\x00" * 100
    raw = make_mail(attachments=[("../../etc/passwd\x00.pdf", "application/pdf", pdf),
                                 ("invoice.pdf", "application/pdf", exe),
                                 ("big.pdf", "application/pdf", b"%PDF-" + b"0" * 3000)])
    gw.settings = gw.settings.replace(limits={"max_attachment_size": 2000})
    result = ingest(gw, raw, PIPE)
    t = ticket(gw, result.ticket)
    [stored] = t.messages[0].attachments
    assert stored.filename == "passwd.pdf" or "/" not in stored.filename
    path = gw.storage.attachments.root / stored.stored_name
    assert path.resolve().is_relative_to(gw.storage.attachments.root.resolve())
    assert path.read_bytes() == pdf and stored.sniffed_type == "application/pdf"
    refused = {e.new_value: e.detail for e in t.events if e.kind == "attachment_refused"}
    assert "x-msdownload" in refused["invoice.pdf"]
    assert "exceeds the limit" in refused["big.pdf"]
    assert count(gw, Attachment) == 1


def test_same_attachment_twice_is_stored_once(gw, departments):
    png = b"\x89PNG\r\n\x1a\n" + b"p" * 500
    ingest(gw, make_mail(attachments=[("a.png", "image/png", png)]), PIPE)
    ingest(gw, make_mail(attachments=[("b.png", "image/png", png)]), PIPE)
    files = [p for p in gw.storage.attachments.root.rglob("*") if p.is_file()]
    assert len(files) == 1 and count(gw, Attachment) == 2


def test_html_body_is_sanitized_and_inline_image_kept(gw, departments):
    html = ('<p onclick="x()">Hi<script>alert(1)</script><img src="cid:logo@x">'
            '<img src="https://tracker.example/p.gif"><a href="javascript:alert(1)">x</a></p>')
    raw = make_mail(html=html)
    result = ingest(gw, raw, PIPE)
    stored = ticket(gw, result.ticket).messages[0].html_body
    assert "<script" not in stored and "onclick" not in stored and "javascript:" not in stored
    assert 'src="cid:logo@x"' in stored and "tracker.example" not in stored


def test_header_injection_in_subject_stays_one_line(gw, departments):
    raw = make_mail().replace(b"Subject: Printer on fire",
                              b"Subject: =?UTF-8?Q?Hi=0D=0ABcc:_victim@example.org?=")
    result = ingest(gw, raw, PIPE)
    t = ticket(gw, result.ticket)
    assert "\n" not in t.subject and "\r" not in t.subject
    assert t.subject == "Hi Bcc: victim@example.org"


def test_raw_utf8_subject_and_name_are_kept(gw, departments):
    """Mail written with raw UTF-8 headers (RFC 6532; swaks and many mailers send it)."""
    raw = make_mail(sender="customer@example.org").replace(
        b"Subject: Printer on fire", "Subject: چاپگر کار نمی‌کند".encode())
    raw = raw.replace(b"From: customer@example.org",
                      'From: "شیرین" <customer@example.org>'.encode(), 1)
    t = ticket(gw, ingest(gw, raw, PIPE).ticket)
    assert t.subject == "چاپگر کار نمی\u200cکند"
    assert t.messages[0].author_name == "شیرین"


def test_failure_after_ticket_insert_leaves_nothing_half_applied(gw, departments, monkeypatch):
    import mailgate.pipeline.apply

    real = mailgate.pipeline.apply.tickets.create_ticket

    def create_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("injected failure after the ticket insert")

    monkeypatch.setattr(mailgate.pipeline.apply.tickets, "create_ticket", create_then_fail)
    raw = make_mail()
    result = ingest(gw, raw, PIPE)
    assert result.outcome == "quarantined" and "injected failure" in result.reason
    assert count(gw, Ticket) == 0 and count(gw, Message) == 0
    assert count(gw, Quarantine) == 1
    assert count(gw, TicketEvent) == 0
    monkeypatch.undo()
    from mailgate.pipeline import retry_quarantined

    assert retry_quarantined(gw, result.quarantine_id).outcome == "new"
    assert ingest(gw, raw, PIPE).outcome == "duplicate"
    assert count(gw, Ticket) == 1


def test_retry_keeps_the_imap_mailboxs_department(gw, departments, monkeypatch):
    """Mail from an IMAP mailbox whose address routes nowhere goes to the mailbox's
    department; a retry from quarantine must still know that department."""
    import mailgate.pipeline.apply
    from mailgate.pipeline import retry_quarantined

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(mailgate.pipeline.apply.tickets, "create_ticket", fail)
    raw = make_mail(to="old-alias@example.com")
    held = ingest(gw, raw, Envelope("imap", None, (), "billing"))
    assert held.outcome == "quarantined"
    monkeypatch.undo()
    result = retry_quarantined(gw, held.quarantine_id)
    assert result.outcome == "new"
    assert ticket(gw, result.ticket).department.key == "billing"


def test_message_without_sender_is_quarantined_as_unusable(gw, departments):
    result = ingest(gw, b"Subject: no from\r\n\r\nbody\r\n", PIPE)
    assert result.outcome == "quarantined" and result.unusable


def test_limits_quarantine_before_parsing(gw, departments):
    gw.settings = gw.settings.replace(limits={"max_addresses": 50})
    many = ", ".join(f"u{i}@example.org" for i in range(60))
    result = ingest(gw, make_mail(cc=many), PIPE)
    assert result.outcome == "quarantined" and "addresses exceed" in result.reason
    with gw.db.unit_of_work() as session:
        assert session.get(Quarantine, result.quarantine_id).error_class == "limit"


def test_tnef_winmail_dat_is_unpacked(gw, departments):
    from tests.tnef_sample import winmail_dat

    raw = make_mail(attachments=[("winmail.dat", "application/ms-tnef", winmail_dat())])
    result = ingest(gw, raw, PIPE)
    [att] = ticket(gw, result.ticket).messages[0].attachments
    assert (att.filename, att.sniffed_type) == ("report.pdf", "application/pdf")
    assert (gw.storage.attachments.root / att.stored_name).read_bytes().startswith(b"%PDF-1.4")


def test_a_charset_repair_is_in_the_trace(gw, departments):
    """Text declared in one charset but read as another says so in `message explain`."""
    body = "Grüße aus München, die Lieferung ist fällig, bitte prüfen".encode("latin-1")
    head, _, _ = make_mail().replace(b"Content-Transfer-Encoding: 7bit",
                                     b"Content-Transfer-Encoding: 8bit").partition(b"\r\n\r\n")
    raw = head + b"\r\n\r\n" + body + b"\r\n"  # declared utf-8, written in Latin-1
    result = ingest(gw, raw, PIPE)
    assert any(line.startswith("parse: text declared") for line in result.trace), result.trace
