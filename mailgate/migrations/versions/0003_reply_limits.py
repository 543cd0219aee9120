"""automatic replies limited per client network: outbox.rate_network

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_network', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_rate_network'), ['rate_network'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_rate_network'))
        batch_op.drop_column('rate_network')
