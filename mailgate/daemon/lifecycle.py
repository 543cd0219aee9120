"""The daemon's life: start, serve until a signal, reload on SIGHUP, stop.

SIGTERM/SIGINT stop accepting connections and transactions (each open session's
next command is answered 421), let messages in flight finish (bounded by
`[daemon] shutdown_timeout`) and exit. SIGHUP re-reads the configuration file and
applies what can change live: IMAP accounts, limits, threading and routing policy,
outbound delivery (the delivery workers and the outbox sender are replaced, each
after the message in hand), the log level. Listen addresses, the SMTP/LMTP session
settings, the database and storage take a restart.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import threading

from ..config import ConfigError, Settings, load_settings
from ..gateway import Gateway
from ..inbound.delivery import DeliveryPool
from ..inbound.intake import Intake
from ..logs import setup_logging
from ..metrics import Metrics
from ..outbound.sender import OutboxSender
from ..signing import signer_for
from .health import HealthEndpoint, bounded
from .listeners import Listeners
from .schedule import Schedule

log = logging.getLogger("mailgate.daemon")


class Daemon:
    """The gateway, the delivery workers, the intake, the outbox sender, the listeners,
    the health endpoint and the schedule, wired together; `serve()` runs them until
    SIGTERM/SIGINT (tests call `start`, `wait` and `shutdown` themselves)."""

    def __init__(self, settings: Settings, config_path: str | None = None,
                 gateway: Gateway | None = None):
        self.settings = settings
        self.config_path = config_path
        self.metrics = Metrics()
        self.gw = gateway or Gateway(settings)
        self.delivery = _delivery_pool(self.gw, settings)
        self.intake = Intake(self.gw, self.metrics, self.delivery.ingest,
                             on_queued=self.wake_sender)
        self.sender = OutboxSender(self.gw)
        self.metrics.watch_outbox(lambda: bounded(self.sender.depth, -1),
                                  lambda: bounded(self.sender.oldest_due_age, -1.0))
        self.listeners = Listeners(self.intake, settings)
        self.http = HealthEndpoint(self.gw.db, self.metrics, self.gw.storage, self.listeners)
        self.schedule = Schedule(self.gw, self.intake, self.metrics, self.wake_sender)
        self.web = _web_server(self.gw, settings, self.wake_sender)
        self._stop: asyncio.Event | None = None
        self._reloading = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- start ----------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._stop or asyncio.Event()  # serve() may have made it already
        in_pool = functools.partial(self._loop.run_in_executor, self.listeners.executor)
        await in_pool(self.gw.db.ensure_schema)
        # a missing or short signing secret stops the start, not every message later
        await in_pool(signer_for, self.settings)
        # the delivery workers start now, so that the first message does not wait for them
        await in_pool(self.delivery.start)
        await self.listeners.open(self.http)
        if self.web is not None:
            self.listeners.addresses["web"].append(self.web.start())
        # orphan temporary files of a killed predecessor; the sender replays its journal
        await in_pool(self.gw.storage.remove_orphans)
        await in_pool(self.sender.start)
        self.schedule.start(self.settings.imap)
        addresses = self.listeners.addresses
        log.info("started", extra={"fields": {
            "smtp": _fmt(addresses["smtp"]), "lmtp": _fmt(addresses["lmtp"]),
            "http": _fmt(addresses["http"]), "web": _fmt(addresses["web"]),
            "imap": ",".join(self.schedule.pollers) or None,
            "database": self.gw.db.engine.url.render_as_string(hide_password=True)}})

    def wake_sender(self) -> None:
        """Deliver now (called after a commit that queued mail)."""
        self.sender.wake()

    # -- reload ---------------------------------------------------------------
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
        self.listeners.reconfigure(settings)
        old, self.delivery = self.delivery, _delivery_pool(self.gw, settings)
        self.delivery.start()
        self.intake.deliver = self.delivery.ingest
        old_sender, self.sender = self.sender, OutboxSender(self.gw)
        old_sender.stop(self.settings.daemon.shutdown_timeout)  # after the mail in hand
        self.sender.start()
        old.close(wait=self.settings.daemon.shutdown_timeout)  # after their message in hand
        setup_logging(settings.log)
        self.schedule.configure_pollers(settings.imap)
        log.info("configuration reloaded", extra={"fields": {"source": settings.source}})

    # -- stop -----------------------------------------------------------------
    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Drain the listeners (`Listeners.drain`), then stop the background work."""
        log.info("stopping: no new connections or transactions; finishing messages in flight",
                 extra={"fields": {"sessions": len(self.listeners.open_sessions()),
                                   "in_flight": self.listeners.in_flight()}})
        await self.listeners.drain(self.settings.daemon.shutdown_timeout)
        await self._loop.run_in_executor(None, self._stop_background)
        self.gw.close()
        log.info("stopped")

    def _stop_background(self) -> None:
        if self.web is not None:
            self.web.stop(self.settings.daemon.shutdown_timeout)
        self.schedule.stop()
        self.sender.stop(self.settings.daemon.shutdown_timeout)
        self.listeners.close()
        self.http.close()
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


def _delivery_pool(gw: Gateway, settings: Settings) -> DeliveryPool:
    """`[daemon] delivery_workers` processes; 0: two per CPU."""
    return DeliveryPool(gw, settings.daemon.delivery_workers or 2 * (os.cpu_count() or 1))


def _web_server(gw: Gateway, settings: Settings, wake):
    """The status pages' server when `[web] listen` is set (`mailgate/web/`), else None."""
    if not settings.web.listen:
        return None
    # only a daemon that serves the pages loads Starlette and uvicorn
    from ..web.server import WebServer
    return WebServer(gw, settings.web.listen, wake)


def _fmt(addresses) -> str | None:
    return ",".join(f"{h}:{p}" for h, p in addresses) or None
