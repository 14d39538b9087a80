"""review and operate: sealed URL credentials, source scopes and take-over policy,
plan lifecycle fields, verified token identities, UI sessions, audit checkpoints

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 10:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('git_sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('url_credentials_ciphertext', sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column('take_over', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column('namespaces', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column('status_reason', sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column('commit_identities', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column('basis', sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('identities', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    op.create_table(
        'ui_sessions',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('token_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('ui_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ui_sessions_token_id'), ['token_id'], unique=False)
    op.create_table(
        'audit_checkpoints',
        sa.Column('pk', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('head_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.Column('algorithm', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.PrimaryKeyConstraint('pk'),
    )


def downgrade() -> None:
    op.drop_table('audit_checkpoints')
    with op.batch_alter_table('ui_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ui_sessions_token_id'))
    op.drop_table('ui_sessions')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('identities')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('basis')
        batch_op.drop_column('commit_identities')
        batch_op.drop_column('status_reason')
        batch_op.drop_column('created_by')
    with op.batch_alter_table('git_sources', schema=None) as batch_op:
        batch_op.drop_column('namespaces')
        batch_op.drop_column('take_over')
        batch_op.drop_column('url_credentials_ciphertext')
