"""Outbound mail through the durable outbox, against a real SMTP relay on loopback."""
from __future__ import annotations

import email
import email.policy
import threading

import pytest
from sqlalchemy import func, select

from mailgate import tickets as ops
from mailgate.gateway import Gateway
from mailgate.models import (Address, Agent, Contact, Department, Outbox, Suppression,
                             Ticket)
from mailgate.outbound import notify
from mailgate.outbound.sender import OutboxSender
from mailgate.pipeline import Envelope, ingest
from tests.mails import make_mail
from tests.servers.clock import Clock
from tests.servers.relay import RecordingRelay

PIPE = Envelope("pipe")
CUSTOMER = "customer@example.org"


@pytest.fixture
def relay():
    server = RecordingRelay().start()
    yield server
    server.stop()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def mgw(settings, parser_pool, relay, clock, departments):
    """A gateway whose outbound mail goes to the recording relay."""
    settings = settings.replace(outbound={
        "transport": "smtp", "relay_host": "127.0.0.1", "relay_port": relay.port,
        "relay_security": "none", "bounce_address": "bounces@example.com",
        "hostname": "mg.example.com", "retry_base": 60.0, "max_attempts": 3})
    gateway = Gateway(settings, parser=parser_pool, clock=clock)
    yield gateway
    gateway.close()


def support_only(gw) -> None:
    """A support@ department with no agents: each message queues its acknowledgement only."""
    with gw.db.unit_of_work() as session:
        session.add(Address(address="support@example.com",
                            department=Department(key="support", name="Support")))


@pytest.fixture
def pg_gw(pg_url, tmp_path, parser_pool):
    """A gateway on PostgreSQL (its advisory locks), emptied, with `support_only`."""
    from mailgate.config import Settings
    from tests.conftest import _truncate_all

    gateway = Gateway(Settings().replace(database={"url": pg_url},
                                         storage={"dir": tmp_path / "var", "fsync": False}),
                      parser=parser_pool)
    _truncate_all(gateway.db)
    support_only(gateway)
    yield gateway
    gateway.close()


def send_all(gw) -> int:
    return OutboxSender(gw).run_once()


def outbox(gw, *where) -> list[Outbox]:
    with gw.db.unit_of_work() as session:
        return list(session.scalars(select(Outbox).where(*where).order_by(Outbox.id)))


def strict(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.strict)


