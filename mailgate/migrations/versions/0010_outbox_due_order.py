"""ix_outbox_due on (status, next_attempt_at, id): the claim's order, so that a claim
reads the first row it may take from the index and sorts nothing (#17)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at', 'id'])


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'])
