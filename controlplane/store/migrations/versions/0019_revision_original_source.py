"""flow revisions keep the foreign source they were converted from (Argo Workflows)

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 09:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flow_revisions') as batch:
        batch.add_column(sa.Column('original_format', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch.add_column(sa.Column('original_path', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True))
        batch.add_column(sa.Column('original_source', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('flow_revisions') as batch:
        batch.drop_column('original_source')
        batch.drop_column('original_path')
        batch.drop_column('original_format')