def test_acknowledgement_arrives_threaded_with_token_and_both_parts(mgw, relay):
    result = ingest(mgw, make_mail(message_id="<first@client.example.org>"), PIPE)
    assert send_all(mgw) == 2  # ack to the customer, notification to the agent
    [ack] = relay.to(CUSTOMER)
    msg = strict(ack.raw)
    assert f"[MG#{result.ticket}]" in msg["Subject"]
    assert msg["In-Reply-To"] == "<first@client.example.org>"
    assert "<first@client.example.org>" in msg["References"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["From"].addresses[0].addr_spec == "support@example.com"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "##-" in msg.get_body(("plain",)).get_content()
    [row] = outbox(mgw, Outbox.kind == "ack")
    assert msg["Message-ID"] == row.message_id
    assert ack.mail_from.startswith(f"bounces+o{row.id}.")  # VERP, with its keyed tag
    assert ack.mail_from.endswith("@example.com")
    [note] = relay.to("agent@example.com")
    assert strict(note.raw)["Auto-Submitted"] == "auto-generated"


def reply_to(received, body: str, subject: str | None = None, keep_headers: bool = True,
             sender: str = f"Customer <{CUSTOMER}>") -> bytes:
    """A reply built from a received message, as a mail client does."""
    original = received.message
    headers = {}
    if keep_headers:
        headers = {"in_reply_to": original["Message-ID"],
                   "references": f"{original.get('References', '')} {original['Message-ID']}"}
    return make_mail(sender=sender, to=str(original["From"]),
                     subject=subject or f"Re: {original['Subject']}", body=body, **headers)


def test_customer_reply_to_the_acknowledgement_threads(mgw, relay):
    first = ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    [ack] = relay.to(CUSTOMER)
    reply = ingest(mgw, reply_to(ack, "Here is more information."), PIPE)
    assert (reply.outcome, reply.ticket) == ("appended", first.ticket)
    # a client that rewrote the subject keeps only In-Reply-To
    lost = ingest(mgw, reply_to(ack, "Again.", subject="Printer"), PIPE)
    assert (lost.outcome, lost.ticket) == ("appended", first.ticket)
    assert any("In-Reply-To" in line for line in lost.trace)


def test_what_a_reply_causes_threads_on_that_reply(mgw, relay):
    """A customer's reply that reopens their resolved ticket and carries a refused file:
    the status mail and the rejection notice answer that reply (written in the same
    flush as they are); a later reply without a Message-ID is answered on their newest
    one that has one."""
    first = ingest(mgw, make_mail(message_id="<first@client.example.org>"), PIPE)
    with mgw.db.unit_of_work() as session:
        ops.set_status(session, ops.get_ticket(session, first.ticket), "resolved", "agent")
    send_all(mgw)
    [ack] = relay.to(CUSTOMER)
    exe = [("setup.exe", "application/octet-stream", b"MZ" + b"\0" * 64)]
    reply = make_mail(subject=f"Re: {strict(ack.raw)['Subject']}", attachments=exe,
                      message_id="<again@client.example.org>")
    result = ingest(mgw, reply, PIPE)
    assert (result.outcome, result.ticket) == ("appended", first.ticket)
    send_all(mgw)
    mails = [strict(r.raw) for r in relay.to(CUSTOMER)[1:]]
    kinds = {row.message_id: row.kind for row in outbox(mgw)}
    assert sorted(kinds[m["Message-ID"]] for m in mails) == ["rejection", "status_change"]
    assert {m["In-Reply-To"] for m in mails} == {"<again@client.example.org>"}
    assert all(m["References"].split()[-1] == "<again@client.example.org>" for m in mails)
    without_id = make_mail(subject=f"Re: {strict(ack.raw)['Subject']}", attachments=exe)
    without_id = b"".join(line for line in without_id.splitlines(keepends=True)
                          if not line.startswith(b"Message-ID:"))
    assert (ingest(mgw, without_id, PIPE).outcome) == "appended"
    send_all(mgw)
    [notice] = [strict(r.raw) for r in relay.to(CUSTOMER)[3:]]
    assert notice["In-Reply-To"] == "<again@client.example.org>"


def test_relay_down_queues_and_delivers_once_it_is_back(mgw, relay, clock):
    relay.stop()
    ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    rows = outbox(mgw)
    assert {r.status for r in rows} == {"pending"} and all(r.attempts == 1 for r in rows)
    assert send_all(mgw) == 0  # not due yet: backoff
    relay.start()
    clock.advance(minutes=2)
    assert send_all(mgw) == 2
    assert {r.status for r in outbox(mgw)} == {"sent"}
    assert len(relay.received) == 2


def test_permanent_refusal_is_recorded_and_not_retried(mgw, relay, clock):
    relay.answer = "554 5.7.1 Message refused"
    result = ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    clock.advance(hours=7)
    assert send_all(mgw) == 0
    ack = outbox(mgw, Outbox.kind == "ack")[0]
    assert ack.status == "failed" and "554" in ack.last_error and ack.attempts == 1
    with mgw.db.unit_of_work() as session:
        events = [e.kind for e in ops.get_ticket(session, result.ticket).events]
        assert "delivery_failed" in events
        assert session.get(Suppression, CUSTOMER).hard_bounces == 1


def test_temporary_failures_stop_after_max_attempts(mgw, relay, clock):
    relay.answer = "451 4.3.0 try later"
    ingest(mgw, make_mail(), PIPE)
    for _ in range(5):
        send_all(mgw)
        clock.advance(hours=7)
    ack = outbox(mgw, Outbox.kind == "ack")[0]
    assert (ack.status, ack.attempts) == ("failed", 3)


@pytest.mark.parametrize("subject,name", [
    ("Hello\r\nBcc: victim@example.net", "Eve\r\nBcc: victim@example.net"),
    ("=?UTF-8?Q?Hi=0ABcc:_victim@example.net?=", "=?UTF-8?Q?Eve=0ACc:_victim@example.net?="),
    ("Hi\u2028Bcc: victim@example.net", "Eve\u2029Cc: victim@example.net"),
    ("{{7*7}} {% raw %}", "{{ config }}"),
])
def test_user_data_cannot_inject_headers_or_recipients(mgw, relay, subject, name):
    """Hostile text in every place that ends up in a header: the ticket subject, the
    department's display name (From), an attachment's filename."""
    pdf = b"%PDF-1.4 x"
    result = ingest(mgw, make_mail(attachments=[("report.pdf", "application/pdf", pdf)]),
                    PIPE)
    with mgw.db.unit_of_work() as session:
        t = ops.get_ticket(session, result.ticket)
        t.subject = subject  # worst case: raw text straight into the templates
        t.requester.name = name
        t.department.name = name
        t.messages[0].attachments[0].filename = name + ".pdf"
        session.query(Outbox).delete()
        session.flush()
        notify.status_changed(session, mgw.settings, t, "new", "resolved", reason=subject,
                              now=mgw.now())
        notify.after_customer_reply(session, mgw.settings, t, t.messages[0], True, [],
                                    mgw.now())
    assert send_all(mgw) == 2, [(r.kind, r.status, r.last_error) for r in outbox(mgw)]
    allowed = {"from", "to", "subject", "date", "message-id", "in-reply-to", "references",
               "auto-submitted", "x-auto-response-suppress", "x-mailgate-loop",
               "x-mailgate-ticket", "mime-version", "content-type",
               "content-transfer-encoding"}
    for item in relay.received:
        msg = strict(item.raw)
        assert item.rcpt_tos in ([CUSTOMER], ["agent@example.com"])
        assert {k.lower() for k in msg.keys()} <= allowed
        assert len(msg.get_all("To")) == 1 and len(msg.get_all("Subject")) == 1
        assert [a.addr_spec for a in msg["To"].addresses] == item.rcpt_tos
        assert "\n" not in msg["Subject"] and "\u2028" not in msg["Subject"]
        assert "victim" not in str(msg["To"])
        if "{{7*7}}" in subject:
            assert "{{7*7}}" in msg["Subject"] and "49" not in msg["Subject"]
        for part in msg.iter_attachments():
            assert {k.lower() for k in part.keys()} <= {
                "content-type", "content-transfer-encoding", "content-disposition",
                "mime-version"}
            assert "\n" not in (part.get_filename() or "")


def dsn(to: str, original_id: str, recipient: str = CUSTOMER, status: str = "5.1.1") -> bytes:
    return (f"From: MAILER-DAEMON@mx.example.org\r\nTo: {to}\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
            f"Message-ID: <dsn-{original_id.strip('<>')}-{status}@mx.example.org>\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.org\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: {original_id}\r\nSubject: x\r\n--B--\r\n").encode()


def test_bounce_to_the_verp_address_is_linked_and_opens_no_ticket(mgw, relay):
    result = ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    [ack] = relay.to(CUSTOMER)
    bounce = ingest(mgw, dsn(ack.mail_from, strict(ack.raw)["Message-ID"]),
                    Envelope("smtp", "", (ack.mail_from,)))
    assert (bounce.outcome, bounce.ticket) == ("bounce", result.ticket)
    with mgw.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        t = ops.get_ticket(session, result.ticket)
        [event] = [e for e in t.events if e.kind == "bounce"]
        assert "5.1.1" in event.detail
    assert outbox(mgw, Outbox.kind == "ack")[0].status == "bounced"


def test_repeated_hard_bounces_suppress_the_address(mgw, relay):
    for i in range(3):
        ingest(mgw, make_mail(subject=f"try {i}"), PIPE)
        send_all(mgw)
        ack = relay.to(CUSTOMER)[-1]
        ingest(mgw, dsn(ack.mail_from, strict(ack.raw)["Message-ID"]),
               Envelope("smtp", "", (ack.mail_from,)))
    with mgw.db.unit_of_work() as session:
        assert session.get(Suppression, CUSTOMER).suppressed
    before = len(relay.to(CUSTOMER))
    ingest(mgw, make_mail(subject="after suppression"), PIPE)
    send_all(mgw)
    assert len(relay.to(CUSTOMER)) == before


def test_a_new_ticket_asks_once_whom_to_spare_and_spares_each(mgw, relay):
    """The acknowledgement's and the agents' recipients are looked up in one query; a
    suppressed requester gets no acknowledgement, a suppressed agent no notification,
    and the others theirs."""
    from sqlalchemy import event

    with mgw.db.unit_of_work() as session:
        support = session.scalar(select(Department).where(Department.key == "support"))
        support.agents.append(Agent(email="second@example.com", name="Second"))
        agents = sorted(a.email for a in support.agents)
        session.add(Suppression(address=agents[0], hard_bounces=3, suppressed=True))
    asked = []

    def count(conn, cursor, statement, *args):
        if "FROM suppressions" in statement:
            asked.append(statement)

    event.listen(mgw.db.engine, "before_cursor_execute", count)
    try:
        ingest(mgw, make_mail(subject="first"), PIPE)
    finally:
        event.remove(mgw.db.engine, "before_cursor_execute", count)
    assert len(asked) == 1
    send_all(mgw)
    assert len(relay.to(CUSTOMER)) == 1 and not relay.to(agents[0])
    assert len(agents) == 2 and len(relay.to(agents[1])) == 1
    with mgw.db.unit_of_work() as session:
        session.add(Suppression(address=CUSTOMER, hard_bounces=3, suppressed=True))
    ingest(mgw, make_mail(subject="second"), PIPE)
    send_all(mgw)
    assert len(relay.to(CUSTOMER)) == 1 and not relay.to(agents[0])


def test_autoresponder_peer_cannot_loop_more_than_the_hourly_limit(mgw, relay):
    """The peer answers everything it gets, without Auto-Submitted and with a fresh
    subject each time (the worst case: every answer opens a new ticket)."""
    answered = []

    def autoresponder(item):
        if CUSTOMER in item.rcpt_tos:
            answered.append(make_mail(subject=f"I am away ({len(answered)})",
                                      body="I am on holiday."))

    relay.hooks.append(autoresponder)
    ingest(mgw, make_mail(), PIPE)
    for _ in range(12):
        send_all(mgw)
        while answered:
            ingest(mgw, answered.pop(), PIPE)
    acks = [r for r in relay.to(CUSTOMER)]
    assert len(acks) == mgw.settings.outbound.ack_limit_per_hour == 5


def test_automatic_mail_gets_no_acknowledgement(mgw, relay):
    ingest(mgw, make_mail(precedence="bulk", list_id="<l.example>"), PIPE)
    send_all(mgw)
    assert relay.to(CUSTOMER) == [] and len(relay.to("agent@example.com")) == 1


def test_status_changes_the_admin_marked_visible_are_mailed(mgw, relay):
    result = ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    with mgw.db.unit_of_work() as session:
        t = ops.get_ticket(session, result.ticket)
        assert notify.status_changed(session, mgw.settings, t, "new", "in_progress",
                                     now=mgw.now()) == []
        rows = notify.status_changed(session, mgw.settings, t, "in_progress", "resolved",
                                     reason="Replaced the toner", now=mgw.now())
        assert len(rows) == 1
    send_all(mgw)
    last = strict(relay.to(CUSTOMER)[-1].raw)
    assert "Replaced the toner" in last.get_body(("plain",)).get_content()


def test_rolled_back_change_queues_nothing(mgw, relay, monkeypatch):
    import mailgate.pipeline.notify

    def fail(*args, **kwargs):
        raise RuntimeError("injected after the outbox rows were added")

    real = mailgate.pipeline.notify.step

    def notify_then_fail(ctx):
        real(ctx)
        assert any(type(row).__name__ == "Outbox" for row in ctx.session.new)
        fail()

    monkeypatch.setattr(mailgate.pipeline.notify, "step", notify_then_fail)
    result = ingest(mgw, make_mail(), PIPE)
    assert result.outcome == "quarantined"
    assert outbox(mgw) == [] and send_all(mgw) == 0


def test_refused_attachment_gets_a_rejection_notice(mgw, relay):
    ingest(mgw, make_mail(attachments=[("setup.exe", "application/octet-stream",
                                        b"MZ\x90\x00" + b"\0" * 100)]), PIPE)
    send_all(mgw)
    kinds = sorted(r.kind for r in outbox(mgw))
    assert kinds == ["ack", "new_ticket", "rejection"]
    notice = [strict(r.raw) for r in relay.to(CUSTOMER) if "setup.exe" in
              strict(r.raw).get_body(("plain",)).get_content()]
    assert len(notice) == 1 and notice[0]["Auto-Submitted"] == "auto-replied"


def test_file_transport_is_the_default(settings, parser_pool, departments):
    gw = Gateway(settings, parser=parser_pool)
    result = ingest(gw, make_mail(), PIPE)
    assert OutboxSender(gw).run_once() == 2
    files = sorted((settings.storage.dir / "outbox").glob("*.eml"))
    assert len(files) == 2
    texts = [f.read_bytes() for f in files]
    assert any(f"[MG#{result.ticket}]".encode() in t and b"X-Envelope-To: <customer@"
               in t for t in texts)


def test_two_senders_never_send_a_row_twice(pg_url, tmp_path, parser_pool, relay):
    """Several daemons share one outbox on PostgreSQL (SKIP LOCKED); on SQLite one daemon."""
    from mailgate.config import Settings
    from tests.conftest import _truncate_all

    settings = Settings().replace(
        database={"url": pg_url}, storage={"dir": tmp_path / "var", "fsync": False},
        outbound={"transport": "smtp", "relay_host": "127.0.0.1", "relay_port": relay.port,
                  "relay_security": "none"})
    gateways = [Gateway(settings, parser=parser_pool) for _ in range(3)]
    _truncate_all(gateways[0].db)
    with gateways[0].db.unit_of_work() as session:
        session.add(Address(address="support@example.com",
                            department=Department(key="support", name="Support")))
    for i in range(30):
        ingest(gateways[0], make_mail(sender=f"c{i}@example.org", subject=f"parallel {i}"),
               PIPE)
    threads = [threading.Thread(target=OutboxSender(g).run_once) for g in gateways]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g in gateways:
        g.close()
    ids = [strict(r.raw)["Message-ID"] for r in relay.received]
    assert len(ids) == 30 and len(set(ids)) == 30  # 30 acks (no agents in the department)


def test_a_claim_passes_over_a_row_another_live_sender_still_holds(pg_gw):
    """On PostgreSQL a row whose lease ran out is taken again only when no live sender
    holds its advisory lock: the claim passes over it and takes the next due row."""
    from mailgate.outbound.claims import LEASE, Claimer

    gw = pg_gw
    for i in range(2):
        ingest(gw, make_mail(sender=f"held{i}@example.org", subject=f"held {i}"), PIPE)
    clock = Clock()
    claims = []  # released at the end, whatever fails (release is idempotent)
    try:
        held = Claimer(gw.db, "host-a", clock).claim(set())  # host A holds the first row
        claims.append(held)
        clock.advance(seconds=LEASE.total_seconds() + 1)  # and its lease runs out
        taken = Claimer(gw.db, "host-b", clock).claim(set())
        claims.append(taken)
        assert held is not None and taken is not None
        assert taken.row.id != held.row.id and taken.row.attempts == 1
        held.release()  # host A is gone: its row can be taken after the lease
        again = Claimer(gw.db, "host-c", clock).claim(set())
        claims.append(again)
        assert again is not None and again.row.id == held.row.id and again.row.attempts == 2
    finally:
        for claim in filter(None, claims):
            claim.release()


def test_a_busy_claimer_takes_a_lapsed_lease_within_a_second(gw):
    """Pending rows come first, but a claimer looks at lapsed leases (another host's
    sender gone for good) first once every LAPSED_LOOK seconds, and whenever nothing
    is pending: a backlog never keeps a lapsed row waiting."""
    import time

    from mailgate.outbound.claims import LAPSED_LOOK, LEASE, Claimer

    support_only(gw)
    for i in range(3):
        ingest(gw, make_mail(sender=f"busy{i}@example.org", subject=f"busy {i}"), PIPE)
    clock = Clock()
    lapsed = Claimer(gw.db, "host-a", clock).claim(set())
    lapsed.release()  # host A is gone; its row stays `sending` under its name
    clock.advance(seconds=LEASE.total_seconds() + 1)
    claimer = Claimer(gw.db, "host-b", clock)
    claims = []
    try:
        claimer._lapsed_looked = time.monotonic()  # it has just looked
        claims.append(claimer.claim(set()))
        assert claims[-1].row.id != lapsed.row.id  # a pending row first
        claimer._lapsed_looked -= LAPSED_LOOK  # a second later
        claims.append(claimer.claim(set()))
        assert claims[-1].row.id == lapsed.row.id and claims[-1].row.attempts == 2
        claims.append(claimer.claim(set()))  # the last pending row
        assert claims[-1] is not None and claimer.claim(set()) is None
    finally:
        for claim in filter(None, claims):
            claim.release()


def test_a_claim_locks_the_row_it_takes_and_no_other(pg_gw):
    """The claim's UPDATE tries the advisory lock of the row it takes only: on a small
    outbox PostgreSQL scans the table and tests the lock on each row before its id, and
    a lock taken on every row would keep every other sender off them."""
    from sqlalchemy import event, text

    from mailgate.outbound.claims import LOCK_SPACE, Claimer

    gw = pg_gw
    for i in range(6):
        ingest(gw, make_mail(sender=f"few{i}@example.org", subject=f"few {i}"), PIPE)
    gw.db.engine.dispose()  # new connections that plan as for a small table: a scan

    @event.listens_for(gw.db.engine, "connect")
    def scan(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")

    held = text("SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = :space "
                "ORDER BY objid")
    claims = []
    try:
        for host in ("host-a", "host-b"):
            claims.append(Claimer(gw.db, host, Clock()).claim(set()))
            with gw.db.engine.connect() as conn:
                locked = list(conn.execute(held, {"space": LOCK_SPACE}).scalars())
            assert locked == sorted(c.row.id for c in claims)
    finally:
        for claim in filter(None, claims):
            claim.release()


def advisory_locks(gw) -> int:
    """Advisory locks on outbox rows held by anyone (0 on SQLite, which has none)."""
    from sqlalchemy import text

    from mailgate.outbound.claims import LOCK_SPACE

    if not gw.db.is_postgresql:
        return 0
    with gw.db.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                 "AND classid = :space"), {"space": LOCK_SPACE}).scalar()


