"""The gateway's services, built once from Settings and passed to every entry point."""
from __future__ import annotations

import datetime as dt
from typing import Callable

from .config import Settings
from .db import Database
from .inbound.workers import ParserPool
from .models import utcnow
from .storage import Storage


class Gateway:
    def __init__(self, settings: Settings, database: Database | None = None,
                 parser: ParserPool | None = None,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.settings = settings
        self.db = database or Database(settings.database_url, settings.database.pool_size)
        self.storage = Storage(settings.storage.dir, fsync=settings.storage.fsync)
        limits = settings.limits
        self._owns_parser = parser is None
        self.parser = parser or ParserPool(limits.parse_workers, limits.parse_timeout,
                                           limits.parse_memory, limits.max_depth,
                                           limits.max_parts)
        self.now = clock

    def close(self) -> None:
        if self._owns_parser:
            self.parser.close()
        self.db.dispose()
