"""trigger states

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27 19:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trigger_states',
    sa.Column('namespace', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
    sa.Column('flow_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('trigger_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('namespace', 'flow_id', 'trigger_id')
    )


def downgrade() -> None:
    op.drop_table('trigger_states')
