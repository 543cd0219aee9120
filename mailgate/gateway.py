"""The gateway's services, built once from Settings and passed to every entry point."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Callable, Protocol

from .config import Settings, StorageSettings
from .db import Database
from .errors import MessageRejected
from .models import utcnow
from .storage import Storage

if TYPE_CHECKING:
    from .mail.parse import ParsedMessage


def open_storage(settings: StorageSettings) -> Storage:
    """The blob stores `[storage] backend` names."""
    if settings.backend == "s3":
        # imported only for this backend: boto3 takes half a second to import, which
        # every command of a `files` installation would pay (CLI start-up time)
        from .storage_s3 import s3_storage

        return s3_storage(settings)
    return Storage.files(settings.dir, settings.fsync)


class Parser(Protocol):
    def parse(self, raw: bytes) -> ParsedMessage: ...
    def close(self) -> None: ...


class InProcessParser:
    """Parse in this process, with no time or memory bound of its own: for processes
    that are the bound themselves (the daemon's delivery workers) and for admin
    commands. `inbound.workers.ParserPool` is the bounded one."""

    def __init__(self, max_depth: int, max_parts: int):
        self.max_depth, self.max_parts = max_depth, max_parts

    def parse(self, raw: bytes) -> ParsedMessage:
        # imported at the first message: admin commands that parse nothing do not load
        # the parser and its libraries (CLI start-up time)
        from .mail.parse import parse_or_reject

        reply = parse_or_reject(raw, self.max_depth, self.max_parts)
        if isinstance(reply, MessageRejected):
            raise reply
        return reply

    def close(self) -> None:
        pass


class Gateway:
    def __init__(self, settings: Settings, database: Database | None = None,
                 parser: Parser | None = None,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.settings = settings
        self.db = database or Database.of(settings)
        self.storage = open_storage(settings.storage)
        self.parser = parser or InProcessParser(settings.limits.max_depth,
                                                settings.limits.max_parts)
        self.now = clock

    def close(self) -> None:
        """Close what the gateway opened; a parser passed in is the caller's to close."""
        self.db.dispose()
