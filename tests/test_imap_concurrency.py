"""The IMAP poller with several messages in the pipeline at once: filed away and
remembered in UID order, each only after its own outcome is durable, never past a
message that was not handled (`inorder.InOrder` alone, then against a real Dovecot)."""
from __future__ import annotations

import threading
import time

from imapclient import IMAPClient

from mailgate.errors import TemporaryFailure
from mailgate.inbound.delivery import DeliveryPool
from mailgate.inbound.imap import MailboxPoller
from mailgate.inbound.imap.inorder import InOrder
from mailgate.inbound.intake import Intake
from mailgate.metrics import Metrics
from mailgate.models import ImapState, Inbound, Ticket
from tests.mails import make_mail
from tests.servers.dovecot import dovecot_server  # noqa: F401  (fixture)
from tests.test_imap import PASSWORD, USER, account, count, imap  # noqa: F401  (fixture)


# -- InOrder on its own -------------------------------------------------------------

class Running:
    """How many calls run at once, at most."""

    def __init__(self):
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def feed(line: InOrder, keys, handed: list, started: list | None = None) -> None:
    """What the poller does: wait for room, take what settled, start the next."""
    for key in keys:
        handed.extend(line.ready())
        if line.failed:
            break
        line.start(key, key)
        if started is not None:
            started.append(key)
    handed.extend(line.rest())


def test_results_come_back_in_order_though_they_finish_in_reverse():
    running, finished = Running(), []

    def work(key, value):
        with running:
            time.sleep(0.02 * (3 - key % 4))  # in each group of four, the last finishes first
        finished.append(key)
        return value * 10

    handed = []
    with InOrder(work, limit=4) as line:
        feed(line, range(12), handed)
    assert handed == [(k, k * 10) for k in range(12)]
    assert finished != sorted(finished)
    assert running.most == 4 and line.failure is None


def test_the_first_failure_ends_the_line_after_those_in_flight_settle():
    finished = []

    def work(key, value):
        if key == 4:
            time.sleep(0.2)  # the ones after it finish first
            raise TemporaryFailure("database: simulated outage")
        finished.append(key)
        return key

    handed, started = [], []
    with InOrder(work, limit=3) as line:
        feed(line, range(20), handed, started)
        assert sorted(finished + [4]) == started  # every one started has settled
    assert handed == [(k, k) for k in range(4)]
    assert isinstance(line.failure, TemporaryFailure)
    assert max(finished) > 4  # later ones ran, and are not handed back


def test_a_slow_first_message_holds_back_at_most_a_window():
    release = threading.Event()

    def work(key, value):
        if key == 0:
            release.wait(10)
        return key

    handed, started = [], []
    with InOrder(work, limit=2, window=5) as line:
        feeder = threading.Thread(target=feed, args=(line, range(20), handed, started))
        feeder.start()
        deadline = time.monotonic() + 10
        while len(started) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert started == [0, 1, 2, 3, 4]  # the line is full: no sixth until the first is done
        release.set()
        feeder.join(10)
    assert handed == [(k, k) for k in range(20)]


# -- the poller against Dovecot -------------------------------------------------------

def uid_of(label: str) -> int:
    return int(label.rsplit(":", 1)[1])


def last_uid(gw) -> int:
    with gw.db.unit_of_work() as session:
        state = session.get(ImapState, "support-box")
        return state.last_uid if state else 0