def outbox_rows(gw) -> dict[int, tuple[str, int, str | None]]:
    with gw.db.unit_of_work() as session:
        return {row.id: (row.status, row.attempts, row.claimed_by)
                for row in session.scalars(select(Outbox))}


def test_rows_claimed_together_are_taken_in_turn_and_one_given_back_as_it_was(gw):
    """One claim takes up to a few due rows in one transaction, in the order they are
    due (on PostgreSQL each under its own advisory lock); the next claimer takes the
    next ones. A row given back (claimed, never attempted) is pending again with its
    attempt not counted and no lock, and the next claim takes it."""
    from mailgate.outbound.claims import Claimer, give_back

    support_only(gw)
    for i in range(5):
        ingest(gw, make_mail(sender=f"turn{i}@example.org", subject=f"turn {i}"), PIPE)
    ids = sorted(outbox_rows(gw))
    clock = Clock()
    claims = []
    try:
        first = Claimer(gw.db, "host-a", clock).claim_some(set(), 3)
        claims += first
        second = Claimer(gw.db, "host-b", clock).claim_some(set(), 3)
        claims += second
        assert [c.row.id for c in first] == ids[:3] and [c.row.id for c in second] == ids[3:]
        assert all(c.row.attempts == 1 for c in claims)
        assert advisory_locks(gw) == (5 if gw.db.is_postgresql else 0)
        give_back(first[2:])
        assert outbox_rows(gw)[ids[2]] == ("pending", 0, None)
        assert advisory_locks(gw) == (4 if gw.db.is_postgresql else 0)
        again = Claimer(gw.db, "host-c", clock).claim_some(set(), 3)
        claims += again
        assert [(c.row.id, c.row.attempts) for c in again] == [(ids[2], 1)]
    finally:
        for claim in claims:
            claim.release()
    assert advisory_locks(gw) == 0


