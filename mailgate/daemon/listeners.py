"""The daemon's sockets: the SMTP and LMTP listeners, the HTTP endpoint's, and the
drain at shutdown.

The sessions (`inbound/smtp.py`) run on the event loop; their handlers run each
RCPT check, and each DATA's wait for a delivery worker, in one bounded thread pool
(`[smtp] workers` threads). `drain` stops accepting connections and transactions:
every open session's next command is answered 421 once the commands in hand are
finished and answered.
"""
from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor

from ..config import Settings, split_hostport
from ..inbound.intake import Intake
from ..inbound.smtp import Handler, protocol_factory
from .health import HealthEndpoint

# After the messages in flight: how long an open session has to send its next command
# (answered 421) before it is told 421 unasked and closed.
DRAIN_GRACE = 1.0


class Listeners:
    """Every socket the daemon listens on; `addresses` holds the bound (host, port)
    pairs by kind ("smtp", "lmtp", "http", and "web": the status pages, `mailgate/web/`)."""

    def __init__(self, intake: Intake, settings: Settings):
        self.settings = settings
        self.executor = ThreadPoolExecutor(settings.smtp.workers, thread_name_prefix="deliver")
        self.smtp_handler = Handler(intake, self.executor, settings, "ESMTP")
        self.lmtp_handler = Handler(intake, self.executor, settings, "LMTP")
        self.servers: list[asyncio.base_events.Server] = []
        self.sessions: weakref.WeakSet = weakref.WeakSet()
        self.addresses: dict[str, list[tuple[str, int]]] = {"smtp": [], "lmtp": [], "http": [],
                                                            "web": []}

    async def open(self, http: HealthEndpoint) -> None:
        """Listen on `[smtp] listen`, `[lmtp] listen` and `[http] listen`."""
        loop = asyncio.get_running_loop()
        for kind, handler, listen in (("smtp", self.smtp_handler, self.settings.smtp.listen),
                                      ("lmtp", self.lmtp_handler, self.settings.lmtp.listen)):
            factory = self._tracked(protocol_factory(handler, self.settings,
                                                     lmtp=kind == "lmtp"))
            for address in listen:
                host, port = split_hostport(address)
                self._opened(kind, await loop.create_server(factory, host, port))
        self._opened("http", await http.listen(self.settings.http.listen))

    def _opened(self, kind: str, server: asyncio.base_events.Server) -> None:
        self.servers.append(server)
        self.addresses[kind].extend(s.getsockname()[:2] for s in server.sockets)

    def _tracked(self, factory):
        def make():
            protocol = factory()
            self.sessions.add(protocol)
            return protocol
        return make

    def reconfigure(self, settings: Settings) -> None:
        """What a reload changes for the listeners: the handlers' RCPT checks (the
        recipient limit, routing). Sockets and session settings (TLS, AUTH, sizes,
        allowed networks, timeouts) stay as they started."""
        self.settings = settings
        for handler in (self.smtp_handler, self.lmtp_handler):
            handler.settings = settings

    async def drain(self, timeout: float) -> None:
        """Stop listening; every open session's next command is answered 421 (the
        messages in flight are finished and answered first, for up to `timeout`
        seconds); sessions that send no command within DRAIN_GRACE are told 421 unasked."""
        loop = asyncio.get_running_loop()
        for server in self.servers:
            server.close()
        for handler in (self.smtp_handler, self.lmtp_handler):
            handler.draining = True
        deadline = loop.time() + timeout
        while self.in_flight() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        grace = min(deadline, loop.time() + DRAIN_GRACE)
        while self.open_sessions() and loop.time() < grace:
            await asyncio.sleep(0.02)
        for protocol in self.open_sessions():
            protocol.hang_up()

    def open_sessions(self) -> list:
        return [protocol for protocol in list(self.sessions) if protocol.is_open]

    def in_flight(self) -> int:
        """Commands in hand (a DATA being received or in the pipeline, an RCPT check)."""
        return (self.smtp_handler.in_flight + self.lmtp_handler.in_flight
                + sum(protocol.busy for protocol in self.open_sessions()))

    def close(self) -> None:
        """After `drain`: wait for the pool's threads to finish."""
        self.executor.shutdown(wait=True)
