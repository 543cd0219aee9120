"""tickets.merged_into_id: the ticket a merged ticket went into (#merge, ticket merge)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_tickets_merged_into_id_tickets'),
                                    'tickets', ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tickets_merged_into_id_tickets'),
                                 type_='foreignkey')
        batch_op.drop_column('merged_into_id')