def test_a_stopping_worker_gives_back_the_rows_it_did_not_reach(gw):
    """The daemon stops while a worker delivers the first of the rows it claimed: it
    finishes that one and puts the others back as they were, for the next sender to
    send once each, with one attempt each."""
    from mailgate.outbound.delivery import Link

    support_only(gw)
    for i in range(4):
        ingest(gw, make_mail(sender=f"stop{i}@example.org", subject=f"stop {i}"), PIPE)
    ids = sorted(outbox_rows(gw))
    sender = OutboxSender(gw, workers=1)
    attempt = sender.delivery.attempt

    def stopped_meanwhile(row, link):
        sender.wakeups.stop()
        return attempt(row, link)

    sender.delivery.attempt = stopped_meanwhile
    link = Link(sender.transport)
    try:
        assert sender._step(link, 4) == 1  # one worker's step, as the daemon runs it
    finally:
        link.close()
    stored = outbox_rows(gw)
    assert stored[ids[0]] == ("sent", 1, sender.presence.token)
    assert [stored[i] for i in ids[1:]] == [("pending", 0, None)] * 3
    assert advisory_locks(gw) == 0
    assert OutboxSender(gw).run_once() == 3
    assert {value[:2] for value in outbox_rows(gw).values()} == {("sent", 1)}
    assert len(list(gw.settings.outbox_dir.glob("*.eml"))) == 4


