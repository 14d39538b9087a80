"""flow revisions record the validator fingerprint their normalized spec was computed with

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-27 09:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flow_revisions') as batch:
        batch.add_column(sa.Column('spec_fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('flow_revisions') as batch:
        batch.drop_column('spec_fingerprint')
