"""PostgreSQL: the large columns written for every message (the bytes of each sent
mail, a message's text and HTML) compressed with lz4 instead of pglz (#17)

pglz cost ~190 µs of server CPU for each sent mail's `raw` (14.5 KB on average in
the benchmark mix, stored in 10.4 KB); lz4 ~55 µs, as fast as storing it
uncompressed. Only values written from now on change. Nothing to do on SQLite, on
PostgreSQL before 14, or on a server built without lz4.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

COLUMNS = (("outbox", "raw"), ("messages", "text_body"), ("messages", "html_body"))


def _lz4(bind) -> bool:
    return bind.dialect.name == "postgresql" and bool(bind.execute(sa.text(
        "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
        "AND 'lz4' = ANY(enumvals)")).scalar())


def _compress(method: str) -> None:
    if not _lz4(op.get_bind()):
        return
    for table, column in COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}')


def upgrade() -> None:
    _compress("lz4")


def downgrade() -> None:
    _compress("pglz")