def test_the_outcomes_of_rows_claimed_together_are_recorded_in_one_transaction(mgw, relay):
    """A worker's step: one transaction claims a message's acknowledgement and the
    agent's notification and those of another message, each is delivered or put off,
    and one transaction records all four outcomes — a delivery sent, a relay's 451
    back to pending for later — and gives back every lock."""
    from sqlalchemy import event

    from mailgate.outbound.delivery import Link

    ingest(mgw, make_mail(sender="first@example.org", subject="one"), PIPE)
    ingest(mgw, make_mail(sender="later@example.org", subject="two"), PIPE)
    relay.refuse_rcpt["later@example.org"] = "451 4.3.0 try again later"
    sender = OutboxSender(mgw, workers=1)
    sender.ledger.settle(force=True)  # the step's own settle waits a second now
    commits = []
    event.listen(mgw.db.engine, "commit", lambda conn: commits.append(1))
    link = Link(sender.transport)
    try:
        assert sender._step(link, 4) == 4  # one worker's step, as the daemon runs it
    finally:
        link.close()
    assert len(commits) == 2  # the claim, then the four outcomes
    with mgw.db.unit_of_work() as session:
        stored = list(session.scalars(select(Outbox)))
        [put_off] = [r for r in stored if r.recipients == ["later@example.org"]]
        assert (put_off.status, put_off.attempts, put_off.claimed_by) == \
            ("pending", 1, sender.presence.token)
        assert "451" in put_off.last_error and put_off.next_attempt_at > mgw.now()
        sent = [r for r in stored if r is not put_off]
        assert {(r.status, r.attempts) for r in sent} == {("sent", 1)}
        assert len(sent) == 3 and all(r.raw for r in sent)
    assert len(relay.received) == 3 and advisory_locks(mgw) == 0
    assert sender.journal.entries() == []


