"""service hours: deadlines on tickets, sla_alerts, job_runs; quarantine.mailbox_default

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import mailgate.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

DEADLINES = ('first_response_due', 'next_response_due', 'resolution_due')


def upgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        for name in DEADLINES + ('next_response_start', 'paused_since'):
            batch_op.add_column(sa.Column(name, mailgate.models.UTCDateTime(), nullable=True))
        # existing tickets have waited no working time yet
        batch_op.add_column(sa.Column('paused_working', sa.Double(), nullable=False,
                                      server_default=sa.text('0')))
        for name in DEADLINES:
            batch_op.create_index(batch_op.f(f'ix_tickets_{name}'), [name], unique=False)

    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailbox_default', sa.String(length=64), nullable=True))

    op.create_table('sla_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('due_at', mailgate.models.UTCDateTime(), nullable=False),
    sa.Column('created_at', mailgate.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_sla_alerts_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_alerts')),
    sa.UniqueConstraint('ticket_id', 'kind', 'stage', 'due_at', name=op.f('uq_sla_alerts_ticket_id_kind_stage_due_at'))
    )
    op.create_table('job_runs',
    sa.Column('job', sa.String(length=100), nullable=False),
    sa.Column('period', sa.String(length=40), nullable=False),
    sa.Column('ran_at', mailgate.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('job', 'period', name=op.f('pk_job_runs'))
    )


def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_column('mailbox_default')
    op.drop_table('job_runs')
    op.drop_table('sla_alerts')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        for name in DEADLINES:
            batch_op.drop_index(batch_op.f(f'ix_tickets_{name}'))
        for name in DEADLINES + ('next_response_start', 'paused_since', 'paused_working'):
            batch_op.drop_column(name)
