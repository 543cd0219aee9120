"""The IMAP poller against a real Dovecot (tests/servers/dovecot.py)."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from mailgate.config import ImapAccount
from mailgate.errors import TemporaryFailure
from mailgate.inbound.imap import MailboxPoller
from mailgate.inbound.imap.client import batches
from mailgate.inbound.intake import Intake
from mailgate.metrics import Metrics
from mailgate.models import ImapState, Inbound, Quarantine, Ticket
from tests.mails import make_mail
from tests.servers.dovecot import dovecot_server  # noqa: F401  (fixture)

USER, PASSWORD = "support@example.com", "s3cret"


@pytest.fixture
def imap(dovecot_server):  # noqa: F811
    dovecot_server.add_user(USER, PASSWORD)
    return dovecot_server


def account(server, **changes) -> ImapAccount:
    values = dict(name="support-box", host=server.host, port=server.port, security="none",
                  user=USER, password=PASSWORD, department="support", poll_interval=3600,
                  idle=False, batch_size=3, timeout=10)
    values.update(changes)
    return ImapAccount(**values)


def poller_for(gw, server, intake=None, **changes) -> MailboxPoller:
    return MailboxPoller(account(server, **changes), intake or Intake(gw, Metrics()), gw.db)


def count(gw, model, *where) -> int:
    with gw.db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_new_messages_become_tickets_and_are_marked_seen(gw, departments, imap):
    for i in range(7):
        imap.append(USER, PASSWORD, make_mail(subject=f"imap {i}", to="whoever@example.net"))
    poller = poller_for(gw, imap)
    assert poller.poll() == 7
    assert count(gw, Ticket) == 7  # routed by the mailbox's default department
    assert all("\\Seen" in flags for flags in imap.fetch_flags(USER, PASSWORD).values())
    assert poller.poll() == 0
    imap.append(USER, PASSWORD, make_mail(subject="later"))
    assert poller.poll() == 1
    assert count(gw, Ticket) == 8 and count(gw, Inbound, Inbound.outcome != "new") == 0
    poller.close()


def test_move_mode_and_failed_message_goes_to_quarantine_folder(gw, departments, imap):
    imap.append(USER, PASSWORD, make_mail())
    imap.append(USER, PASSWORD, b"Subject: no sender at all\r\n\r\nbody\r\n")
    poller = poller_for(gw, imap, after="move")
    assert poller.poll() == 2
    assert imap.folder_uids(USER, PASSWORD, "INBOX") == []
    assert len(imap.folder_uids(USER, PASSWORD, "Processed")) == 1
    assert len(imap.folder_uids(USER, PASSWORD, "Quarantine")) == 1
    assert count(gw, Ticket) == 1 and count(gw, Quarantine) == 1
    poller.close()


def test_temporary_failure_leaves_the_message_for_the_next_pass(gw, departments, imap):
    real = Intake(gw, Metrics())
    calls = []

    def flaky(raw, envelope, label):
        calls.append(label)
        if len(calls) == 2:
            raise TemporaryFailure("database: simulated outage")
        return real(raw, envelope, label)

    for i in range(3):
        imap.append(USER, PASSWORD, make_mail(subject=f"m{i}"))
    poller = poller_for(gw, imap, intake=flaky)
    assert poller.poll() == 0 and poller.failures == 1  # stopped at the second message
    flags = imap.fetch_flags(USER, PASSWORD)
    assert sorted("\\Seen" in f for f in flags.values()) == [False, False, True]
    poller.next_attempt = 0  # skip the backoff wait
    assert poller.poll() == 2
    assert count(gw, Ticket) == 3
    poller.close()


def test_server_killed_mid_poll_loses_and_duplicates_nothing(gw, departments, imap):
    real = Intake(gw, Metrics())
    handled = []

    def killing(raw, envelope, label):
        result = real(raw, envelope, label)  # committed ...
        handled.append(label)
        if len(handled) == 5:
            imap.kill()  # ... and the server dies before the message is flagged
        return result

    for i in range(12):
        imap.append(USER, PASSWORD, make_mail(subject=f"crash {i}",
                                              message_id=f"<crash-{i}@client.example.org>"))
    poller = poller_for(gw, imap, intake=killing)
    poller.poll()
    assert poller.failures == 1 and count(gw, Ticket) == 5
    assert poller.poll() == 0  # backing off, server still down
    imap.start()
    poller.next_attempt = 0
    poller.poll()
    assert count(gw, Ticket) == 12
    assert count(gw, Inbound, Inbound.outcome == "new") == 12
    assert count(gw, Inbound, Inbound.outcome == "duplicate") == 1  # the fifth, refetched
    assert all("\\Seen" in f for f in imap.fetch_flags(USER, PASSWORD).values())
    poller.close()


def test_uidvalidity_change_rescans(gw, departments, imap):
    poller = poller_for(gw, imap)
    imap.append(USER, PASSWORD, make_mail())
    assert poller.poll() == 1
    with gw.db.unit_of_work() as session:
        state = session.get(ImapState, "support-box")
        state.uidvalidity, state.last_uid = 12345, 10_000  # as if the folder was recreated
    imap.append(USER, PASSWORD, make_mail(subject="after the change"))
    assert poller.poll() == 1
    assert count(gw, Ticket) == 2
    poller.close()


def test_idle_picks_up_new_mail_without_waiting_for_the_interval(gw, departments, imap):
    poller = poller_for(gw, imap, idle=True)
    watcher = threading.Thread(target=poller.watch, kwargs={"check_every": 1}, daemon=True)
    watcher.start()
    time.sleep(1.0)  # the watcher is in IDLE
    imap.append(USER, PASSWORD, make_mail(subject="pushed"))
    deadline = time.monotonic() + 15
    while count(gw, Ticket) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert count(gw, Ticket) == 1
    poller.close()
    watcher.join(10)
    assert not watcher.is_alive()


def test_starttls_requested_but_missing_never_logs_in_in_clear(gw, departments, imap):
    imap.append(USER, PASSWORD, make_mail())
    logged = imap.log_path.read_text()
    poller = poller_for(gw, imap, security="starttls")
    assert poller.poll() == 0 and poller.failures == 1
    assert count(gw, Ticket) == 0
    time.sleep(0.5)  # let Dovecot write its log
    assert "Login:" not in imap.log_path.read_text()[len(logged):]  # no login in clear
    poller.close()


def test_one_broken_account_does_not_stop_another(gw, departments, imap):
    broken = poller_for(gw, imap, name="broken", password="wrong")
    good = poller_for(gw, imap, name="good")
    imap.append(USER, PASSWORD, make_mail())
    assert broken.poll() == 0 and broken.failures == 1
    assert good.poll() == 1
    broken.close()
    good.close()


@pytest.mark.parametrize("sizes, count, limit, expected", [
    ([], 3, 100, []),
    ([(1, 10), (2, 10), (3, 10), (4, 10)], 3, 100, [[1, 2, 3], [4]]),
    ([(1, 60), (2, 30), (3, 20), (4, 10)], 20, 100, [[1, 2], [3, 4]]),
    ([(1, 10), (5, 500), (6, 10)], 20, 100, [[1], [5], [6]]),  # a large one alone
    ([(7, 100), (8, 1)], 20, 100, [[7], [8]]),
])
def test_batches_hold_at_most_count_messages_and_limit_bytes(sizes, count, limit, expected):
    assert list(batches(sizes, count, limit)) == expected


def test_a_message_flagged_quarantined_in_place_is_never_fetched_again(gw, departments, imap):
    imap.append(USER, PASSWORD, b"Subject: no sender at all\r\n\r\nbody\r\n")
    poller = poller_for(gw, imap, after="move", quarantine_folder="")
    assert poller.poll() == 1 and count(gw, Quarantine) == 1
    assert len(imap.folder_uids(USER, PASSWORD, "INBOX")) == 1  # left there, flagged
    with gw.db.unit_of_work() as session:
        session.get(ImapState, "support-box").last_uid = 0  # as after a rescan
    assert poller.poll() == 0 and count(gw, Quarantine) == 1
    poller.close()
