"""SMTP and LMTP sessions (aiosmtpd) feeding the intake, and through it the pipeline.

The promise to the sending MTA is made by what `handle_DATA` returns, so it
answers 250 only after the pipeline committed (or the message is durably in
quarantine); a database outage or any unexpected error answers 451 4.3.0 and
the MTA retries. Nothing here blocks the event loop: the RCPT routing check (a
database query) and DATA's hand-off to the intake, which waits for a delivery
worker process to run the pipeline (`delivery.py`), run in a bounded thread pool
that the daemon passes in.
"""
from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
import ssl
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from .. import tickets
from ..config import Settings
from ..pgbounds import deadline
from ..errors import TemporaryFailure
from ..mail.headers import normalize_address, one_line, split_plus
from ..outbound import bounces
from ..outbound.compose import date_header
from ..pipeline import Envelope
from .intake import Intake

log = logging.getLogger("mailgate.smtp")
TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down"  # RFC 5321 3.8: to any command
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"  # RFC 5321 4.5.3.1.8: send the rest later
ROUTED_TTL = 10.0
RCPT_TIMEOUT = 10.0  # seconds for the routing check of one RCPT, else 451 (a database stall)
ROUTED_CACHE_SIZE = 10_000


def received_header(session, envelope, hostname: str, protocol: str, queue_id: str) -> bytes:
    peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
    helo = one_line(session.host_name or "unknown", 100)
    recipients = envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else ""
    line = (f"Received: from {helo} ([{peer}])\r\n\tby {hostname} (mailgate) with {protocol}"
            f" id {queue_id}" + (f"\r\n\tfor <{one_line(recipients, 320)}>" if recipients else "")
            + f"; {date_header()}\r\n")
    return line.encode("ascii", "replace")


