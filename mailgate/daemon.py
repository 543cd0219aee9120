"""`mailgate run`: SMTP/LMTP listeners, IMAP pollers, the scheduler and the health endpoint.

One asyncio loop serves the SMTP/LMTP and HTTP sockets; the pipeline runs in a
bounded thread pool; IMAP polls and scheduled jobs run in APScheduler's threads
(and one IDLE watcher thread per account). SIGTERM/SIGINT stop accepting
connections and transactions (each open session's next command is answered 421),
let messages in flight finish (bounded by `[daemon] shutdown_timeout`) and exit;
SIGHUP re-reads the configuration file and applies what can change live
(IMAP accounts, limits, threading and routing policy, log level).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

from apscheduler.schedulers.background import BackgroundScheduler

from . import jobs
from .config import ConfigError, Settings, split_hostport, load_settings
from .gateway import Gateway
from .inbound.delivery import DeliveryPool
from .inbound.imap import MailboxPoller
from .inbound.intake import Intake
from .inbound.smtp import Handler, protocol_factory
from .db import deadline
from .errors import TemporaryFailure
from .logs import setup_logging
from .outbound.sender import OutboxSender
from .signing import signer_for
from .metrics import Metrics

log = logging.getLogger("mailgate.daemon")
# Request line and headers of one HTTP request, in all: /healthz and /metrics need
# a few hundred bytes; more is answered 431 (and one longer line is more).
HTTP_HEAD_LIMIT = 16 * 1024
# After the messages in flight: how long an open session has to send its next command
# (answered 421) before it is told 421 unasked and closed.
DRAIN_GRACE = 1.0
# /healthz: the database must answer a probe on a connection of its own within this
# many seconds, else 503 (database calls behind /metrics are bounded the same way).
HEALTH_TIMEOUT = 2.0
HTTP_REASONS = {200: "OK", 404: "Not Found", 431: "Request Header Fields Too Large",
                503: "Service Unavailable"}


class Daemon:
    def __init__(self, settings: Settings, config_path: str | None = None,
                 gateway: Gateway | None = None):
        self.settings = settings
        self.config_path = config_path
        self.metrics = Metrics()
        self.gw = gateway or Gateway(settings)
        self.delivery = DeliveryPool(self.gw, settings.daemon.delivery_workers
                                     or 2 * (os.cpu_count() or 1))
        self.intake = Intake(self.gw, self.metrics, self.delivery.ingest,
                             on_queued=self.wake_sender)
        self.sender = OutboxSender(self.gw)
        self.metrics.watch_outbox(self._outbox_depth, self._outbox_oldest)
        self.executor = ThreadPoolExecutor(settings.smtp.workers, thread_name_prefix="deliver")
        # /healthz and /metrics never wait for a thread of the SMTP listeners
        self.http_executor = ThreadPoolExecutor(2, thread_name_prefix="http")
        self._probe: asyncio.Future | None = None
        self.scheduler = BackgroundScheduler(timezone=dt.timezone.utc, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.smtp_handler = Handler(self.intake, self.executor, settings, "ESMTP")
        self.lmtp_handler = Handler(self.intake, self.executor, settings, "LMTP")
        self.pollers: dict[str, tuple[MailboxPoller, threading.Thread | None]] = {}
        self.servers: list[asyncio.base_events.Server] = []
        self.sessions: weakref.WeakSet = weakref.WeakSet()
        self.addresses: dict[str, list[tuple[str, int]]] = {"smtp": [], "lmtp": [], "http": []}
        self._stop: asyncio.Event | None = None
        self._reloading = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- start ----------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._stop or asyncio.Event()  # serve() may have made it already
        await self._loop.run_in_executor(self.executor, self.gw.db.ensure_schema)
        # a missing or short signing secret stops the start, not every message later
        await self._loop.run_in_executor(self.executor, signer_for, self.settings)
        # the delivery workers start now, so that the first message does not wait for them
        await self._loop.run_in_executor(self.executor, self.delivery.start)
        for kind, handler, listen in (("smtp", self.smtp_handler, self.settings.smtp.listen),
                                      ("lmtp", self.lmtp_handler, self.settings.lmtp.listen)):
            factory = protocol_factory(handler, self.settings, lmtp=kind == "lmtp")
            for address in listen:
                await self._listen(kind, address, self._tracked(factory))
        await self._listen_http(self.settings.http.listen)
        # orphan temporary files of a killed predecessor; the sender replays its journal
        await self._loop.run_in_executor(self.executor, self.gw.storage.remove_orphans)
        await self._loop.run_in_executor(self.executor, self.sender.start)
        self.scheduler.start()
        self.scheduler.add_job(self._service_jobs, "interval", id="service", seconds=60,
                               next_run_time=dt.datetime.now(dt.timezone.utc))
        self.configure_pollers(self.settings.imap)
        log.info("started", extra={"fields": {
            "smtp": _fmt(self.addresses["smtp"]), "lmtp": _fmt(self.addresses["lmtp"]),
            "http": _fmt(self.addresses["http"]), "imap": ",".join(self.pollers) or None,
            "database": self.gw.db.engine.url.render_as_string(hide_password=True)}})

    def _tracked(self, factory):
        def make():
            protocol = factory()
            self.sessions.add(protocol)
            return protocol
        return make

    async def _listen(self, kind: str, address: str, factory) -> None:
        host, port = split_hostport(address)
        server = await self._loop.create_server(factory, host, port)
        self.servers.append(server)
        self.addresses[kind].extend(s.getsockname()[:2] for s in server.sockets)

    async def _listen_http(self, address: str) -> None:
        host, port = split_hostport(address)
        server = await asyncio.start_server(self._http, host, port, limit=HTTP_HEAD_LIMIT)
        self.servers.append(server)
        self.addresses["http"].extend(s.getsockname()[:2] for s in server.sockets)

    # -- outbox ---------------------------------------------------------------
    def _service_jobs(self) -> None:
        """Deadline warnings/escalations, reminders/auto-close, digests (jobs.py)."""
        try:
            if jobs.run_all(self.gw):
                self.wake_sender()
        except TemporaryFailure as error:
            log.warning("service jobs: %s", error)

    def wake_sender(self) -> None:
        """Deliver now (called after a commit that queued mail)."""
        self.sender.wake()

    def _outbox_depth(self) -> int:
        try:
            with deadline(HEALTH_TIMEOUT):
                return self.sender.depth()
        except TemporaryFailure:
            return -1

    def _outbox_oldest(self) -> float:
        try:
            with deadline(HEALTH_TIMEOUT):
                return self.sender.oldest_due_age()
        except TemporaryFailure:
            return -1.0

    # -- IMAP -----------------------------------------------------------------
    def configure_pollers(self, accounts) -> None:
        """Start, replace or stop pollers so that they match `accounts`."""
        wanted = {a.name: a for a in accounts}
        for name in list(self.pollers):
            if name not in wanted or wanted[name] != self.pollers[name][0].account:
                self._stop_poller(name)
        for name, account in wanted.items():
            if name in self.pollers:
                continue
            poller = MailboxPoller(account, self.intake, self.gw.db, self.metrics)
            self.scheduler.add_job(poller.poll, "interval", seconds=account.poll_interval,
                                   id=f"imap:{name}",
                                   next_run_time=dt.datetime.now(dt.timezone.utc))
            thread = None
            if account.idle:
                thread = threading.Thread(target=poller.watch, daemon=True, name=f"idle:{name}")
                thread.start()
            self.pollers[name] = (poller, thread)

    def _stop_poller(self, name: str, timeout: float = 10.0) -> None:
        poller, thread = self.pollers.pop(name)
        poller.stopped.set()
        try:
            self.scheduler.remove_job(f"imap:{name}")
        except Exception:  # already gone (scheduler shut down)
            pass
        if thread is not None:
            thread.join(timeout)
        poller.close(timeout)  # after the message in hand

    # -- HTTP -----------------------------------------------------------------
    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await asyncio.wait_for(_read_head(reader), 10)
            except HeadTooLarge:
                await _respond(writer, 431, b"request header fields too large\n", "text/plain")
                writer.write_eof()
                await _discard(reader)  # so that closing does not reset the answer away
                return
            path = request[1] if len(request) >= 2 else ""
            if path == "/healthz":
                ok = await self._healthy()
                status, body, kind = ((200, b"ok\n", "text/plain") if ok else
                                      (503, b"database unreachable\n", "text/plain"))
            elif path == "/metrics":
                body = await self._loop.run_in_executor(self.http_executor, self.metrics.render)
                status = 200
                kind = "text/plain; version=0.0.4; charset=utf-8"
            else:
                status, body, kind = 404, b"not found\n", "text/plain"
            await _respond(writer, status, body, kind)
        except (asyncio.TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    async def _healthy(self) -> bool:
        """Does the database answer within HEALTH_TIMEOUT? Concurrent requests share one
        probe, so a stall costs one connection and one thread, not one per request."""
        if self._probe is None or self._probe.done():
            self._probe = self._loop.run_in_executor(self.http_executor, self.gw.db.probe,
                                                     HEALTH_TIMEOUT)
        try:
            return await asyncio.wait_for(asyncio.shield(self._probe), HEALTH_TIMEOUT + 1)
        except asyncio.TimeoutError:
            return False

    # -- reload and stop ------------------------------------------------------
    def reload(self) -> None:
        """Re-read the configuration. Called in a thread (`_hangup`): replacing the
        delivery workers takes seconds, and the listeners keep serving meanwhile."""
        with self._reloading:
            try:
                self._reload()
            except Exception:  # in a thread: nobody else would see it
                log.exception("reload failed; the daemon keeps running")

    def _hangup(self) -> None:
        self._loop.run_in_executor(None, self.reload)

    def _reload(self) -> None:
        try:
            settings = load_settings(self.config_path)
        except ConfigError as error:
            log.error("reload refused, configuration has problems: %s", error)
            return
        self.settings = settings
        self.gw.settings = settings
        for handler in (self.smtp_handler, self.lmtp_handler):
            handler.settings = settings
        old, self.delivery = self.delivery, DeliveryPool(
            self.gw, settings.daemon.delivery_workers or 2 * (os.cpu_count() or 1))
        self.delivery.start()
        self.intake.deliver = self.delivery.ingest
        old_sender, self.sender = self.sender, OutboxSender(self.gw)
        old_sender.stop(self.settings.daemon.shutdown_timeout)  # after the mail in hand
        self.sender.start()
        old.close(wait=self.settings.daemon.shutdown_timeout)  # after their message in hand
        setup_logging(settings.log)
        self.configure_pollers(settings.imap)
        log.info("configuration reloaded", extra={"fields": {"source": settings.source}})

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Stop listening; every open session's next command is answered 421 (the
        messages in flight are finished and answered first); sessions that send no
        command within DRAIN_GRACE are told 421 unasked; then the background work stops."""
        timeout = self.settings.daemon.shutdown_timeout
        log.info("stopping: no new connections or transactions; finishing messages in flight",
                 extra={"fields": {"sessions": len(self._open_sessions()),
                                   "in_flight": self._in_flight()}})
        for server in self.servers:
            server.close()
        for handler in (self.smtp_handler, self.lmtp_handler):
            handler.draining = True
        deadline = self._loop.time() + timeout
        while self._in_flight() and self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        grace = min(deadline, self._loop.time() + DRAIN_GRACE)
        while self._open_sessions() and self._loop.time() < grace:
            await asyncio.sleep(0.02)
        for protocol in self._open_sessions():
            protocol.hang_up()
        await self._loop.run_in_executor(None, self._stop_background)
        self.gw.close()
        log.info("stopped")

    def _open_sessions(self) -> list:
        return [protocol for protocol in list(self.sessions) if protocol.is_open]

    def _in_flight(self) -> int:
        """Commands in hand (a DATA being received or in the pipeline, an RCPT check)."""
        return (self.smtp_handler.in_flight + self.lmtp_handler.in_flight
                + sum(protocol.busy for protocol in self._open_sessions()))

    def _stop_background(self) -> None:
        for name in list(self.pollers):
            self._stop_poller(name)
        self.scheduler.shutdown(wait=True)
        self.sender.stop(self.settings.daemon.shutdown_timeout)
        self.executor.shutdown(wait=True)
        self.http_executor.shutdown(wait=True)
        self.delivery.close()

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads. The handlers are in place before
        "started" is logged: a signal sent right then must not get the default (fatal)
        action; a SIGHUP during start-up reloads once start-up is done."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        hangups: list[int] = []
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, hangups.append, 1)
        await self.start()
        loop.add_signal_handler(signal.SIGHUP, self._hangup)
        if hangups:
            self._hangup()
        try:
            await self.wait()
        finally:
            await self.shutdown()


