"""Logging for the daemon: one line per event, plain text or JSON.

Set up once at process start — the daemon and its delivery workers with
`setup_logging`, a command and the parser workers it starts with
`setup_command_logging` — since a process that sets up nothing prints its warnings
through Python's last-resort handler: the bare message, with neither level nor
logger nor fields. Library code only logs.
Structured fields go in `extra={"fields": {...}}` and appear as key=value pairs
in text mode and as JSON members in JSON mode. Text lines begin with the time (UTC)
unless stderr is the journal, which adds its own: systemd says so in
`JOURNAL_STREAM` (the device and inode of the stream it connected).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys

from .config import LogSettings


class TextFormatter(logging.Formatter):
    def __init__(self, timestamps: bool = True):
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if self.timestamps:
            line = f"{_utc(record.created)} {line}"
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={_quote(v)}" for k, v in fields.items()
                                   if v is not None)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _utc(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def is_journal(stream) -> bool:
    """Is `stream` the one systemd connected to the journal (`JOURNAL_STREAM=dev:inode`)?"""
    try:
        device, inode = (int(part) for part in os.environ["JOURNAL_STREAM"].split(":"))
        status = os.fstat(stream.fileno())
    except (KeyError, ValueError, OSError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


def _quote(value) -> str:
    text = "" if value is None else str(value)
    return f'"{text}"' if (not text or " " in text or "=" in text) else text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),
                "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(settings: LogSettings, stream=None, timestamps: bool | None = None) -> None:
    """Log records at `settings.level` and above to `stream` (stderr); text lines carry
    the time unless `timestamps` is False or the stream is the journal."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if timestamps is None:
        timestamps = not is_journal(stream)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else
                         TextFormatter(timestamps=timestamps))
    root.addHandler(handler)
    root.setLevel(settings.level)
    for noisy in ("mailparser", "apscheduler", "mail.log", "imapclient", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def setup_command_logging(stream=None) -> None:
    """A command's logging (and its parser workers'): warnings and errors as text
    lines on stderr, with level, logger and fields, without the time (a terminal's
    or an MTA's log has its own). Like `logging.basicConfig`, nothing changes where
    logging is already set up (a program or test harness that runs `cli.main`)."""
    if not logging.getLogger().handlers:
        setup_logging(LogSettings(level="WARNING"), stream, timestamps=False)
