"""The daemon's background work, in APScheduler's threads: the service jobs every
minute (`jobs.py`: deadline warnings and escalations, reminders and auto-close,
digests) and one poll job per IMAP account (`inbound/imap/`), plus an IDLE watcher
thread for each account that asks for it. A poller hands each message it fetches
to the intake, which runs the pipeline in a delivery worker.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Callable, Iterable

from apscheduler.schedulers.background import BackgroundScheduler

from .. import jobs
from ..config import ImapAccount
from ..errors import TemporaryFailure
from ..gateway import Gateway
from ..inbound.imap import MailboxPoller
from ..inbound.intake import Intake
from ..metrics import Metrics

log = logging.getLogger("mailgate.daemon")


def _not_already_running(record: logging.LogRecord) -> bool:
    """APScheduler warns when a job's next run comes while the last still runs (a poll
    that outlasts its interval, a long service run): with one instance a job, that is
    how it is meant to work, not a warning. Every other line of the scheduler passes."""
    return not str(record.msg).startswith('Execution of job "%s" skipped: maximum number '
                                          "of running instances")


class Schedule:
    """The scheduler and the pollers; `on_queued` is called after jobs queued mail."""

    def __init__(self, gw: Gateway, intake: Intake, metrics: Metrics,
                 on_queued: Callable[[], None]):
        self.gw = gw
        self.intake = intake
        self.metrics = metrics
        self.on_queued = on_queued
        scheduler_log = logging.getLogger("apscheduler.scheduler")
        scheduler_log.addFilter(_not_already_running)  # once: a filter is added only once
        self.scheduler = BackgroundScheduler(
            timezone=dt.timezone.utc, logger=scheduler_log, job_defaults={
                "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.pollers: dict[str, tuple[MailboxPoller, threading.Thread | None]] = {}

    def start(self, accounts: Iterable[ImapAccount]) -> None:
        """Run the service jobs now and every minute; start a poller per account."""
        self.scheduler.start()
        self.scheduler.add_job(self._service_jobs, "interval", id="service", seconds=60,
                               next_run_time=dt.datetime.now(dt.timezone.utc))
        self.configure_pollers(accounts)

    def _service_jobs(self) -> None:
        """Deadline warnings/escalations, reminders/auto-close, digests (jobs.py)."""
        try:
            if jobs.run_all(self.gw):
                self.on_queued()
        except TemporaryFailure as error:
            log.warning("service jobs: %s", error)

    def configure_pollers(self, accounts: Iterable[ImapAccount]) -> None:
        """Start, replace or stop pollers so that they match `accounts`."""
        wanted = {a.name: a for a in accounts}
        for name in list(self.pollers):
            if name not in wanted or wanted[name] != self.pollers[name][0].account:
                self._stop_poller(name)
        for name, account in wanted.items():
            if name not in self.pollers:
                self._start_poller(account)

    def _start_poller(self, account: ImapAccount) -> None:
        """A poll job on `poll_interval` (the first one now) and, with `idle`, a thread
        that polls as soon as the server reports new mail."""
        poller = MailboxPoller(account, self.intake, self.gw.db, self.metrics)
        self.scheduler.add_job(poller.poll, "interval", seconds=account.poll_interval,
                               id=f"imap:{account.name}",
                               next_run_time=dt.datetime.now(dt.timezone.utc))
        thread = None
        if account.idle:
            thread = threading.Thread(target=poller.watch, daemon=True,
                                      name=f"idle:{account.name}")
            thread.start()
        self.pollers[account.name] = (poller, thread)

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

    def stop(self) -> None:
        """Stop every poller (each after the message in hand), then the scheduler,
        after the jobs running."""
        for name in list(self.pollers):
            self._stop_poller(name)
        self.scheduler.shutdown(wait=True)
