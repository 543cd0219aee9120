"""Fixtures: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL is expected on 127.0.0.1:5432 with trust auth (scripts/test starts it
when it is installed but stopped). A missing server fails the run; it never skips.
"""
from __future__ import annotations

import email
import email.policy
import os
import re
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
from mailgate.signing import AGENT_ID
from tests.servers.relay import RecordingRelay

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


# -- a guard over the whole suite: no agent's proof ever reaches anyone else ------

def agent_proof_leaks(raw: bytes) -> list[str]:
    """Agent-signed ids (`mg.n.…`) in a written mail's headers where they must not be:
    anywhere in mail that is not itself an agent notification, and in one that is,
    any signed for another ticket or reader than its own Message-ID (an agent's mail
    threads only on the earlier mail about that ticket to that same agent)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    fields = email.message_from_bytes(head + b"\n\n", policy=email.policy.compat32)
    own = str(fields.get("Message-ID", "")).strip()
    reader = _AGENT_READER.match(own).groups() if AGENT_ID.fullmatch(own) else None
    leaks = []
    for name, value in fields.items():
        leaks += [f"{name}: {found}" for found in AGENT_ID.findall(" ".join(str(value).split()))
                  if reader is None or _AGENT_READER.match(found).groups() != reader]
    return leaks


_AGENT_READER = re.compile(r"<mg\.n\.(\d*)\.?(\d*)")  # (ticket, agent) of an agent-signed id


@pytest.fixture(autouse=True)
def no_agent_proof_leaves(tmp_path):
    """After every test: each mail written (.eml files of the file transport anywhere
    under the test's folder, and what every test relay received) is checked for an
    agent-signed id that went to someone else (issue 11, point 1)."""
    relays_before = len(RecordingRelay.made)
    yield
    written = [(str(path), path.read_bytes()) for path in tmp_path.rglob("*.eml")
               if "raw" not in path.relative_to(tmp_path).parts]  # inbound mail, kept as sent
    for relay in RecordingRelay.made[relays_before:]:
        with relay.lock:
            written += [(f"relay to {item.rcpt_tos}", item.raw) for item in relay.received]
    del RecordingRelay.made[relays_before:]
    leaks = {where: found for where, raw in written if (found := agent_proof_leaks(raw))}
    assert not leaks, f"agent proof in mail to others: {leaks}"
