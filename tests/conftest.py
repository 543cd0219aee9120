"""Fixtures: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL is expected on 127.0.0.1:5432 with trust auth (scripts/test starts it
when it is installed but stopped). A missing server fails the run; it never skips.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text

from mailgate.config import Settings
from mailgate.db import Database
from mailgate.gateway import Gateway
from mailgate.inbound.workers import ParserPool
from mailgate.models import Base

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
PG_HOST = os.environ.get("MAILGATE_TEST_PGHOST", "127.0.0.1")
PG_ADMIN = f"host={PG_HOST} port=5432 user=postgres dbname=postgres"


def _pg_admin():
    try:
        conn = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    except psycopg2.OperationalError as error:
        pytest.fail(f"PostgreSQL is required on {PG_HOST}:5432 (run scripts/test, which "
                    f"starts it): {error}", pytrace=False)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def pg_url():
    """A scratch PostgreSQL database for this test session, migrated to head."""
    name = f"mailgate_test_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg2://postgres@{PG_HOST}:5432/{name}"
    database = Database(url)
    database.upgrade()
    database.dispose()
    yield url
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


def _truncate_all(database: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'mailgate.db'}"
        database = Database(url)
        database.upgrade()
        database.dispose()
        return url
    url = request.getfixturevalue("pg_url")
    database = Database(url)
    _truncate_all(database)
    database.dispose()
    return url


@pytest.fixture(scope="session")
def parser_pool():
    pool = ParserPool(size=2, timeout=20, memory_limit=2048 * 1024 * 1024)
    yield pool
    pool.close()


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    return Settings().replace(database={"url": db_url},
                              storage={"dir": tmp_path / "var", "fsync": False},
                              gateway={"own_addresses": ("bounces@example.com",),
                                       "instance": "mailgate-test"})


@pytest.fixture
def gw(settings, parser_pool):
    gateway = Gateway(settings, parser=parser_pool)
    yield gateway
    gateway.close()


@pytest.fixture
def departments(gw):
    """support@ and billing@ departments with one agent each."""
    from mailgate.models import Address, Agent, Department

    with gw.db.unit_of_work() as session:
        support = Department(key="support", name="Support")
        billing = Department(key="billing", name="Billing", prefix="BILL", locale="fa")
        session.add_all([support, billing])
        session.add_all([Address(address="support@example.com", department=support),
                         Address(address="help@example.com", department=support),
                         Address(address="billing@example.com", department=billing)])
        session.add(Agent(email="agent@example.com", name="Agent", departments=[support]))
    return {"support": "support", "billing": "billing"}
