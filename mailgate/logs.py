"""Logging for the daemon: one line per event, plain text for journald or JSON.

Set up once at process start (`setup_logging`); library code only logs.
Structured fields go in `extra={"fields": {...}}` and appear as key=value pairs
in text mode and as JSON members in JSON mode.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sys

from .config import LogSettings


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={_quote(v)}" for k, v in fields.items()
                                   if v is not None)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


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
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.level)
    for noisy in ("mailparser", "apscheduler", "mail.log", "imapclient", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
