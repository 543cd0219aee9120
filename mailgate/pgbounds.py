"""PostgreSQL connections bounded in time.

Connecting (TCP, TLS, authentication) is bounded by `connect_timeout`, each
statement by the server's `statement_timeout` (both `[database]` settings), and a
server that does not answer at all (stopped, stalled, a link that drops packets)
by the client itself: psycopg2 waits through `_wait` below, which gives up
`STALL_GRACE` seconds after the statement timeout and closes the connection (an
OperationalError, so a TemporaryFailure). `deadline()` tightens the bound for the
calls of one thread (a health probe, an RCPT check). The URL's own
`connect_timeout` or `options=-c statement_timeout=…` win.
"""
from __future__ import annotations

import contextlib
import re
import select
import threading
import time
from typing import Iterator

from sqlalchemy.engine import make_url

STALL_GRACE = 5.0  # more seconds before the client gives up on a silent server
_thread = threading.local()  # .deadline: monotonic time by which this thread's calls end


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """PostgreSQL calls of this thread within the block give up after `seconds` in all
    (connecting included): OperationalError, the connection closed."""
    previous = getattr(_thread, "deadline", None)
    ends = time.monotonic() + seconds
    _thread.deadline = ends if previous is None else min(previous, ends)
    try:
        yield
    finally:
        _thread.deadline = previous


def _wait(conn) -> None:
    """psycopg2's wait callback: libpq works non-blocking and this waits on its socket,
    for a bounded time on connections made by `_timed_connection` (others: unbounded)."""
    # psycopg2 is imported only where PostgreSQL is in use: SQLite installs start faster
    import psycopg2
    import psycopg2.extensions as pg

    limit = getattr(conn, "connect_limit" if conn.status == pg.STATUS_SETUP else
                    "statement_limit", None)
    started = time.monotonic()
    ends = started + limit if limit else None
    if limit and getattr(_thread, "deadline", None) is not None:
        ends = min(ends, _thread.deadline)
    while True:
        state = conn.poll()
        if state == pg.POLL_OK:
            return
        left = None if ends is None else ends - time.monotonic()
        if left is not None and left <= 0:
            raise psycopg2.OperationalError(f"no answer from the database within "
                                            f"{ends - started:.1f} s (connection closed)")
        fd = conn.fileno()
        if state == pg.POLL_READ:
            select.select([fd], [], [], left)
        elif state == pg.POLL_WRITE:
            select.select([], [fd], [], left)
        else:
            raise psycopg2.OperationalError(f"bad poll state {state}")


def _timed_connection(connect_limit: float, statement_limit: float):
    # psycopg2 is imported only where PostgreSQL is in use (see _wait)
    import psycopg2.extensions as pg

    if pg.get_wait_callback() is not _wait:
        pg.set_wait_callback(_wait)
    return type("TimedConnection", (pg.connection,), {
        "connect_limit": connect_limit, "statement_limit": statement_limit})


def postgresql_bounds(url: str, connect_timeout: float, statement_timeout: float) -> dict:
    """psycopg2 connect arguments bounding every connection in time (see the module)."""
    query = make_url(url).query
    connect = float(query.get("connect_timeout") or connect_timeout)
    options = str(query.get("options") or "")
    found = re.search(r"statement_timeout\s*=\s*(\d+)", options)
    statement = int(found.group(1)) / 1000 if found else statement_timeout
    if not found and statement:
        options = f"{options} -c statement_timeout={int(statement * 1000)}".strip()
    args = {"connect_timeout": max(1, round(connect)),
            "connection_factory": _timed_connection(
                connect, statement + STALL_GRACE if statement else 0)}
    if options:
        args["options"] = options
    return args
