"""SMTP and LMTP listeners (aiosmtpd) feeding the pipeline.

The promise to the sending MTA is made by what `handle_DATA` returns, so it
answers 250 only after the pipeline committed (or the message is durably in
quarantine); a database outage or any unexpected error answers 451 4.3.0 and
the MTA retries. Database work runs in a bounded thread pool, never on the
event loop.
"""
from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from .. import tickets
from ..config import Settings
from ..errors import TemporaryFailure
from ..headers import normalize_address, one_line, split_plus
from ..outbound import bounces
from ..pipeline import Envelope
from .intake import Intake

log = logging.getLogger("mailgate.smtp")
TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
ROUTED_TTL = 10.0


def received_header(session, envelope, hostname: str, protocol: str, queue_id: str) -> bytes:
    peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
    helo = one_line(session.host_name or "unknown", 100)
    recipients = envelope.rcpt_tos[0] if len(envelope.rcpt_tos) == 1 else ""
    line = (f"Received: from {helo} ([{peer}])\r\n\tby {hostname} (mailgate) with {protocol}"
            f" id {queue_id}" + (f"\r\n\tfor <{one_line(recipients, 320)}>" if recipients else "")
            + f"; {email.utils.formatdate(localtime=False)}\r\n")
    return line.encode("ascii", "replace")


class Handler:
    """aiosmtpd hooks: RCPT checks the address, DATA runs the pipeline."""

    def __init__(self, intake: Intake, executor: ThreadPoolExecutor, settings: Settings,
                 protocol: str = "ESMTP"):
        self.intake = intake
        self.executor = executor
        self.settings = settings
        self.protocol = protocol
        self.networks = [ipaddress.ip_network(n, strict=False)
                         for n in settings.smtp.allow_networks]
        self.in_flight = 0
        self._counter = 0
        self._routed: dict[str, float] = {}  # address -> when it was last found routed

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
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    def _is_routed(self, address: str) -> bool:
        """Does `address` route to a department? Positive answers are remembered for
        ROUTED_TTL seconds; a refusal is always checked afresh, so a newly added
        address is accepted at once (the pipeline checks routing again anyway)."""
        if self.settings.routing.catch_all or bounces.is_bounce_address(self.settings, address):
            return True
        now = time.monotonic()
        if now - self._routed.get(address, -ROUTED_TTL) < ROUTED_TTL:
            return True
        with self.intake.gw.db.unit_of_work() as session:
            routed = bool(tickets.address_map(session, {address, split_plus(address)[0]}))
        if routed:
            self._routed[address] = now
        return routed

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        normalized = normalize_address(address)
        if normalized is None:
            return "501 5.1.3 Bad recipient address syntax"
        try:
            routed = await self._in_pool(self._is_routed, normalized)
        except TemporaryFailure:
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
            import hmac

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


def protocol_factory(handler: Handler, settings: Settings, lmtp: bool = False):
    """A factory for loop.create_server() producing SMTP (or LMTP) protocol instances."""
    smtp = settings.smtp
    context = tls_context(settings)
    authenticator = UsersFile(smtp.auth_users_file) if smtp.auth_users_file else None
    cls = LMTP if lmtp else SMTP

    def factory():
        return cls(handler, data_size_limit=smtp.max_message_size, enable_SMTPUTF8=True,
                   decode_data=False, hostname=smtp.hostname or None,
                   ident="mailgate ESMTP", tls_context=context,
                   require_starttls=bool(context) and smtp.require_tls,
                   timeout=smtp.timeout, authenticator=authenticator,
                   auth_required=False, auth_require_tls=True)

    return factory
