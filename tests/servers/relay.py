"""A real SMTP server on loopback (aiosmtpd) that records what it receives: the relay
our outbound mail goes to, or a customer's and an agent's mailbox."""
from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self):
        return email.message_from_bytes(self.raw, policy=email.policy.default)


class _Recorder:
    def __init__(self, relay: "RecordingRelay"):
        self.relay = relay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.relay.refuse_rcpt.get(address):
            return self.relay.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.relay.answer:
            return self.relay.answer
        item = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        with self.relay.lock:
            self.relay.received.append(item)
        for hook in self.relay.hooks:
            hook(item)
        return "250 OK queued"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingRelay:
    # every relay made in this process: the suite-wide leak guard (tests/conftest.py)
    # reads what each one received during a test
    made: list["RecordingRelay"] = []

    def __init__(self):
        RecordingRelay.made.append(self)
        self.port = free_port()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.answer: str | None = None  # e.g. "451 4.3.0 try later" or "554 5.7.1 no"
        self.refuse_rcpt: dict[str, str] = {}
        self.hooks = []
        self._controller: Controller | None = None

    def start(self) -> "RecordingRelay":
        self._controller = Controller(_Recorder(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]
