"""outbox (rate_key, created_at) and (rate_network, created_at): the hourly count of
automatic replies to one address or caused by one network reads only that hour's rows
instead of the address's whole history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_rate_key_created', ['rate_key', 'created_at'])
        batch_op.create_index('ix_outbox_rate_network_created',
                              ['rate_network', 'created_at'])


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_rate_network_created')
        batch_op.drop_index('ix_outbox_rate_key_created')
