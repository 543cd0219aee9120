"""Cluster-wide mutual exclusion for work that one daemon at a time should do.

On PostgreSQL: a session-level advisory lock held on a dedicated connection, so
it is released when the holder finishes or its connection dies with it. On
SQLite a single daemon is supported, and the lock always succeeds.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator

from sqlalchemy import text

from .db import Database


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def cluster_lock(db: Database, name: str) -> Iterator[bool]:
    """Yield True if this process holds the lock `name` for the block, else False."""
    if not db.is_postgresql:
        yield True
        return
    key = lock_key(name)
    with db.engine.connect() as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        conn.commit()
        try:
            yield bool(got)
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