class Recorder:
    """One list of what happened, in order: each message committed by the intake, and
    each message flagged on the server with the last UID remembered at that moment."""

    def __init__(self, gw, server):
        self.gw, self.server = gw, server
        self.events: list[tuple] = []

    def connect(self, account, tokens=None) -> IMAPClient:
        recorder = self

        class Client(IMAPClient):
            def add_flags(self, messages, flags, silent=False):
                recorder.events.append(("flagged", tuple(messages), last_uid(recorder.gw)))
                return super().add_flags(messages, flags, silent)

        client = Client(self.server.host, port=self.server.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client


def test_out_of_order_deliveries_are_flagged_and_remembered_in_uid_order(gw, departments,
                                                                         imap):  # noqa: F811
    uids = [imap.append(USER, PASSWORD, make_mail(subject=f"fast {i}")) for i in range(16)]
    real, recorder, running = Intake(gw, Metrics()), Recorder(gw, imap), Running()

    def intake(raw, envelope, label):
        uid = uid_of(label)
        with running:
            time.sleep(0.05 * (3 - uids.index(uid) % 4))  # each group of four in reverse
            result = real(raw, envelope, label)
        recorder.events.append(("committed", uid))
        return result

    poller = MailboxPoller(account(imap, batch_size=5), intake, gw.db,
                           connector=recorder.connect, concurrency=4)
    assert poller.poll() == 16
    committed = [e[1] for e in recorder.events if e[0] == "committed"]
    flagged = [(e[1][0], e[2], i) for i, e in enumerate(recorder.events) if e[0] == "flagged"]
    assert committed != uids and running.most > 1  # they really ran at once
    assert [uid for uid, _, _ in flagged] == uids  # one by one, in UID order
    for uid, remembered, at in flagged:
        assert ("committed", uid) in recorder.events[:at]  # flagged only after its commit
        assert remembered < uid  # remembered only after it was flagged ...
        flagged_before = {u for u, _, earlier in flagged if earlier < at}
        assert {u for u in uids if u <= remembered} <= flagged_before
    assert last_uid(gw) == uids[-1]  # ... and never past one that was not
    assert count(gw, Ticket) == 16
    poller.close()


def test_a_failure_in_the_middle_flags_and_remembers_nothing_past_it(gw, departments,
                                                                     imap):  # noqa: F811
    uids = [imap.append(USER, PASSWORD, make_mail(subject=f"m{i}")) for i in range(30)]
    real, outage, delivered = Intake(gw, Metrics()), threading.Event(), []
    outage.set()

    def intake(raw, envelope, label):
        uid = uid_of(label)
        delivered.append(uid)
        if uid == uids[4] and outage.is_set():
            time.sleep(0.5)  # those after it, in flight, are committed first
            raise TemporaryFailure("database: simulated outage")
        return real(raw, envelope, label)

    poller = MailboxPoller(account(imap, batch_size=8), intake, gw.db, concurrency=4)
    assert poller.poll() == 0 and poller.failures == 1  # a failed pass: four handled, though
    seen = {uid for uid, flags in imap.fetch_flags(USER, PASSWORD).items() if "\\Seen" in flags}
    assert seen == set(uids[:4]) and last_uid(gw) == uids[3]
    past = count(gw, Inbound) - 4  # committed in flight after the failed one: not flagged
    assert past >= 1
    assert set(delivered) <= set(uids[:4 + 16])  # no further than a window of 4 x 4

    outage.clear()
    poller.next_attempt = 0  # skip the backoff wait
    assert poller.poll() == 26
    assert count(gw, Ticket) == 30 and count(gw, Inbound, Inbound.outcome == "new") == 30
    assert count(gw, Inbound, Inbound.outcome == "duplicate") == past  # refetched, no ticket
    assert all("\\Seen" in flags for flags in imap.fetch_flags(USER, PASSWORD).values())
    assert last_uid(gw) == uids[-1]
    poller.close()


def test_close_stops_after_the_messages_in_flight(gw, departments, imap):  # noqa: F811
    uids = [imap.append(USER, PASSWORD, make_mail(subject=f"m{i}")) for i in range(12)]
    real, gate, in_hand, started = Intake(gw, Metrics()), threading.Event(), threading.Event(), []

    def intake(raw, envelope, label):
        started.append(uid_of(label))
        if len(started) == 4:
            in_hand.set()
        gate.wait(10)
        return real(raw, envelope, label)

    poller = MailboxPoller(account(imap, batch_size=20), intake, gw.db, concurrency=4)
    polling = threading.Thread(target=poller.poll)
    polling.start()
    assert in_hand.wait(10)
    closing = threading.Thread(target=poller.close)
    closing.start()
    assert poller.stopped.wait(5)
    gate.set()
    closing.join(30)
    polling.join(30)
    assert sorted(started) == uids[:4]
    seen = {uid for uid, flags in imap.fetch_flags(USER, PASSWORD).items() if "\\Seen" in flags}
    assert seen == set(uids[:4]) and last_uid(gw) == uids[3]
    assert count(gw, Ticket) == 4


def test_the_intake_says_how_many_messages_it_delivers_at_once(gw):
    assert Intake(gw, Metrics()).concurrency == 1  # in-process: on the caller's thread
    pool = DeliveryPool(gw, 3)  # no worker started
    try:
        assert Intake(gw, Metrics(), pool.ingest).concurrency == 3
    finally:
        pool.close()