def test_recording_an_outcome_gives_the_lock_back_while_the_row_is_still_held(pg_gw):
    """On PostgreSQL the outcome's transaction gives the row's advisory lock back before
    it commits (one transaction fewer a mail); until that commit its UPDATE holds the
    row, so a sender whose lease on it ran out still cannot take it."""
    from sqlalchemy import event, text

    from mailgate.outbound import record
    from mailgate.outbound.claims import LEASE, LOCK_SPACE, Claimer
    from mailgate.outbound.outcomes import Delivered

    gw, settings = pg_gw, pg_gw.settings
    ingest(gw, make_mail(sender="window@example.org"), PIPE)  # one ack, no agents
    locks = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                 "AND classid = :space AND objid = :id")
    clock = Clock()
    claim = Claimer(gw.db, "host-a", clock).claim(set())
    seen = {}
    try:
        assert claim is not None
        with gw.db.engine.connect() as other:
            assert other.execute(locks, {"space": LOCK_SPACE, "id": claim.row.id}).scalar() == 1
        clock.advance(seconds=LEASE.total_seconds() + 1)  # another host may try it now

        def before_commit(session):
            with gw.db.engine.connect() as other:
                seen["locks"] = other.execute(
                    locks, {"space": LOCK_SPACE, "id": claim.row.id}).scalar()
            seen["taken"] = Claimer(gw.db, "host-b", clock).claim(set())

        with claim.unit() as session:
            event.listen(session, "before_commit", before_commit)
            assert record.outcome(session, settings, claim.row, Delivered(), b"sent", clock())
        assert seen == {"locks": 0, "taken": None}  # unlocked, yet nobody could take it
        with gw.db.unit_of_work() as session:
            assert session.get(Outbox, claim.row.id).status == "sent"
        assert Claimer(gw.db, "host-b", clock).claim(set()) is None  # sent: nothing due
    finally:
        if claim is not None:
            claim.release()
        if seen.get("taken") is not None:
            seen["taken"].release()


