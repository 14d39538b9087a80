"""indexes for the claim query: queued runs in creation order, parked runs by wake time

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28 02:00:00.000000
"""

from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_executions_state_created', 'executions', ['state', 'created_at'])
    op.create_index('ix_executions_state_wake', 'executions', ['state', 'wake_at'])


def downgrade() -> None:
    op.drop_index('ix_executions_state_wake', table_name='executions')
    op.drop_index('ix_executions_state_created', table_name='executions')
