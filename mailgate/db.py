"""Engine, sessions and the schema version check.

`Database.unit_of_work()` is the one place that begins, commits and rolls back;
components receive the session and never commit themselves.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .errors import TemporaryFailure
from .storage import make_private_dirs

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaOutOfDate(Exception):
    pass


def _sqlite_setup(engine: Engine) -> None:
    """WAL, foreign keys, durable commits, and BEGIN IMMEDIATE for writers.

    A deferred SQLite transaction that reads and then writes can fail at once with
    SQLITE_BUSY when another writer got in between; taking the write lock at
    BEGIN makes concurrent units of work wait (busy_timeout) instead.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _create_private(path: Path) -> None:
    """Create the SQLite file 0600 (folders 0700 if we make them), whatever the umask:
    it holds every customer's mail. SQLite gives its -wal and -shm files the mode of
    the database file. Existing files and folders keep the mode an admin gave them."""
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def make_engine(url: str, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            _create_private(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_setup(engine)
        return engine
    # No pre-ping (a round trip per transaction): a connection that died with a
    # database restart fails its unit of work as a TemporaryFailure, the pool
    # discards it, and the caller's retry gets a fresh one.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def is_temporary(error: BaseException) -> bool:
    """Database errors that a retry can cure: unreachable server, lost connection, lock."""
    if isinstance(error, (exc.OperationalError, exc.InterfaceError)):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.TimeoutError):  # connection pool exhausted
        return True
    return False


class Database:
    def __init__(self, url: str, pool_size: int = 10):
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error.

        Database errors that a retry can cure come out as TemporaryFailure.
        """
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException as error:
            session.rollback()
            if is_temporary(error):
                raise TemporaryFailure(f"database: {error.__class__.__name__}: "
                                       f"{str(error).splitlines()[0]}") from error
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except exc.SQLAlchemyError:
            return False

    def dispose(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------
    def _alembic_config(self):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        return cfg

    def schema_revisions(self) -> tuple[str | None, str]:
        """(current revision in the database, newest revision in the code)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, head

    def upgrade(self) -> None:
        from alembic import command

        command.upgrade(self._alembic_config(), "head")

    def ensure_schema(self, auto_create: bool = True) -> None:
        """Create an empty database's schema; refuse an out-of-date one.

        A brand-new database (no tables at all) is initialised so that the
        embedded default works with no setup; an existing database at an older
        revision holds data and is only migrated by an explicit `mailgate db upgrade`.
        """
        try:
            current, head = self.schema_revisions()
        except exc.SQLAlchemyError as error:
            if is_temporary(error):
                raise TemporaryFailure(f"database unreachable: {error.__class__.__name__}") \
                    from error
            raise
        if current == head:
            return
        if current is None and auto_create and not self._has_tables():
            log.info("initialising empty database at %s", self.engine.url.render_as_string())
            self.upgrade()
            return
        raise SchemaOutOfDate(
            f"database schema is at revision {current or '(none)'}, this mailgate needs "
            f"{head}: run `mailgate db upgrade` (back up the database first)")

    def _has_tables(self) -> bool:
        from sqlalchemy import inspect

        with self.engine.connect() as conn:
            return bool(inspect(conn).get_table_names())
