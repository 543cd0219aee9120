"""Logging for the daemon: one line per event, plain text or JSON.

Set up once at process start (`setup_logging`); library code only logs.
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


def setup_logging(settings: LogSettings, stream=None) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else
                         TextFormatter(timestamps=not is_journal(stream)))
    root.addHandler(handler)
    root.setLevel(settings.level)
    for noisy in ("mailparser", "apscheduler", "mail.log", "imapclient", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
