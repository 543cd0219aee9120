"""Engine, sessions and the schema version check.

`Database.unit_of_work()` is the one place that begins, commits and rolls back;
components receive the session and never commit themselves.

Every PostgreSQL connection is bounded in time (`pgbounds.py`): connecting by
`[database] connect_timeout`, each statement by `statement_timeout`, and a server
that does not answer at all by the client itself.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, exc, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import DatabaseSettings
from .errors import TemporaryFailure
from .pgbounds import deadline, postgresql_bounds
from .storage import make_private_dirs

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
# the newest migration's revision: a database stamped with it needs no alembic to
# check (tests/test_schema.py holds this to the migrations' head)
SCHEMA_HEAD = "0011"
# the defaults of [database] connect_timeout and statement_timeout (seconds to connect
# and authenticate; seconds a statement may run before the server cancels it)
CONNECT_TIMEOUT = DatabaseSettings.connect_timeout
STATEMENT_TIMEOUT = DatabaseSettings.statement_timeout


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


def _is_psycopg2(url: str) -> bool:
    return make_url(url).get_driver_name() == "psycopg2"


def make_engine(url: str, pool_size: int = 10, bounded: bool = True,
                connect_timeout: float = CONNECT_TIMEOUT,
                statement_timeout: float = STATEMENT_TIMEOUT) -> Engine:
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
    connect_args = (postgresql_bounds(url, connect_timeout, statement_timeout)
                    if bounded and _is_psycopg2(url) else {})
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800,
                         connect_args=connect_args)


def as_temporary(error: BaseException) -> TemporaryFailure:
    """The TemporaryFailure a temporary database error (`is_temporary`) is raised as."""
    return TemporaryFailure(f"database: {error.__class__.__name__}: "
                            f"{str(error).splitlines()[0]}")


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
    def __init__(self, url: str, pool_size: int = 10, connect_timeout: float = CONNECT_TIMEOUT,
                 statement_timeout: float = STATEMENT_TIMEOUT):
        self.url = url
        self.timeouts = (connect_timeout, statement_timeout)  # seconds (PostgreSQL)
        self.engine = make_engine(url, pool_size, True, *self.timeouts)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def of(cls, settings) -> "Database":
        """The database `settings` name, with its pool size and timeouts."""
        db = settings.database
        return cls(settings.database_url, db.pool_size, db.connect_timeout,
                   db.statement_timeout)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def unit_of_work(self, connection: Connection | None = None) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error. `connection`: a
        connection the caller holds (the outbox claims' advisory locks), else the pool's.

        Database errors that a retry can cure come out as TemporaryFailure (a rollback
        that fails too, on a dead connection, does not hide them).
        """
        session = self.sessions(bind=connection) if connection is not None else self.sessions()
        try:
            yield session
            session.commit()
        except BaseException as error:
            with contextlib.suppress(Exception):
                session.rollback()
            if is_temporary(error):
                raise as_temporary(error) from error
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

    def probe(self, timeout: float = 2.0) -> bool:
        """Does the database answer within `timeout` seconds? On a connection of its own
        (never one of the pool, which a stall may hold), closed afterwards."""
        if not _is_psycopg2(self.url):
            return self.ping()
        dialect = self.engine.dialect
        args, params = dialect.create_connect_args(self.engine.url)
        params.update(postgresql_bounds(self.url, *self.timeouts))
        try:
            with deadline(timeout):
                conn = dialect.loaded_dbapi.connect(*args, **params)
                try:
                    with conn.cursor() as cursor:
                        cursor.execute("SELECT 1")
                finally:
                    conn.close()
            return True
        except Exception:  # any failure is an unhealthy answer
            return False

    def dispose(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------
    def _alembic_config(self):
        # alembic is imported only when the schema is looked at (start-up time)
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self.engine
        return cfg

    def stamped_revision(self) -> str | None:
        """The revision alembic stamped in the database, read with plain SQL (None: no
        stamp, or no database yet)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def schema_revisions(self) -> tuple[str | None, str]:
        """(current revision in the database, newest revision in the code)."""
        # alembic is imported only when the schema is looked at (start-up time)
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, head

    def upgrade(self) -> None:
        """Migrate to the newest revision, on an engine without statement timeouts (a
        migration of a large table may take longer than any statement should)."""
        # alembic is imported only when the schema is looked at (start-up time)
        from alembic import command

        config = self._alembic_config()
        engine = make_engine(self.url, 1, bounded=False)
        config.attributes["engine"] = engine
        try:
            command.upgrade(config, "head")
        finally:
            engine.dispose()

    def ensure_schema(self, auto_create: bool = True) -> None:
        """Create an empty database's schema; refuse an out-of-date one.

        A brand-new database (no tables at all) is initialised so that the
        embedded default works with no setup; an existing database at an older
        revision holds data and is only migrated by an explicit `mailgate db upgrade`.
        """
        try:
            if self.stamped_revision() == SCHEMA_HEAD:
                return  # up to date, found without importing alembic (CLI start-up time)
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

        with self.engine.connect() as conn:
            return bool(inspect(conn).get_table_names())
