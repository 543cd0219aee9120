"""The Alembic migrations build exactly the schema the models describe, on both databases."""
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mailgate.db import Database
from mailgate.models import Base


def test_migrations_match_models(db_url):
    database = Database(db_url)
    try:
        current, head = database.schema_revisions()
        assert current == head
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        database.dispose()


def test_empty_database_is_initialised_but_old_one_refused(tmp_path):
    import pytest
    from sqlalchemy import text

    from mailgate.db import SchemaOutOfDate

    fresh = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.ensure_schema()
    assert fresh.schema_revisions()[0] == fresh.schema_revisions()[1]
    with fresh.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(SchemaOutOfDate, match="mailgate db upgrade"):
        fresh.ensure_schema()
    fresh.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """An empty database of each kind, for walking the migrations one by one."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'walk.db'}"
        return
    from tests.conftest import PG_HOST, _pg_admin

    name = f"mailgate_walk_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg2://postgres@{PG_HOST}:5432/{name}"
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


def test_a_database_from_the_first_release_upgrades_with_its_tickets(empty_url):
    """0001 landed before the service hours: its tickets survive 0002 without deadlines,
    having waited no working time; the migrations also go back down."""
    from alembic import command
    from sqlalchemy import text

    database = Database(empty_url)
    config = database._alembic_config()
    command.upgrade(config, "0001")
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO departments (key, name, prefix, locale, team_address, "
                          "promise, sms_enabled, created_at) VALUES ('support', 'Support', NULL, NULL, "
                          "NULL, NULL, false, CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO contacts (email, name, created_at) "
                          "VALUES ('c@example.org', '', CURRENT_TIMESTAMP)"))
        conn.execute(text(
            "INSERT INTO tickets (department_id, requester_id, subject, status, priority, "
            "created_at, updated_at) VALUES (1, 1, 'old', 'open', 'normal', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    command.upgrade(config, "head")
    assert database.schema_revisions()[0] == database.schema_revisions()[1]
    with database.engine.connect() as conn:
        row = conn.execute(text("SELECT subject, paused_working, first_response_due "
                                "FROM tickets")).one()
    assert tuple(row) == ("old", 0.0, None)
    command.downgrade(config, "0001")
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT subject FROM tickets")).scalar() == "old"
    database.dispose()


def test_the_head_revision_the_code_knows_is_the_migrations_head(tmp_path):
    """`db.SCHEMA_HEAD` lets every command check an up-to-date database without
    importing alembic; a new migration must move it."""
    from alembic.script import ScriptDirectory

    from mailgate import db

    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    head = ScriptDirectory.from_config(database._alembic_config()).get_current_head()
    assert db.SCHEMA_HEAD == head
    database.ensure_schema()
    assert database.stamped_revision() == head
    database.dispose()


def test_automatic_replies_queued_before_0009_get_their_domain(empty_url):
    """The per-domain cap reads outbox.rate_domain from 0009 on: rows already queued
    get it, so the hour after an upgrade is capped like any other."""
    from alembic import command
    from sqlalchemy import text

    database = Database(empty_url)
    config = database._alembic_config()
    command.upgrade(config, "0008")
    with database.engine.begin() as conn:
        for key in ("a@victim.example", '"odd@local"@other.example', None):
            conn.execute(text(
                "INSERT INTO outbox (channel, kind, locale, recipients, sender, sender_name, "
                "context, rate_key, status, attempts, next_attempt_at, created_at) VALUES "
                "('email', 'ack', 'en', '[]', 's@example.com', '', '{}', :key, 'sent', 1, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"key": key})
    command.upgrade(config, "head")
    with database.engine.connect() as conn:
        domains = conn.execute(text("SELECT rate_domain FROM outbox ORDER BY id")).scalars()
        assert list(domains) == ["victim.example", "other.example", None]
    command.downgrade(config, "0008")
    database.dispose()


def test_large_columns_are_compressed_with_lz4_on_postgresql(pg_url):
    """0011: each sent mail's bytes and a message's text and HTML are compressed with lz4
    (a quarter of pglz's CPU a sent mail); a downgrade gives them pglz again."""
    from alembic import command
    from sqlalchemy import text

    database = Database(pg_url)
    methods = text("SELECT attrelid::regclass::text || '.' || attname, attcompression "
                   "FROM pg_attribute WHERE (attrelid = 'outbox'::regclass AND attname = 'raw')"
                   " OR (attrelid = 'messages'::regclass AND attname IN ('text_body', "
                   "'html_body')) ORDER BY 1")
    lz4 = text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
               "WHERE name = 'default_toast_compression'")
    try:
        with database.engine.connect() as conn:
            if not conn.execute(lz4).scalar():
                pytest.fail("this PostgreSQL is built without lz4: 0011 leaves pglz")
            assert dict(conn.execute(methods).all()) == {
                "messages.html_body": "l", "messages.text_body": "l", "outbox.raw": "l"}
        config = database._alembic_config()
        command.downgrade(config, "0010")
        with database.engine.connect() as conn:
            assert set(dict(conn.execute(methods).all()).values()) == {"p"}
        command.upgrade(config, "head")
    finally:
        database.dispose()