def test_agent_notification_goes_to_team_address_when_set(mgw, relay):
    with mgw.db.unit_of_work() as session:
        session.scalar(select(Department).where(Department.key == "support")).team_address = \
            "team@example.com"
    ingest(mgw, make_mail(), PIPE)
    send_all(mgw)
    assert len(relay.to("team@example.com")) == 1 and relay.to("agent@example.com") == []


def test_a_slow_relay_never_gets_a_claimed_row_sent_twice(mgw, relay, clock):
    """Rows are claimed one at a time, when a worker is free to send them; a delivery
    that outlasts the lease leaves its row with the live sender that holds it."""
    from mailgate.outbound import claims

    for i in range(3):
        ingest(mgw, make_mail(sender=f"slow{i}@example.org", subject=f"slow {i}"), PIPE)
    sender = OutboxSender(mgw)
    deliver = sender.delivery.attempt

    def slow(row, link):
        clock.advance(seconds=claims.LEASE.total_seconds() + 1)
        return deliver(row, link)

    sender.delivery.attempt = slow
    assert sender.run_once(limit=6) == 6  # 3 acks + 3 agent notifications
    rows = outbox(mgw)
    assert [r.status for r in rows] == ["sent"] * 6
    assert all(r.attempts == 1 for r in rows)
    assert len(relay.received) == 6
    assert len({strict(r.raw)["Message-ID"] for r in relay.received}) == 6
