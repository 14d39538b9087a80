"""namespace allowed_namespaces

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing namespaces allow no other namespace in, the secure default.
    with op.batch_alter_table('namespaces', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('allowed_namespaces', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table('namespaces', schema=None) as batch_op:
        batch_op.drop_column('allowed_namespaces')
