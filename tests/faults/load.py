"""SMTP load as a sending MTA makes it: K sessions, each reused from message to
message, a unique Message-ID per message, and every message that was not answered
250 sent again later (a 4xx, a dropped connection, a timeout). A 5xx is final:
the MTA would bounce the message, so it is counted as refused and not retried.

`acked` holds the Message-IDs answered 250: the daemon's promises, which the
harness checks against the database afterwards.
"""
from __future__ import annotations

import email.utils
import itertools
import random
import smtplib
import threading
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP

RECIPIENT = "support@example.com"
RETRY_AFTER = 0.5  # seconds before an unanswered message is offered again


def build_message(tag: str, n: int) -> tuple[str, bytes]:
    """A small customer mail with a unique Message-ID; each from its own address
    (so every ticket is new and gets its own acknowledgement)."""
    mid = f"<fault-{tag}-{n}-{uuid.uuid4().hex[:12]}@load.example.org>"
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <c{n}.{tag}@d{n % 97}.load.example.org>"
    msg["To"] = RECIPIENT
    msg["Subject"] = f"Fault load {tag} {n}"
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = mid
    msg.set_content(f"Message {n} of the {tag} fault run.\nThe printer is on fire again.\n")
    return mid, msg.as_bytes(policy=SMTP)


class SmtpLoad:
    def __init__(self, port: int, tag: str, connections: int = 4, rate: float = 20.0,
                 timeout: float = 30.0, seed: int = 14):
        self.port, self.tag = port, tag
        self.connections, self.rate, self.timeout = connections, rate, timeout
        self.rng = random.Random(seed)
        self.messages: dict[str, bytes] = {}
        self.acked: set[str] = set()
        self.refused: dict[str, str] = {}  # Message-ID -> the 5xx answer
        self.tempfails = 0  # 4xx answers and broken sessions
        self.retry: list[tuple[float, str]] = []  # (not before, Message-ID)
        self.in_flight = 0
        self.generating = threading.Event()
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._next_slot = time.monotonic()
        self._threads: list[threading.Thread] = []

    # -- control -----------------------------------------------------------------
    def start(self) -> "SmtpLoad":
        self.generating.set()
        self._threads = [threading.Thread(target=self._session_loop, daemon=True,
                                          name=f"load-{n}") for n in range(self.connections)]
        for thread in self._threads:
            thread.start()
        return self

    def finish(self, timeout: float) -> bool:
        """No new messages; resend the unanswered until each has an answer (or
        `timeout`). True when none is left unanswered."""
        self.generating.clear()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.retry and not self.in_flight:
                    break
            time.sleep(0.05)
        self.stopped.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return not self.unanswered()

    def unanswered(self) -> set[str]:
        return set(self.messages) - self.acked - set(self.refused)

    # -- the sessions --------------------------------------------------------------
    def _next(self) -> tuple[str, bytes] | None:
        with self.lock:
            now = time.monotonic()
            if self.retry and self.retry[0][0] <= now:
                _, mid = self.retry.pop(0)
                self.in_flight += 1
                return mid, self.messages[mid]
            if not self.generating.is_set() or now < self._next_slot:
                return None
            self._next_slot = max(self._next_slot + 1 / self.rate, now - 1)
            mid, raw = build_message(self.tag, next(self._numbers))
            self.messages[mid] = raw
            self.in_flight += 1
            return mid, raw

    def _done(self, mid: str, answer: str | None, permanent: bool = False) -> None:
        with self.lock:
            self.in_flight -= 1
            if answer is None:
                self.acked.add(mid)
            elif permanent:
                self.refused[mid] = answer
            else:
                self.tempfails += 1
                self.retry.append((time.monotonic() + RETRY_AFTER, mid))
                self.retry.sort()

    def _session_loop(self) -> None:
        client: smtplib.SMTP | None = None
        while not self.stopped.is_set():
            item = self._next()
            if item is None:
                time.sleep(0.01)
                continue
            mid, raw = item
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", self.port, timeout=self.timeout)
                client.sendmail(f"bounces@{self.tag}.load.example.org", [RECIPIENT], raw)
            except smtplib.SMTPRecipientsRefused as error:
                code, text = next(iter(error.recipients.values()))
                self._done(mid, f"{code} {text!r}", permanent=code >= 500)
                client = _close(client)
            except smtplib.SMTPResponseException as error:
                self._done(mid, f"{error.smtp_code} {error.smtp_error!r}",
                           permanent=error.smtp_code >= 500)
                client = _close(client)
            except (smtplib.SMTPException, OSError) as error:
                self._done(mid, f"{error.__class__.__name__}: {error}")
                client = _close(client)
                time.sleep(0.1)  # the daemon is away: do not spin on connection refused
            else:
                self._done(mid, None)
        _close(client)


def _close(client: smtplib.SMTP | None) -> None:
    if client is not None:
        try:
            client.close()
        except OSError:
            pass
    return None
