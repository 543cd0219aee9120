"""The daemon's scheduler: what it says in normal use."""
from __future__ import annotations

import logging
import threading
import time

from apscheduler.events import EVENT_JOB_MAX_INSTANCES

from mailgate.daemon.schedule import Schedule


def test_a_job_still_running_at_its_next_run_is_not_a_warning(caplog):
    """A poll that outlasts its interval: the run due meanwhile is skipped (one instance
    a job), quietly; the scheduler's other warnings still reach the log."""
    schedule = Schedule(gw=None, intake=None, metrics=None, on_queued=lambda: None)
    skipped, release = [], threading.Event()
    schedule.scheduler.add_listener(skipped.append, EVENT_JOB_MAX_INSTANCES)
    caplog.set_level(logging.DEBUG, logger="apscheduler")
    schedule.scheduler.start()
    try:
        schedule.scheduler.add_job(lambda: release.wait(5), "interval", seconds=0.2,
                                   id="imap:slow")
        deadline = time.monotonic() + 5
        while not skipped and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        release.set()
        schedule.scheduler.shutdown(wait=True)
    assert skipped, "a run came while the last one was still running"
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    logging.getLogger("apscheduler.scheduler").warning("Something else went wrong")
    assert caplog.records[-1].getMessage() == "Something else went wrong"
