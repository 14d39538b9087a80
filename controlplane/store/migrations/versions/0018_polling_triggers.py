"""polling triggers: fired keys (exactly once) and saved cursors

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27 21:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('polling_fires',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('namespace', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
    sa.Column('flow_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('trigger_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('fire_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('execution_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['execution_id'], ['executions.id'], ),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('namespace', 'flow_id', 'trigger_id', 'fire_key', name='uq_polling_fires_once')
    )
    op.create_table('polling_state',
    sa.Column('namespace', sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
    sa.Column('flow_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('trigger_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('namespace', 'flow_id', 'trigger_id')
    )


def downgrade() -> None:
    op.drop_table('polling_state')
    op.drop_table('polling_fires')
