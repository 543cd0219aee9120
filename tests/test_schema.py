"""The Alembic migrations build exactly the schema the models describe, on both databases."""
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
