"""outbox.rate_domain: the domain of an automatic reply's address, with an index
(rate_domain, created_at), so the per-domain cap counts one hour of one domain
through an index instead of reading every row with LIKE '%@domain' (#17)

Existing automatic replies get their domain (what follows the last "@"), so the
hour after the upgrade is capped like any other.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_domain', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_outbox_rate_domain_created', ['rate_domain', 'created_at'])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE outbox SET rate_domain = regexp_replace(rate_key, '^.*@', '') "
                   "WHERE rate_key IS NOT NULL")
        return
    outbox = sa.table('outbox', sa.column('id'), sa.column('rate_key'), sa.column('rate_domain'))
    keys = bind.execute(sa.select(outbox.c.id, outbox.c.rate_key)
                        .where(outbox.c.rate_key.isnot(None))).all()
    for row_id, key in keys:
        bind.execute(outbox.update().where(outbox.c.id == row_id)
                     .values(rate_domain=key.rsplit('@', 1)[-1]))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_rate_domain_created')
        batch_op.drop_column('rate_domain')