class HeadTooLarge(Exception):
    """An HTTP request line and headers longer than HTTP_HEAD_LIMIT."""


async def _read_head(reader: asyncio.StreamReader) -> list[str]:
    """The words of the request line; the header lines are read and dropped."""
    try:  # readline: ValueError for a line longer than the reader's limit
        request = line = await reader.readline()
        size = len(request)
        while line not in (b"\r\n", b"\n", b""):
            line = await reader.readline()
            size += len(line)
            if size > HTTP_HEAD_LIMIT:
                raise HeadTooLarge
    except ValueError as error:
        raise HeadTooLarge from error
    return request.decode("latin-1").split()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, kind: str) -> None:
    writer.write(f"HTTP/1.1 {status} {HTTP_REASONS[status]}\r\nContent-Type: {kind}\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()


async def _discard(reader: asyncio.StreamReader, limit: int = 1 << 20,
                   seconds: float = 2.0) -> None:
    """Read and drop what the client is still sending (bounded): closing a socket
    with unread input resets the connection, and the client may lose our answer."""
    got = 0
    try:
        async with asyncio.timeout(seconds):
            while got < limit and (chunk := await reader.read(65536)):
                got += len(chunk)
    except (TimeoutError, ConnectionError):
        pass


def _fmt(addresses) -> str | None:
    return ",".join(f"{h}:{p}" for h, p in addresses) or None