def is_utf8(text: str) -> bool:
    """aiosmtpd decodes command arguments with surrogateescape: bytes that were not
    UTF-8 come back as lone surrogates, which no database or header can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class RoutedCache:
    """Addresses recently found routed: each for `ttl` seconds, at most `size` of
    them, the least recently used dropped first (every `support+anything@` is a new
    address, so a client could otherwise grow it without end). Thread-safe: RCPT
    checks run in the thread pool."""

    def __init__(self, size: int = ROUTED_CACHE_SIZE, ttl: float = ROUTED_TTL):
        self.size = size
        self.ttl = ttl
        self._found: OrderedDict[str, float] = OrderedDict()  # address -> when found routed
        self._lock = threading.Lock()

    def __contains__(self, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            found = self._found.get(address)
            if found is None:
                return False
            if now - found >= self.ttl:
                del self._found[address]
                return False
            self._found.move_to_end(address)
            return True

    def add(self, address: str) -> None:
        with self._lock:
            self._found[address] = time.monotonic()
            self._found.move_to_end(address)
            while len(self._found) > self.size:
                self._found.popitem(last=False)

    def __len__(self) -> int:
        return len(self._found)

    def addresses(self) -> list[str]:
        """Oldest first."""
        with self._lock:
            return list(self._found)


class Handler:
    """aiosmtpd hooks: MAIL checks the client, RCPT the address; DATA hands the
    message to the intake."""

    def __init__(self, intake: Intake, executor: ThreadPoolExecutor, settings: Settings,
                 protocol: str = "ESMTP"):
        self.intake = intake
        self.executor = executor
        self.settings = settings
        self.protocol = protocol
        self.networks = [ipaddress.ip_network(n, strict=False)
                         for n in settings.smtp.allow_networks]
        self.in_flight = 0
        self.draining = False  # shutting down: every session's next command is refused
        self._counter = 0
        self.routed = RoutedCache()

    async def _in_pool(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _client_allowed(self, session) -> bool:
        if not self.networks or session.authenticated:
            return True
        try:
            peer = ipaddress.ip_address(session.peer[0])
        except (ValueError, TypeError, IndexError):
            return False
        return any(peer in net for net in self.networks)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not self._client_allowed(session):
            self.intake.metrics.rejected.labels("client network").inc()
            return "550 5.7.1 Client host not allowed to send to this gateway"
        if not is_utf8(address):
            self.intake.metrics.rejected.labels("not utf-8").inc()
            return "501 5.1.7 Bad sender address syntax: not UTF-8"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    def _is_routed(self, address: str) -> bool:
        """Does `address` route to a department? Positive answers are remembered
        (`RoutedCache`); a refusal is always checked afresh, so a newly added
        address is accepted at once (the pipeline checks routing again anyway)."""
        if self.settings.routing.catch_all or bounces.is_bounce_address(self.settings, address):
            return True
        if address in self.routed:
            return True
        with deadline(RCPT_TIMEOUT), self.intake.gw.db.unit_of_work() as session:
            routed = bool(tickets.address_map(session, {address, split_plus(address)[0]}))
        if routed:
            self.routed.add(address)
        return routed

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.settings.smtp.max_recipients:
            self.intake.metrics.rejected.labels("too many recipients").inc()
            return TOO_MANY_RECIPIENTS
        if not is_utf8(address):
            self.intake.metrics.rejected.labels("not utf-8").inc()
            return "501 5.1.3 Bad recipient address syntax: not UTF-8"
        normalized = normalize_address(address)
        if normalized is None:
            return "501 5.1.3 Bad recipient address syntax"
        try:  # bounded twice: the database calls, and the wait for a thread to run them
            routed = await asyncio.wait_for(self._in_pool(self._is_routed, normalized),
                                            RCPT_TIMEOUT + 1)
        except (TemporaryFailure, asyncio.TimeoutError):
            return TEMPFAIL
        if not routed:
            self.intake.metrics.rejected.labels("unknown recipient").inc()
            return f"550 5.1.1 <{normalized}>: Recipient address rejected: no such mailbox"
        envelope.rcpt_tos.append(normalized)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self._counter += 1
        queue_id = f"{id(self) & 0xFFFF:04x}{self._counter:08x}"
        raw = received_header(session, envelope, server.hostname, self.protocol, queue_id) + \
            envelope.original_content
        mail_from = envelope.mail_from if envelope.mail_from not in (None, "<>") else ""
        source = "lmtp" if self.protocol == "LMTP" else "smtp"
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        message_envelope = Envelope(source, mail_from, tuple(envelope.rcpt_tos), peer=peer)
        self.in_flight += 1
        try:
            result = await self._in_pool(self.intake, raw, message_envelope, queue_id)
            status = (f"250 2.0.0 OK: {result.outcome}"
                      + (f" #{result.ticket}" if result.ticket else "") + f" (id {queue_id})")
        except TemporaryFailure:
            status = TEMPFAIL
        except Exception:  # our bug: keep the sender retrying rather than bounce
            log.exception("unexpected error handling DATA %s", queue_id)
            status = TEMPFAIL
        finally:
            self.in_flight -= 1
        if self.protocol == "LMTP":  # one reply per accepted recipient (RFC 2033)
            return "\r\n".join(status for _ in envelope.rcpt_tos)
        return status

    async def handle_exception(self, error):
        # aiosmtpd's default answer is a permanent 500, which would bounce mail
        log.exception("SMTP session error: %s", error)
        return "451 4.3.0 Temporary server error"


class UsersFile:
    """AUTH against a file of `user:password` lines (for trusted submission hosts)."""

    def __init__(self, path: str):
        self.users = {}
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith("#") and ":" in line:
                    user, password = line.split(":", 1)
                    self.users[user] = password

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            expected = self.users.get(user)
            if expected is not None and hmac.compare_digest(
                    expected.encode(), auth_data.password):
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.smtp.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.smtp.tls_cert, settings.smtp.tls_key)
    return context


class Draining:
    """A session that stops when its handler is `draining` (SIGTERM): the command in
    hand (a DATA being received or in the pipeline) is finished and answered, and the
    next one is answered 421 and the connection closed, so that no new transaction
    begins after the daemon was told to stop. `busy` says a command is in hand."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = False
        self._smtp_methods = {name: self._refused_when_draining(method)
                              for name, method in self._smtp_methods.items()}

    def _refused_when_draining(self, method):
        @functools.wraps(method)  # keeps HELP's syntax attributes
        async def command(arg):
            if self.event_handler.draining and method.__name__ != "smtp_QUIT":
                await self.push(SHUTTING_DOWN)
                self.transport.close()
                return
            self.busy = True
            try:
                await method(arg)
            finally:
                self.busy = False
        return command

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def hang_up(self) -> None:
        """Close the session now; one waiting for its next command is told why."""
        if not self.is_open:
            return
        if not self.busy:
            self.transport.write(SHUTTING_DOWN.encode("ascii") + b"\r\n")
        self.transport.close()


class SmtpSession(Draining, SMTP):
    pass


class LmtpSession(Draining, LMTP):
    pass


def protocol_factory(handler: Handler, settings: Settings, lmtp: bool = False):
    """A factory for loop.create_server() producing SMTP (or LMTP) protocol instances."""
    smtp = settings.smtp
    context = tls_context(settings)
    authenticator = UsersFile(smtp.auth_users_file) if smtp.auth_users_file else None
    cls = LmtpSession if lmtp else SmtpSession

    def factory():
        return cls(handler, data_size_limit=smtp.max_message_size, enable_SMTPUTF8=True,
                   decode_data=False, hostname=smtp.hostname or None,
                   ident="mailgate ESMTP", tls_context=context,
                   require_starttls=bool(context) and smtp.require_tls,
                   timeout=smtp.timeout, authenticator=authenticator,
                   auth_required=False, auth_require_tls=True)

    return factory
