"""gitops secrets, rollback, heal and local plans; webhook secret encrypted

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 14:05:00.000000
"""

from collections.abc import Callable

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _with_approvals_set_aside(alter: Callable[[], None]) -> None:
    # SQLite changes a unique constraint by copying the table; with foreign keys
    # on, dropping the old `plans` would fail while approvals point at it. Set
    # them aside for the copy (PostgreSQL alters the constraint in place).
    if op.get_bind().dialect.name != 'sqlite':
        alter()
        return
    op.execute('CREATE TEMPORARY TABLE approvals_0011 AS SELECT * FROM approvals')
    op.execute('DELETE FROM approvals')
    alter()
    op.execute('INSERT INTO approvals SELECT * FROM approvals_0011')
    op.execute('DROP TABLE approvals_0011')


def _drop_column(table: str, column: str) -> None:
    # SQLite >= 3.35 drops a plain column in place, without copying a table
    # that other tables reference.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
    else:
        op.drop_column(table, column)


def upgrade() -> None:
    with op.batch_alter_table('git_sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_secret_ciphertext', sa.LargeBinary(), nullable=True))

    with op.batch_alter_table('flow_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rollback', sa.Boolean(), nullable=False, server_default=sa.false()))

    def alter_plans() -> None:
        with op.batch_alter_table('plans', schema=None) as batch_op:
            batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default='sync'))
            batch_op.add_column(sa.Column('dedup_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
            batch_op.add_column(sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
            batch_op.add_column(sa.Column('secret_changes', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
            batch_op.add_column(sa.Column('secret_payload', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
        # Every plan so far was the sync plan of its commit.
        op.execute('UPDATE plans SET dedup_key = target_commit')
        with op.batch_alter_table('plans', schema=None) as batch_op:
            batch_op.drop_constraint('uq_plans_source_commit', type_='unique')
            batch_op.create_unique_constraint('uq_plans_source_dedup_key', ['source_id', 'dedup_key'])

    _with_approvals_set_aside(alter_plans)
    # Plaintext webhook secrets are encrypted (and cleared) by the server on first
    # use: a migration cannot read the server identity in the data directory.


def downgrade() -> None:
    # Only sync plans fit the old one-plan-per-commit rule.
    op.execute("DELETE FROM approvals WHERE plan_id IN (SELECT id FROM plans WHERE kind <> 'sync')")
    op.execute("DELETE FROM plans WHERE kind <> 'sync'")

    def alter_plans() -> None:
        with op.batch_alter_table('plans', schema=None) as batch_op:
            batch_op.drop_constraint('uq_plans_source_dedup_key', type_='unique')
            batch_op.create_unique_constraint('uq_plans_source_commit', ['source_id', 'target_commit'])
            batch_op.drop_column('secret_payload')
            batch_op.drop_column('secret_changes')
            batch_op.drop_column('requested_by')
            batch_op.drop_column('dedup_key')
            batch_op.drop_column('kind')

    _with_approvals_set_aside(alter_plans)
    _drop_column('flow_revisions', 'rollback')
    _drop_column('git_sources', 'webhook_secret_ciphertext')
