"""`mailgate run`: the daemon."""
from __future__ import annotations

import asyncio

from ..daemon import Daemon
from ..logs import setup_logging


def register(sub) -> None:
    p = sub.add_parser("run", help="run the daemon (SMTP/LMTP listeners, IMAP pollers, jobs)")
    p.set_defaults(handler=run)


def run(settings, args) -> None:
    setup_logging(settings.log)
    asyncio.run(Daemon(settings, args.config).serve())
